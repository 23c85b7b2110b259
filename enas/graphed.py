"""The whole omega step of a static-graph supernet, captured once as a CUDA graph and replayed.

With the architecture as data (enas/spaces/rnn_cell_static.py) every omega step launches the
same kernels whatever the architecture, so one capture serves the whole search:

    static buffers:  tokens, targets (T, B) | recurrent state (B, H) | ArchTensors
    captured once:   loss = task.loss(supernet, batch, state, arch)             (forward, CE)
                     StepRunner.step_nosync(loss, state)                          (backward, clip,
                         MaskedSGD step on the architecture's rows, skipped on the device when
                         the loss or state is not finite; device counters; state reset)
    every step:      copy batch, state, arch into the buffers (device copies; the arch from
                     pinned host memory), refresh the lr tensor, replay, hand back the state

Before the capture a few warm-up steps run on a side stream with every update masked off
(`skip=True`): weights, momentum and counters are as before, while cuBLAS, the autocast casts,
a compiled cell and the lazily made momentum buffers are ready. A batch of another shape (the
shorter last window of an epoch) runs the same body without a graph. On a CPU (tests) the body
always runs without a graph, through the same static buffers.

The dropout masks come from the CUDA generator inside the graph (each replay draws new ones),
so a graphed run is not bit-identical to an eager run with the same seed: same distribution,
same code. `tests/test_graphed.py` holds the CPU path against the eager loop and, under the
`cuda` marker, the captured step against the uncaptured one.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

MAX_GRAPHS = 2        # captured batch shapes kept (a bptt window; one more for a fixed odd shape)
WARMUP_STEPS = 3      # masked-off steps on a side stream before the capture


class _Static:
    """The input buffers of one batch shape, and its graph and output once captured."""

    def __init__(self, batch: tuple, state, arch):
        self.batch = tuple(t.clone() for t in batch)
        self.state = None if state is None else state.clone()
        self.arch = type(arch)(*(t.clone() for t in arch))
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out_state = None

    def load(self, batch: tuple, state, arch) -> None:
        """Copy this step's inputs into the buffers (device-side copies, no host sync)."""
        for mine, theirs in zip(self.batch, batch):
            mine.copy_(theirs, non_blocking=True)
        if self.state is not None:
            self.state.copy_(state, non_blocking=True)
        self.arch.copy_(arch)


class GraphedStep:
    """`step(batch, state, arch) -> state`: one omega step, replayed from a CUDA graph on CUDA.

    task: a Task (its `loss`); model: a supernet with `arch_tensors` (the static-graph one);
    stepper: a StepRunner whose optimizer is a capturable MaskedSGD.
    """

    def __init__(self, task, model, stepper, aux_weight: float = 0.0, capture: bool | None = None):
        self.task, self.model, self.stepper, self.aux_weight = task, model, stepper, aux_weight
        self.optimizer = stepper.optimizer
        self.capture = capture
        self.entries: dict[tuple, _Static] = {}
        self.captures = 0                 # graphs captured (reported by benchmarks and tests)
        self.replays = 0
        self.uncaptured = 0               # steps run without a graph (odd shapes, CPU)

    def _use_graphs(self, batch) -> bool:
        if self.capture is not None:
            return self.capture
        return batch[0].is_cuda

    def __call__(self, batch: tuple, state, arch):
        host = self.model.arch_tensors(arch, device="cpu")   # ArchTensors built on the host
        if batch[0].is_cuda:
            host = type(host)(*(t.pin_memory() for t in host))
        key = tuple((tuple(t.shape), t.dtype) for t in batch) + (None if state is None else tuple(state.shape),)
        entry = self.entries.get(key)
        if entry is None and len(self.entries) < MAX_GRAPHS:
            entry = self._prepare(key, batch, state, host)
        if entry is None:
            self.uncaptured += 1
            return self._body(batch, state, self.model.arch_tensors(host, device=batch[0].device))
        entry.load(batch, state, host)
        if entry.graph is None:
            self.uncaptured += 1
            return self._body(entry.batch, entry.state, entry.arch)
        if hasattr(self.optimizer, "sync_lr"):
            self.optimizer.sync_lr()       # a changed lr (schedule) reaches the captured step
        entry.graph.replay()
        self.replays += 1
        return None if entry.out_state is None else entry.out_state.clone()

    def _body(self, batch: tuple, state, arch, skip: bool = False):
        loss, new_state = self.task.loss(self.model, batch, state, arch, aux_weight=self.aux_weight)
        return self.stepper.step_nosync(loss, new_state, skip=skip)

    def _prepare(self, key: tuple, batch: tuple, state, host) -> _Static:
        device = batch[0].device
        entry = _Static(batch, state, self.model.arch_tensors(host, device=device))
        self.entries[key] = entry
        if self._use_graphs(batch):
            try:
                self._capture(entry)
            except RuntimeError as e:  # CUDA errors are RuntimeErrors too
                # the search goes on without a graph for this shape (slower, same results); say why
                entry.graph = None
                torch.cuda.synchronize()
                log.warning("could not capture the omega step as a CUDA graph (%s: %s); it runs uncaptured",
                            type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else "")
        return entry

    def _capture(self, entry: _Static) -> None:
        """Warm up with updates masked off, then capture one whole step into `entry.graph`."""
        if not getattr(self.optimizer, "capturable", False):
            raise ValueError("a captured omega step needs MaskedSGD(capturable=True): its learning rate must "
                             "live on the device, or the graph would replay the lr of the capture forever")
        counters = {k: v.clone() for k, v in self.stepper.device_counters(entry.batch[0].device).items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self._body(entry.batch, entry.state, entry.arch, skip=True)
        torch.cuda.current_stream().wait_stream(side)
        for name, value in counters.items():   # the warm-up skips are not the run's skips
            self.stepper.counters[name].copy_(value)
        if hasattr(self.optimizer, "sync_lr"):
            self.optimizer.sync_lr()           # so the capture records no lr refresh
        torch.clear_autocast_cache()
        self.optimizer.zero_grad(set_to_none=True)   # gradients are allocated inside the graph's pool
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            entry.out_state = self._body(entry.batch, entry.state, entry.arch)
        entry.graph = graph
        self.captures += 1
        log.info("captured the omega step as a CUDA graph (batch %s)", tuple(entry.batch[0].shape))
