"""The ENAS LSTM controller, generic over a space's `decisions()`.

It knows nothing about any space beyond the decision list:

- `op` decisions: a softmax head per label set (decisions with the same labels share the head and
  the embedding that feeds the choice to the next step);
- `input` decisions: attention over the group's anchors (the controller's states stored at earlier
  nodes, ENAS: v^T tanh(W_a anchor + W_q h)), softmax over the first `num_choices` anchors;
- `skip` decisions: the same attention, one sigmoid per earlier anchor (ENAS macro space).

Logits are shaped as in ENAS: `tanh_c * tanh(logits / temperature)` (op logits use
`tanh_c / op_tanh_reduce`). Everything is batched over the n architectures sampled at once.

Priors (`priors=True`): a decision may declare `init_bias` (the initial value of its op head's
learned bias, added before the squashing; official src/cifar10/micro_controller.py:100-104,178)
and `fixed_bias` (a constant added after the squashing; micro_controller.py:106-109,184-185 for
ops, src/ptb/ptb_enas_controller.py:126-127 for inputs). The controller only reads the numbers.

Skip bits (`skip_pair=True`, official src/cifar10/general_controller.py:216-268): the attention
score q of each earlier layer gives the 2-way logits [-s, s], s = tanh_c * tanh(q / temperature),
so a bit is on with probability softmax([-s, s])[1] = sigmoid(2 s). The skip penalty is the KL of
Bernoulli(sigmoid(s)) from Bernoulli(skip_target) (the official code takes the sigmoid of the
pair, not the softmax: general_controller.py:231-233), summed over the bits of a decision and,
with `skip_penalty="mean"`, averaged over the skip decisions (general_controller.py:268).
With `skip_pair=False` a bit is on with probability sigmoid(s) and the KL is taken on that.

When an `input`/`skip` decision points at more anchors than its group has stored (the two
cell inputs of a micro cell), the missing anchors are made by LSTM steps on the learned start
embedding, as in ENAS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from enas.arch import Decision


@dataclass
class ControllerOutput:
    """Result of one controller pass over n architectures.

    choices: one entry per decision: (n,) long for op/input, (n, k) long bits for skip.
    log_prob, entropy, skip_count: (n,) per architecture, summed over the decisions.
    skip_kl: (n,) the skip penalty, reduced over the skip decisions as `skip_penalty` says.
    """

    choices: list[torch.Tensor]
    log_prob: torch.Tensor
    entropy: torch.Tensor
    skip_kl: torch.Tensor
    skip_count: torch.Tensor


def _head_key(decision: Decision, priors: bool) -> str:
    """Op decisions with the same key share a softmax head and an embedding.

    With priors on, the initial bias is part of the key: decisions that declare different
    initial biases cannot share one learned bias.
    """
    key = "|".join(decision.labels)
    if priors and decision.init_bias:
        key += "|init=" + ",".join(f"{b:g}" for b in decision.init_bias)
    return key


class Controller(nn.Module):
    """LSTM controller emitting one choice per decision (see module docstring)."""

    def __init__(self, decisions: Sequence[Decision], lstm_size: int = 100, tanh_c: float = 2.5,
                 op_tanh_reduce: float = 1.0, temperature: float = 5.0, skip_target: float = 0.4,
                 init_range: float = 0.1, priors: bool = False, skip_pair: bool = False,
                 skip_penalty: str = "sum"):
        super().__init__()
        if skip_penalty not in ("mean", "sum"):
            raise ValueError(f"skip_penalty must be 'mean' or 'sum', got {skip_penalty!r}")
        if not 0.0 < skip_target < 1.0:
            raise ValueError(f"skip_target must be in (0, 1), got {skip_target!r}")
        self.decisions = list(decisions)
        self.lstm_size = lstm_size
        self.tanh_c = tanh_c
        self.op_tanh_reduce = op_tanh_reduce
        self.temperature = temperature
        self.skip_target = skip_target
        self.priors = priors
        self.skip_pair = skip_pair
        self.skip_penalty = skip_penalty
        self.lstm = nn.LSTMCell(lstm_size, lstm_size)
        self.start = nn.Parameter(torch.zeros(1, lstm_size))  # g_emb: input of the first step
        self._keys = [_head_key(d, priors) if d.kind == "op" else "" for d in self.decisions]
        keys = sorted({k for k, d in zip(self._keys, self.decisions) if d.kind == "op"})
        sizes = {k: d.num_choices for k, d in zip(self._keys, self.decisions) if d.kind == "op"}
        self.op_heads = nn.ModuleList(nn.Linear(lstm_size, sizes[k]) for k in keys)
        self.op_embeds = nn.ModuleList(nn.Embedding(sizes[k], lstm_size) for k in keys)
        self._head_index = {k: i for i, k in enumerate(keys)}
        self.attn_anchor = nn.Linear(lstm_size, lstm_size, bias=False)
        self.attn_query = nn.Linear(lstm_size, lstm_size, bias=False)
        self.attn_v = nn.Linear(lstm_size, 1, bias=False)
        for p in self.parameters():
            nn.init.uniform_(p, -init_range, init_range)
        if priors:
            self._init_prior_biases()
        # Fixed biases move with the module but are not state: they come from the space.
        for i, d in enumerate(self.decisions):
            bias = torch.tensor(d.fixed_bias if priors and d.fixed_bias else [0.0] * d.num_choices)
            self.register_buffer(f"_fixed_bias_{i}", bias, persistent=False)

    @torch.no_grad()
    def _init_prior_biases(self) -> None:
        """Set each op head's learned bias to the `init_bias` its decisions declare (official: exactly
        that value, no noise; micro_controller.py:100-104)."""
        for key, d in zip(self._keys, self.decisions):
            if d.kind == "op" and d.init_bias:
                self.op_heads[self._head_index[key]].bias.copy_(torch.tensor(d.init_bias))

    def _fixed_bias(self, i: int) -> torch.Tensor:
        return getattr(self, f"_fixed_bias_{i}")

    def forward(self, n: int, actions: Sequence[torch.Tensor] | None = None,
                greedy: bool = False) -> ControllerOutput:
        """Sample n architectures, or score the given `actions` (teacher forcing)."""
        device = self.start.device
        inputs = self.start.expand(n, -1)                      # (n, H)
        state = (torch.zeros(n, self.lstm_size, device=device),
                 torch.zeros(n, self.lstm_size, device=device))
        anchors: dict[str, list[torch.Tensor]] = {}            # group -> [(n, H) states]
        keys: dict[str, list[torch.Tensor]] = {}               # group -> [(n, H) W_a anchor]
        zero = torch.zeros(n, device=device)
        log_prob, entropy, skip_kl, skip_count = zero, zero, zero, zero
        choices = []
        num_skip = 0
        for i, d in enumerate(self.decisions):
            if d.kind in ("input", "skip"):
                state = self._fill_anchors(d, n, state, anchors.setdefault(d.group, []),
                                           keys.setdefault(d.group, []))
            state = self.lstm(inputs, state)
            h = state[0]                                       # (n, H)
            given = None if actions is None else actions[i].to(device)
            if d.kind == "op":
                choice, lp, ent, inputs = self._op_step(i, d, h, given, greedy)
            elif d.kind == "input":
                choice, lp, ent, inputs = self._input_step(i, d, h, anchors[d.group], keys[d.group], given, greedy)
            else:
                choice, lp, ent, kl, inputs = self._skip_step(d, h, anchors[d.group], keys[d.group], given, greedy)
                skip_kl = skip_kl + kl
                skip_count = skip_count + choice.sum(1).float()
                num_skip += 1
            log_prob, entropy = log_prob + lp, entropy + ent
            choices.append(choice)
            if d.anchor:
                anchors.setdefault(d.group, []).append(h)
                keys.setdefault(d.group, []).append(self.attn_anchor(h))
        if self.skip_penalty == "mean" and num_skip:
            skip_kl = skip_kl / num_skip
        return ControllerOutput(choices, log_prob, entropy, skip_kl, skip_count)

    def _fill_anchors(self, d, n, state, group_anchors, group_keys):
        # Cell inputs (micro space) have no decisions of their own: make their anchors from
        # LSTM steps on the start embedding.
        while len(group_anchors) < d.num_choices:
            state = self.lstm(self.start.expand(n, -1), state)
            group_anchors.append(state[0])
            group_keys.append(self.attn_anchor(state[0]))
        return state

    def _shape_logits(self, logits: torch.Tensor, tanh_c: float) -> torch.Tensor:
        logits = logits / self.temperature
        if tanh_c:
            logits = tanh_c * torch.tanh(logits)
        return logits

    def _categorical(self, logits, given, greedy):
        dist = torch.distributions.Categorical(logits=logits)
        if given is not None:
            choice = given.long()
        elif greedy:
            choice = logits.argmax(-1)
        else:
            choice = dist.sample()
        return choice, dist.log_prob(choice), dist.entropy()

    def _op_step(self, i, d, h, given, greedy):
        index = self._head_index[self._keys[i]]
        tanh_c = self.tanh_c / self.op_tanh_reduce if self.tanh_c else 0.0
        logits = self._shape_logits(self.op_heads[index](h), tanh_c)       # (n, C)
        logits = logits + self._fixed_bias(i)
        choice, lp, ent = self._categorical(logits, given, greedy)
        return choice, lp, ent, self.op_embeds[index](choice)

    def _attention(self, h, group_keys, k):
        query = self.attn_query(h).unsqueeze(1)                             # (n, 1, H)
        stacked = torch.stack(group_keys[:k], dim=1)                        # (n, k, H)
        return self.attn_v(torch.tanh(stacked + query)).squeeze(-1)         # (n, k)

    def _input_step(self, i, d, h, group_anchors, group_keys, given, greedy):
        logits = self._shape_logits(self._attention(h, group_keys, d.num_choices), self.tanh_c)
        logits = logits + self._fixed_bias(i)                               # (n, k)
        choice, lp, ent = self._categorical(logits, given, greedy)
        stacked = torch.stack(group_anchors[:d.num_choices], dim=1)         # (n, k, H)
        next_input = stacked[torch.arange(h.shape[0], device=h.device), choice]
        return choice, lp, ent, next_input

    def _skip_step(self, d, h, group_anchors, group_keys, given, greedy):
        s = self._shape_logits(self._attention(h, group_keys, d.num_choices), self.tanh_c)   # (n, k)
        # Bit logit: softmax([-s, s])[1] = sigmoid(2 s) with the official pair, sigmoid(s) without.
        logits = 2.0 * s if self.skip_pair else s
        probs = torch.sigmoid(logits)                                       # (n, k) P(bit on)
        if given is not None:
            bits = given.long()
        elif greedy:
            bits = (probs > 0.5).long()
        else:
            bits = torch.bernoulli(probs.detach()).long()
        lp = -F.binary_cross_entropy_with_logits(logits, bits.float(), reduction="none").sum(1)
        ent = -(probs * F.logsigmoid(logits) + (1 - probs) * F.logsigmoid(-logits)).sum(1)
        kl = _bernoulli_kl(s, self.skip_target).sum(1)                      # (n,)
        stacked = torch.stack(group_anchors[:d.num_choices], dim=1)         # (n, k, H)
        # ENAS macro: next input = chosen anchors summed, scaled by 1/(1 + #skips)
        next_input = (bits.float().unsqueeze(-1) * stacked).sum(1) / (1.0 + bits.sum(1, keepdim=True).float())
        return bits, lp, ent, kl, next_input


def _bernoulli_kl(logits: torch.Tensor, target: float) -> torch.Tensor:
    """KL(Bernoulli(sigmoid(logits)) || Bernoulli(target)) per element (general_controller.py:231-232)."""
    p = torch.sigmoid(logits)
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    return p * (log_p - math.log(target)) + (1 - p) * (log_not_p - math.log(1 - target))
