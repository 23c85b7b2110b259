"""Evaluators: how a strategy's architectures get their rewards.

`OneShot` (ENAS): score each architecture with the shared supernet weights on the next
validation batch of an endless, deterministic stream (the recurrent state is carried from
batch to batch, as in ENAS). Its position and state are saved with the checkpoint.

`Standalone` (NAS-RL): train each child from scratch with low-fidelity knobs (epochs or steps,
a fraction of the image training data, a width multiplier) and reward its validation score.
`Inherit`: the same, but the child starts from the supernet's weights for its subgraph.
Children run in parallel on an engine of `enas.parallel` (process pool, Ray, inline), in sync
batches or asynchronously (NAS-RL's workers: each result is told as soon as it arrives).
Failed evaluations are retried, then given `failure_reward`; a dead worker process is
replaced and its lost jobs retried. Every finished evaluation is appended to
`<run_dir>/evaluations.jsonl`, so a resumed search does not train the same children again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from enas.arch import Architecture


class OneShot:
    """Rewards from the shared weights: one validation batch per architecture."""

    name = "one_shot"

    def __init__(self, task, supernet):
        self.task = task
        self.supernet = supernet
        self.position = 0           # how many validation batches the stream has handed out
        self.state = None           # recurrent state carried along the stream
        self._stream = None

    def begin_phase(self, epoch: int) -> None:
        """Called before each theta phase (nothing to prepare for shared weights)."""

    def _next_batch(self):
        if self._stream is None:
            self._stream = self.task.valid_batches(self.position)
        self.position += 1
        return next(self._stream)

    def evaluate(self, archs: Sequence[Architecture]) -> list[float]:
        """One reward per architecture (supernet in eval mode: no dropout)."""
        was_training = self.supernet.training
        self.supernet.eval()
        if self.state is None:
            self.state = self.task.init_state(self.supernet, "valid")
        rewards = []
        for arch in archs:
            reward, self.state = self.task.reward(self.supernet, self._next_batch(), self.state, arch)
            rewards.append(reward)
        self.supernet.train(was_training)
        return rewards

    def state_dict(self) -> dict:
        return {"position": self.position, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]
        self.state = state["state"]
        self._stream = None


# --- standalone and inherit: children trained on an engine ---------------------------------------

#: Tasks built by `run_child`, per worker process and data config (PTB is read once per worker).
_TASK_CACHE: dict[str, object] = {}


def _cached_task(data: dict, seed: int, batch_size: int | None, device: str):
    from enas.cli.common import build_task
    key = json.dumps([data, seed, batch_size, device], sort_keys=True)
    if key not in _TASK_CACHE:
        if len(_TASK_CACHE) >= 4:            # a worker serves one search: keep memory bounded
            _TASK_CACHE.clear()
        _TASK_CACHE[key] = build_task(data, device, seed, batch_size=batch_size)
    return _TASK_CACHE[key]


def _once(marker: str | None) -> bool:
    """True the first time a marker path is seen (the file is created), False afterwards."""
    if not marker or os.path.exists(marker):
        return False
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    return True


def _debug_hooks(job: dict) -> None:
    """Test-only failure injection (job["debug"]): log calls, raise, interrupt or die once."""
    debug = job.get("debug") or {}
    if debug.get("call_log"):
        with open(debug["call_log"], "a") as f:
            f.write(json.dumps({"phase": job["phase"], "index": job["index"], "choices": job["choices"]}) + "\n")
    at = debug.get("index")
    if at is not None and at != job["index"]:
        return
    if _once(debug.get("crash_once")):
        os._exit(3)                          # the worker process dies without a word
    if _once(debug.get("raise_once")):
        raise RuntimeError("injected failure (debug.raise_once)")
    if _once(debug.get("interrupt_once")):
        raise KeyboardInterrupt("injected interruption (debug.interrupt_once)")


def _silent(*args) -> None:
    pass


def run_child(job: dict) -> dict:
    """Train one child from scratch (or from inherited weights) and score it on validation.

    `job` is a plain dict (see `Standalone._make_job`); runs in a worker process.
    Returns {"reward", "metrics", "seconds", "pid"}.
    """
    t0 = time.time()
    _debug_hooks(job)
    from enas.cli.train import train_settings
    from enas.final import Trainer
    from enas.optim import build_sgd
    from enas.spaces import build_space
    from enas.utils import seed_everything

    device = job["device"]
    task = _cached_task(job["data"], job["data_seed"], job["batch_size"], device)
    space = build_space(job["space"], **job["structure"])
    arch = space.validate(Architecture(space.name, tuple(job["choices"])))
    seed_everything(job["seed"])
    model = space.build_network(arch, **job["sizes"])
    if job.get("init_state") is not None:
        model.load_state_dict(job["init_state"])
    model = model.to(device)
    trainer_cfg = job["trainer"]
    optim = trainer_cfg["optim"]
    optimizer = build_sgd(model.parameters(), lr=optim["lr"], momentum=optim.get("momentum", 0.0),
                          weight_decay=optim.get("weight_decay", 0.0), nesterov=optim.get("nesterov", False))
    trainer = Trainer(task, model, optimizer, train_settings(trainer_cfg), run_dir=None, printer=_silent,
                      prefix="child")
    trainer.run()
    # The last epoch's validation is task.evaluate(model, "valid", None, valid_batches) of the final model.
    last = trainer.history[-1] if trainer.history else None
    if last is None:
        metrics = task.evaluate(model, "valid", None, trainer_cfg.get("valid_batches"))
    else:
        metrics = {k[len("valid_"):]: v for k, v in last.items() if k.startswith("valid_")}
    return {"reward": float(task.score(metrics)), "metrics": metrics, "seconds": time.time() - t0,
            "pid": os.getpid()}


def _fingerprint(values: dict) -> str:
    """A short stable hash of plain values."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def child_seed(seed: int, phase: int, index: int) -> int:
    """A deterministic seed for the child at (phase, index) of a run seeded `seed`."""
    digest = hashlib.sha256(f"{seed}/{phase}/{index}".encode()).hexdigest()
    return int(digest[:8], 16)


@dataclass
class _Work:
    """One architecture to evaluate, and its tries so far."""

    arch: Architecture
    index: int                      # position within the phase (journal key)
    slot: int | None = None         # position within a sync batch
    failures: int = 0
    generation: int = 0             # engine generation it was last submitted to
    job: dict = field(default_factory=dict)


class Standalone:
    """Train every child from scratch with low-fidelity knobs; reward = its validation score.

    Options (the `evaluator.options` config section):
        epochs, steps_per_epoch    training length of a child (steps_per_epoch None: a full pass)
        train_limit                keep this many training images (image data only)
        width_multiplier           passed as a builder size when the space accepts it
        lr, batch_size             override the trainer recipe (context["config"]["trainer"])
        valid_batches              validation batches of the reward (None: the trainer's setting)
        workers, engine            parallel children on "process" | "ray" | "inline"
        mode                       "sync" (whole batches) | "async" (NAS-RL workers)
        retries, failure_reward    a failed child is retried, then rewarded `failure_reward`
        seed                       children's seeds derive from (seed, phase, index); None: config seed
        journal                    file name under run_dir for finished evaluations (None: none)
        debug                      test-only failure injection (see `_debug_hooks`)
    """

    name = "standalone"
    inherits = False

    def __init__(self, task, space, supernet=None, context: dict | None = None, epochs: int = 1,
                 steps_per_epoch: int | None = None, train_limit: int | None = None,
                 width_multiplier: float | None = None, lr: float | None = None, batch_size: int | None = None,
                 valid_batches: int | None = None, workers: int = 1, engine: str = "process", mode: str = "sync",
                 retries: int = 1, failure_reward: float = 0.0, seed: int | None = None,
                 journal: str | None = "evaluations.jsonl", debug: dict | None = None, printer: Callable = None):
        from enas.parallel import ENGINES
        from enas.spaces.hyperparams import accepts_size
        context = context or {}
        config = context.get("config") or {}
        for key in ("data", "trainer"):
            if key not in config:
                raise ValueError(f"evaluator {self.name}: context['config'] lacks the {key!r} section")
        if mode not in ("sync", "async"):
            raise ValueError(f"evaluator {self.name}: mode must be 'sync' or 'async', got {mode!r}")
        if engine not in ENGINES:
            raise ValueError(f"evaluator {self.name}: unknown engine {engine!r}; known: {', '.join(ENGINES)}")
        if workers < 1 or retries < 0 or epochs < 1:
            raise ValueError(f"evaluator {self.name}: needs workers >= 1, retries >= 0, epochs >= 1 "
                             f"(got {workers}, {retries}, {epochs})")
        self.task, self.space, self.supernet = task, space, supernet
        self.printer = printer or (lambda *a: print(*a, flush=True))
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.lr, self.batch_size, self.retries = lr, batch_size, retries
        self.failure_reward = float(failure_reward)
        self.workers, self.engine_name, self.mode = workers, engine, mode
        self.debug = dict(debug or {})
        self.config_seed = int(config.get("seed", 0))
        self.seed = self.config_seed if seed is None else int(seed)
        self.device = str(context.get("device", "cpu"))
        self.trainer_cfg = config["trainer"]
        self.valid_batches = valid_batches if valid_batches is not None else self.trainer_cfg.get("valid_batches")
        self.data_cfg = dict(config["data"])
        if train_limit is not None:
            if getattr(task, "kind", None) == "lm":
                raise ValueError(f"evaluator {self.name}: train_limit applies to image data; "
                                 f"shorten language-model children with steps_per_epoch")
            self.data_cfg["train_limit"] = int(train_limit)
        self.sizes = dict(context.get("sizes") or {})
        if width_multiplier is not None:
            if self.inherits:
                raise ValueError("evaluator inherit: width_multiplier would change the shapes of the "
                                 "inherited weights; use evaluator=standalone for narrow children")
            if accepts_size(space, "width_multiplier"):
                self.sizes["width_multiplier"] = float(width_multiplier)
            else:
                self.printer(f"warning: space {space.name!r} takes no width_multiplier; option ignored")
        run_dir = context.get("run_dir")
        self.journal_path = os.path.join(run_dir, journal) if run_dir and journal else None
        # Journal entries count only for the same knobs (a resume with other knobs re-runs children).
        self.fidelity = _fingerprint({"epochs": epochs, "steps_per_epoch": steps_per_epoch, "train_limit": train_limit,
                                    "sizes": self.sizes, "lr": lr, "batch_size": batch_size,
                                    "valid_batches": self.valid_batches, "seed": self.seed,
                                    "inherit": self.inherits})
        self._journal = self._read_journal()
        self._engine = None
        self.phase = 0
        self.index = 0                  # architectures handed out in the current phase
        self.evaluated = 0              # children actually trained (journal hits excluded)
        self.reused = 0                 # results taken from the journal
        self.failed = 0                 # children that got failure_reward

    # --- engine and journal ------------------------------------------------------------------------
    @property
    def asynchronous(self) -> bool:
        return self.mode == "async"

    @property
    def engine(self):
        """The engine, started on first use (a Ray or process pool costs seconds to start)."""
        if self._engine is None:
            from enas.parallel import build_engine
            self._engine = build_engine(self.engine_name, self.workers)
        return self._engine

    def close(self) -> None:
        """Stop the worker processes."""
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def _read_journal(self) -> dict:
        done = {}
        if not self.journal_path or not os.path.exists(self.journal_path):
            return done
        with open(self.journal_path) as f:
            for number, line in enumerate(f, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    e = json.loads(line)
                except json.JSONDecodeError:
                    # a line cut by a crash mid-write: that evaluation is simply run again
                    self.printer(f"warning: {self.journal_path}:{number}: unreadable line skipped")
                    continue
                done[(e["phase"], e["index"], e["key"], e.get("fidelity"))] = e
        return done

    def _journal_hit(self, work: _Work) -> float | None:
        entry = self._journal.get((self.phase, work.index, work.arch.key(), self.fidelity))
        return None if entry is None else float(entry["reward"])

    def _record(self, work: _Work, reward: float, seconds: float, attempts: int, metrics=None,
                error: str | None = None) -> None:
        entry = {"phase": self.phase, "index": work.index, "key": work.arch.key(),
                 "choices": json.loads(work.arch.key()), "reward": reward, "seconds": seconds,
                 "attempts": attempts, "failed": error is not None, "error": error, "metrics": metrics,
                 "fidelity": self.fidelity}
        self._journal[(self.phase, work.index, entry["key"], self.fidelity)] = entry
        if self.journal_path:
            from enas.fileio import append_line
            append_line(self.journal_path, json.dumps(entry))

    # --- jobs ------------------------------------------------------------------------------------------
    def _initial_state(self, arch: Architecture) -> dict | None:
        """Standalone children start from a fresh initialisation (Inherit overrides this)."""
        return None

    def _make_job(self, work: _Work) -> dict:
        """Everything a worker needs, as plain picklable values."""
        from enas.spaces.hyperparams import training_hyperparameters
        hp = training_hyperparameters(self.space, work.arch)
        trainer = json.loads(json.dumps(self.trainer_cfg))          # a deep copy of plain values
        trainer["epochs"] = int(hp.get("epochs", self.epochs))
        trainer["steps_per_epoch"] = hp.get("steps_per_epoch", self.steps_per_epoch)
        trainer["valid_batches"] = self.valid_batches
        trainer["log_every"] = 0
        if hp.get("lr", self.lr) is not None:
            trainer["optim"]["lr"] = float(hp.get("lr", self.lr))
        if "weight_decay" in hp:
            trainer["optim"]["weight_decay"] = float(hp["weight_decay"])
        batch_size = hp.get("batch_size", self.batch_size or trainer.get("batch_size"))
        return {"phase": self.phase, "index": work.index, "space": self.space.name,
                "structure": self.space.structure(), "sizes": self.sizes, "choices": json.loads(work.arch.key()),
                "data": self.data_cfg, "data_seed": self.config_seed, "batch_size": batch_size,
                "trainer": trainer, "seed": child_seed(self.seed, self.phase, work.index), "device": self.device,
                "init_state": self._initial_state(work.arch), "debug": self.debug}

    def _new_work(self, arch: Architecture, slot: int | None) -> _Work:
        work = _Work(self.space.validate(arch), self.index, slot)
        self.index += 1
        return work

    def _describe(self, work: _Work) -> str:
        text = self.space.describe(work.arch)
        return f"#{work.index} [{text[:77] + '...' if len(text) > 80 else text}]"

    # --- the driving loop ------------------------------------------------------------------------------
    def _submit(self, work: _Work, pending: dict) -> None:
        if not work.job:
            work.job = self._make_job(work)
        try:
            handle = self.engine.submit(run_child, work.job)
        except Exception as e:                 # the pool broke before we noticed: replace it once
            if not self.engine.is_crash(e):
                raise
            self.engine.restart()
            handle = self.engine.submit(run_child, work.job)
        work.generation = self.engine.generation
        pending[handle] = work

    def _on_error(self, work: _Work, error: Exception, pending: dict, finish) -> None:
        work.failures += 1
        crash = self.engine.is_crash(error)
        first = (str(error).strip().splitlines() or [""])[0][:200]
        what = f"worker process died ({type(error).__name__})" if crash else f"{type(error).__name__}: {first}"
        if crash and work.generation == self.engine.generation:
            self.engine.restart()              # one restart per broken pool, however many jobs it lost
        if work.failures <= self.retries:
            self.printer(f"warning: evaluation {self._describe(work)} failed ({what}); "
                         f"retry {work.failures}/{self.retries}")
            self._submit(work, pending)
            return
        self.printer(f"warning: evaluation {self._describe(work)} failed ({what}) after {work.failures} "
                     f"attempts; reward {self.failure_reward}")
        self.failed += 1
        self._record(work, self.failure_reward, None, work.failures, error=what)
        finish(work, self.failure_reward)

    def _on_success(self, work: _Work, out: dict, finish) -> None:
        reward, error = out["reward"], None
        if not math.isfinite(reward):
            error = f"non-finite reward {reward}"
            self.printer(f"warning: evaluation {self._describe(work)}: {error}; reward {self.failure_reward}")
            reward = self.failure_reward
            self.failed += 1
        self.evaluated += 1
        self._record(work, reward, out["seconds"], work.failures + 1, out.get("metrics"), error)
        finish(work, reward)

    def _drive(self, source: Callable[[], _Work | None], finish: Callable, max_in_flight: int) -> None:
        """Keep up to `max_in_flight` jobs running, taking new work from `source` until it is empty."""
        pending: dict = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < max_in_flight:
                    work = source()
                    if work is None:
                        exhausted = True
                        break
                    hit = self._journal_hit(work)
                    if hit is not None:
                        self.reused += 1
                        finish(work, hit)
                    else:
                        self._submit(work, pending)
                if not pending:
                    return
                for handle in self.engine.wait_any(list(pending)):
                    work = pending.pop(handle)
                    try:
                        out = self.engine.result(handle)
                    except Exception as e:
                        self._on_error(work, e, pending, finish)
                        continue
                    self._on_success(work, out, finish)
        except BaseException:
            if pending and self._engine is not None:
                self._engine.restart()          # drop the unfinished jobs; the journal has the rest
            raise

    # --- evaluator interface ------------------------------------------------------------------------------
    def begin_phase(self, epoch: int) -> None:
        """A theta phase starts: journal keys restart at index 0 of phase `epoch`."""
        self.phase, self.index = int(epoch), 0

    def evaluate(self, archs: Sequence[Architecture]) -> list[float]:
        """Rewards of a whole batch, in order (children run in parallel)."""
        rewards: list[float | None] = [None] * len(archs)
        queue = list(enumerate(archs))

        def source():
            if not queue:
                return None
            slot, arch = queue.pop(0)
            return self._new_work(arch, slot)

        def finish(work, reward):
            rewards[work.slot] = reward

        self._drive(source, finish, max_in_flight=max(1, len(archs)))
        return rewards

    def run_async(self, propose: Callable[[int], list], tell: Callable, budget: int) -> None:
        """NAS-RL's asynchronous workers: `workers` children in flight; each result is told at once
        and a new architecture proposed, until `budget` architectures are done."""
        proposed = 0

        def source():
            nonlocal proposed
            if proposed >= budget:
                return None
            proposed += 1
            return self._new_work(propose(1)[0], None)

        self._drive(source, lambda work, reward: tell([work.arch], [reward]), max_in_flight=self.workers)

    def state_dict(self) -> dict:
        return {"phase": self.phase, "index": self.index, "evaluated": self.evaluated,
                "reused": self.reused, "failed": self.failed}

    def load_state_dict(self, state: dict) -> None:
        self.phase, self.index = state["phase"], state["index"]
        self.evaluated, self.reused, self.failed = state["evaluated"], state["reused"], state["failed"]


class Inherit(Standalone):
    """Like Standalone, but each child starts from the supernet's weights for its subgraph."""

    name = "inherit"
    inherits = True

    def __init__(self, task, space, supernet, context: dict | None = None, **options):
        if supernet is None:
            raise ValueError(f"evaluator inherit needs a supernet; space {space.name!r} has none "
                             f"(use evaluator=standalone)")
        super().__init__(task, space, supernet, context, **options)

    def _initial_state(self, arch: Architecture) -> dict:
        return inherited_state(self.space, self.supernet, arch, self.sizes)


def inherited_state(space, supernet, arch: Architecture, sizes: dict) -> dict:
    """`arch`'s weights copied from the supernet, as a state_dict of plain CPU tensors."""
    network = space.build_network(arch, **sizes)
    space.load_inherited(network, supernet, arch)
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}


EVALUATORS = ("one_shot", "standalone", "inherit")


def build_evaluator(name: str, task, space, supernet, context: dict | None = None, **options):
    """An evaluator by name (`evaluator=` config group): one of EVALUATORS."""
    if name == "one_shot":
        if supernet is None:
            raise ValueError(f"evaluator one_shot needs a supernet; space {space.name!r} has none "
                             f"(use evaluator=standalone)")
        return OneShot(task, supernet, **options)
    classes = {"standalone": Standalone, "inherit": Inherit}
    if name not in classes:
        raise ValueError(f"unknown evaluator {name!r}; known: {', '.join(EVALUATORS)}")
    try:
        return classes[name](task, space, supernet, context, **options)
    except TypeError as e:
        raise ValueError(f"evaluator {name!r}: bad option ({e})") from None
