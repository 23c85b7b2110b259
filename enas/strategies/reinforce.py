"""REINFORCE on the LSTM controller (ENAS / NAS-RL policy gradient).

loss = -mean((R - b) * log pi(arch)) - entropy_weight * mean(H) + skip_weight * mean(KL(skip || target))

with b a moving-average baseline (b <- decay * b + (1 - decay) * R, per architecture) and R the
reward of each architecture. Adam on the controller's parameters.

`entropy_mode: reward` is the official form of the entropy bonus: each architecture's summed
entropy H (no gradient through it) is added to its reward, R' = R + entropy_weight * H, and R'
is what the baseline tracks and REINFORCE weighs; the loss then has no entropy term
(src/cifar10/micro_controller.py:237-238, general_controller.py:279-280,
src/ptb/ptb_enas_controller.py:183-184). `entropy_mode: loss` (the default) differentiates
-entropy_weight * mean(H) directly, a pull towards uniform that does not depend on the rewards.
The entropy here is each decision's full distribution, summed over the decisions, as the official
micro controller takes it; the official macro and PTB controllers add only the sampled choice's
term -p log p per decision.

`baseline: batch_mean` (not in the official code; issue 9's reward variance reduction) replaces b
for each architecture by the mean reward of the other architectures of the same update
(leave-one-out: b does not depend on the architecture's own sample, so the gradient stays
unbiased). Rewards that rise as the shared weights train then no longer give every sample a
positive advantage (a moving average lags behind them), and with the evaluator's
`shared_batches` the validation batch's difficulty cancels too. Needs two or more
architectures per update (`search.archs_per_step`). The moving average is still kept (logged).

One `tell` is one update: the n architectures of a theta step are scored together, each against
the baseline as it stood when its reward arrived, and the mean of their losses is minimised in
one Adam step. This is the official aggregation of `controller_num_aggregate` samples per update
(SyncReplicasOptimizer averages their gradients: src/utils.py:223-231; num_aggregate=10 in
scripts/ptb_search.sh, 10 in cifar10_micro_search.sh, 20 in cifar10_macro_search.sh): set
`search.archs_per_step` to that number.

The official controllers use Adam with beta1 = 0 and eps = 1e-3 (src/utils.py:217-219,
get_train_ops): `adam_beta1`, `adam_eps`. See `Controller` for `priors`, `skip_pair` and
`skip_penalty`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from enas.arch import Architecture
from enas.strategies.base import Strategy, register_strategy
from enas.strategies.controller import Controller

if TYPE_CHECKING:                      # strategies see a space only through name and decisions()
    from enas.spaces.base import SearchSpace


BASELINES = ("moving_average", "batch_mean")
ENTROPY_MODES = ("loss", "reward")


def leave_one_out_means(rewards: list[float]) -> list[float]:
    """For each reward, the mean of the others (the baseline of `baseline: batch_mean`)."""
    if len(rewards) < 2:
        raise ValueError("controller.baseline=batch_mean needs two or more architectures per update "
                         f"(search.archs_per_step); this update has {len(rewards)}")
    total = sum(rewards)
    return [(total - r) / (len(rewards) - 1) for r in rewards]


@register_strategy("reinforce")
class Reinforce(Strategy):
    """The ENAS controller trained with REINFORCE and a moving-average baseline."""

    has_parameters = True
    log_prefix = "controller"

    def __init__(self, space: SearchSpace, seed: int = 0, top_k: int = 20, lstm_size: int = 100,
                 tanh_c: float = 2.5, op_tanh_reduce: float = 1.0, temperature: float = 5.0,
                 lr: float = 1e-3, entropy_weight: float = 1e-3, baseline_decay: float = 0.99,
                 skip_target: float = 0.4, skip_weight: float = 0.0, grad_clip: float = 0.0,
                 priors: bool = False, skip_pair: bool = False, skip_penalty: str = "sum",
                 adam_beta1: float = 0.9, adam_eps: float = 1e-8, baseline: str = "moving_average",
                 entropy_mode: str = "loss"):
        super().__init__(space, seed=seed, top_k=top_k)
        if baseline not in BASELINES:
            raise ValueError(f"controller.baseline must be one of {', '.join(BASELINES)} (got {baseline!r})")
        if entropy_mode not in ENTROPY_MODES:
            raise ValueError(f"controller.entropy_mode must be one of {', '.join(ENTROPY_MODES)} "
                             f"(got {entropy_mode!r})")
        self.controller = Controller(self.decisions, lstm_size=lstm_size, tanh_c=tanh_c,
                                     op_tanh_reduce=op_tanh_reduce, temperature=temperature,
                                     skip_target=skip_target, priors=priors, skip_pair=skip_pair,
                                     skip_penalty=skip_penalty)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr, betas=(adam_beta1, 0.999),
                                          eps=adam_eps)
        self.entropy_weight = entropy_weight
        self.entropy_mode = entropy_mode
        self.baseline_decay = baseline_decay
        self.baseline_kind = baseline
        self.skip_weight = skip_weight
        self.grad_clip = grad_clip
        self.baseline: float | None = None

    def to(self, device) -> "Reinforce":
        self.controller.to(device)
        for state in self.optimizer.state.values():
            for k, v in state.items():
                if torch.is_tensor(v) and k != "step":
                    state[k] = v.to(device)
        return self

    # --- sampling -------------------------------------------------------------------------
    def _to_archs(self, choices: list[torch.Tensor], n: int) -> list[Architecture]:
        columns = [c.tolist() for c in choices]
        return [Architecture(self.space.name, tuple(tuple(col[j]) if d.kind == "skip" else col[j]
                                                    for d, col in zip(self.decisions, columns)))
                for j in range(n)]

    @torch.no_grad()
    def ask(self, n: int) -> list[Architecture]:
        """Sample n architectures from the controller."""
        self.controller.eval()
        return self._to_archs(self.controller(n).choices, n)

    def train_samples(self, n: int) -> list[Architecture]:
        """ENAS trains the shared weights on the controller's own samples."""
        return self.ask(n)

    @torch.no_grad()
    def greedy(self) -> Architecture:
        """The most likely architecture under the controller (argmax at every decision)."""
        self.controller.eval()
        return self._to_archs(self.controller(1, greedy=True).choices, 1)[0]

    def proposals(self, n: int) -> list[Architecture]:
        """n controller samples, the greedy architecture and the best seen, without repeats."""
        seen, out = set(), []
        for arch in [self.greedy()] + self.ask(n) + super().proposals(self.top_k):
            if arch.key() not in seen:
                seen.add(arch.key())
                out.append(arch)
        return out

    @torch.no_grad()
    def log_prob(self, archs: Sequence[Architecture]) -> torch.Tensor:
        """log pi(arch) under the current controller, (n,)."""
        self.controller.eval()
        return self.controller(len(archs), actions=self._actions(archs)).log_prob

    def _actions(self, archs: Sequence[Architecture]) -> list[torch.Tensor]:
        return [torch.tensor([a.choices[i] for a in archs], dtype=torch.long)
                for i in range(len(self.decisions))]

    # --- learning -------------------------------------------------------------------------
    def tell(self, archs: Sequence[Architecture], rewards: Sequence[float]) -> dict[str, float]:
        """One REINFORCE update on a batch of (architecture, reward) pairs."""
        super().tell(archs, rewards)
        self.controller.train()
        out = self.controller(len(archs), actions=self._actions(archs))
        values = self._rewards_with_bonus([float(r) for r in rewards], out.entropy)
        reward = torch.tensor(values, device=out.log_prob.device)
        baselines = self._baselines(values)           # the moving average moves (and is logged) either way
        if self.baseline_kind == "batch_mean":
            baselines = leave_one_out_means(values)
        advantage = reward - torch.tensor(baselines, device=reward.device)
        loss = -(advantage * out.log_prob).mean() + self.skip_weight * out.skip_kl.mean()
        if self.entropy_mode == "loss":
            loss = loss - self.entropy_weight * out.entropy.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # with grad_clip 0 the norm is only measured (max_norm inf), for TensorBoard
        grad_norm = torch.nn.utils.clip_grad_norm_(self.controller.parameters(), self.grad_clip or float("inf"))
        self.optimizer.step()
        stats = {"reward": sum(float(r) for r in rewards) / len(rewards), "baseline": float(self.baseline),
                 "advantage": advantage.mean().item(), "entropy": out.entropy.mean().item(),
                 "log_prob": out.log_prob.mean().item(), "loss": loss.item(),
                 "grad_norm": float(grad_norm), "lr": self.optimizer.param_groups[0]["lr"]}
        skips = sum(d.num_choices for d in self.decisions if d.kind == "skip")
        if skips:
            stats["skip_rate"] = (out.skip_count / skips).mean().item()
            stats["skip_kl"] = out.skip_kl.mean().item()
        return stats

    def _rewards_with_bonus(self, rewards: list[float], entropy: torch.Tensor) -> list[float]:
        """The rewards REINFORCE weighs: R, or R + entropy_weight * H (no gradient) in `reward` mode."""
        if self.entropy_mode == "loss":
            return rewards
        bonus = (self.entropy_weight * entropy.detach()).tolist()      # entropy: (n,) summed over decisions
        return [r + b for r, b in zip(rewards, bonus)]

    def _baselines(self, rewards: list[float]) -> list[float]:
        """Baseline seen by each reward (updated after each one, as ENAS does per sample)."""
        seen = []
        for r in rewards:
            if self.baseline is None:
                self.baseline = r
            seen.append(self.baseline)
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * r
        return seen

    # --- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(controller=self.controller.state_dict(), optimizer=self.optimizer.state_dict(),
                     baseline=self.baseline)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
