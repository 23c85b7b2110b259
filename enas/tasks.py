"""Tasks: what a model is trained and scored on (batches, loss, metric, reward).

Two tasks share one interface (`Task` below), so the search loop, derive, the evaluators and
final training never look at the kind of data. `LanguageModel`: bptt windows, hidden state
carried across batches and detached, perplexity, reward c / ppl. `ImageClassification`:
accuracy, reward = accuracy on a validation batch.

With several processes (enas.distributed) each rank calls `shard_train(rank, world_size)` once:
from then on its training batches are its rows of the global batch (B/N of B, equal shards),
in the same order on every rank; validation and test batches stay whole.

Both tasks run every forward pass (and its loss) under `torch.autocast` when `amp_dtype` is set
(the build layer sets it from `accel.amp`); `ImageClassification.channels_last` hands the model
NHWC images. Evaluation sums on the device and reads the totals once at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from typing import Iterator, Protocol

import torch
import torch.nn.functional as F

from enas.distributed import shard_slice
from enas.utils import detach_state


class Task(Protocol):
    """Everything the search loop, derive, evaluators and final training use of a task."""

    kind: str                    # "lm" | "image"
    metric: str                  # "ppl" | "acc": the key of `evaluate`'s result that matters
    higher_is_better: bool       # for `metric`

    @property
    def num_train_batches(self) -> int:
        """Training batches in one pass."""

    def num_batches(self, split: str) -> int:
        """Batches of `split` in one pass."""

    def model_sizes(self) -> dict:
        """Builder kwargs the data decides (vocab_size; num_classes, in_channels, image_size)."""

    def train_batches(self, epoch: int, start: int = 0, epoch_steps: int | None = None) -> Iterator:
        """That epoch's training batches from `start` (epochs of `epoch_steps` < a full pass)."""

    def shard_train(self, rank: int, world_size: int) -> None:
        """Keep this rank's rows of every training batch from now on (one of `world_size` equal shards)."""

    def valid_batches(self, start: int = 0) -> Iterator:
        """An endless, deterministic stream of validation batches from position `start`."""

    def init_state(self, model, split: str = "train"):
        """A fresh recurrent state for `split`'s batch size (None for images)."""

    def loss(self, model, batch, state, arch=None, aux_weight: float = 0.0):
        """(mean loss with a graph, new detached state)."""

    def reward(self, model, batch, state, arch=None):
        """(reward of one batch, new state), without gradients."""

    def evaluate(self, model, split: str, arch=None, max_batches: int | None = None) -> dict:
        """{"loss": ..., metric: ...} over the first `max_batches` batches of `split`, fixed order."""

    def score(self, metrics: dict) -> float:
        """The reward that the `metrics` of a whole evaluation correspond to."""

    def metric_of_score(self, score: float) -> float:
        """The inverse of `score`: the metric a reward stands for."""

    def uniform_loss(self) -> float:
        """The loss of a model that knows nothing (uniform predictions): ln(vocabulary or classes)."""


def format_metric(name: str, value: float) -> str:
    """One convention for every command: accuracy in per cent, perplexity as a number."""
    if name == "acc":
        return f"acc {value * 100:.2f}%"
    return f"{name} {value:.2f}" if name == "ppl" else f"{name} {value:.4g}"


def autocast(device: torch.device, dtype: torch.dtype | None):
    """torch.autocast to `dtype` on `device`'s type, or a no-op context when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class LanguageModel:
    """Word-level language modelling on a `Corpus` (see enas.data.text)."""

    kind = "lm"
    metric = "ppl"
    higher_is_better = False

    def __init__(self, corpus, batch_size: int, eval_batch_size: int, bptt: int, device,
                 reward_c: float = 80.0, test_batch_size: int = 1):
        from enas.data.text import batchify
        self.vocab_size = len(corpus.vocab)
        self.bptt = bptt
        self.reward_c = reward_c
        self.device = torch.device(device)
        self.amp_dtype: torch.dtype | None = None   # autocast dtype of the forward passes (accel.amp)
        self.splits = {"train": batchify(corpus.train, batch_size).to(self.device),   # (T, B)
                       "valid": batchify(corpus.valid, eval_batch_size).to(self.device),
                       "test": batchify(corpus.test, test_batch_size).to(self.device)}
        for name, data in self.splits.items():
            if data.shape[0] < 2:
                raise ValueError(f"the {name} split is too short for batch size {data.shape[1]}")

    def model_sizes(self) -> dict:
        return {"vocab_size": self.vocab_size}

    def _windows(self, split: str) -> list[tuple[int, int]]:
        length = self.splits[split].shape[0]
        return [(i, min(self.bptt, length - 1 - i)) for i in range(0, length - 1, self.bptt)]

    def _batch(self, split: str, window: tuple[int, int]):
        data = self.splits[split]
        i, n = window
        return data[i:i + n], data[i + 1:i + 1 + n]          # inputs, targets: (T, B)

    @property
    def num_train_batches(self) -> int:
        return len(self._windows("train"))

    def num_batches(self, split: str) -> int:
        return len(self._windows(split))

    def train_batches(self, epoch: int, start: int = 0, epoch_steps: int | None = None) -> Iterator:
        """Consecutive bptt windows. Epochs shorter than a pass (`epoch_steps`) continue where
        the previous epoch stopped, cycling, so short epochs still walk through the whole text."""
        windows = self._windows("train")
        first = (epoch * epoch_steps) % len(windows) if epoch_steps else 0
        for k in range(start, len(windows)):
            yield self._batch("train", windows[(first + k) % len(windows)])

    def shard_train(self, rank: int, world_size: int) -> None:
        """Keep columns [rank * B/N, (rank + 1) * B/N) of the (T, B) training tokens.

        Column b is one of the B parallel streams of the batchified text; a bptt window is
        (T, B) and the hidden state (B, H), so a rank's window (T, B/N) and state (B/N, H) are
        exactly its rows of the global ones, and the token-mean loss of each shard weighs
        T * B/N tokens.
        """
        data = self.splits["train"]
        self.splits["train"] = data[:, shard_slice(data.shape[1], rank, world_size, "training batch")].contiguous()

    def valid_batches(self, start: int = 0) -> Iterator:
        windows = self._windows("valid")
        for k in itertools.count(start):
            yield self._batch("valid", windows[k % len(windows)])

    def batch_size(self, split: str) -> int:
        return self.splits[split].shape[1]

    def init_state(self, model, split: str = "train"):
        return model.init_hidden(self.batch_size(split))

    def _nll(self, model, batch, state, arch):
        inputs, targets = batch
        with autocast(inputs.device, self.amp_dtype):         # the loss too: autocast runs it in float32
            logits, state = model(inputs, state, arch)        # (T, B, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return loss, state

    def loss(self, model, batch, state, arch=None, aux_weight: float = 0.0):
        loss, state = self._nll(model, batch, state, arch)
        return loss, detach_state(state)

    @torch.no_grad()
    def reward(self, model, batch, state, arch=None):
        loss, state = self._nll(model, batch, state, arch)
        value = loss.item()
        if not math.isfinite(value):      # a diverged architecture earns the worst reward
            return 0.0, self.init_state(model, "valid")
        return self.reward_c / math.exp(min(value, 50.0)), detach_state(state)

    @torch.no_grad()
    def evaluate(self, model, split: str, arch=None, max_batches: int | None = None) -> dict:
        """Token-weighted loss and perplexity over the split's first `max_batches` windows."""
        state = self.init_state(model, split)
        total, count = torch.zeros((), dtype=torch.float64, device=self.device), 0
        for window in self._windows(split)[:max_batches]:
            batch = self._batch(split, window)
            loss, state = self._nll(model, batch, state, arch)
            n = batch[1].numel()
            total, count = total + loss.double() * n, count + n   # summed on the device: no sync per batch
        mean = total.item() / max(count, 1)
        return {"loss": mean, "ppl": math.exp(min(mean, 50.0)) if math.isfinite(mean) else math.inf}

    def score(self, metrics: dict) -> float:
        """The reward that `metrics` of a whole evaluation correspond to."""
        return self.reward_c / metrics["ppl"]

    def metric_of_score(self, score: float) -> float:
        """The perplexity a reward stands for."""
        return self.reward_c / score if score > 0 else math.inf

    def uniform_loss(self) -> float:
        """ln(vocabulary size): the cross-entropy of uniform predictions."""
        return math.log(self.vocab_size)


class ImageClassification:
    """Image classification on tensors kept on the device (see enas.data.images.ImageBatches)."""

    kind = "image"
    metric = "acc"
    higher_is_better = True
    train_rows: slice | None = None        # this rank's rows of each training batch (shard_train)
    channels_last: bool = False            # hand the model NHWC images (accel.channels_last)
    amp_dtype: torch.dtype | None = None   # autocast dtype of the forward passes (accel.amp)

    def __init__(self, train, valid, test, num_classes: int, seed: int = 0):
        self.splits = {"train": train, "valid": valid, "test": test}
        self.num_classes = num_classes
        self.seed = seed
        first = train.x
        self.in_channels, self.image_size = int(first.shape[1]), int(first.shape[-1])

    def model_sizes(self) -> dict:
        return {"num_classes": self.num_classes, "in_channels": self.in_channels,
                "image_size": self.image_size}

    def _generator(self, *key: int) -> torch.Generator:
        g = torch.Generator()  # on the CPU: the same batches whatever the device
        g.manual_seed(hash((self.seed,) + key) % (2**63))
        return g

    @property
    def num_train_batches(self) -> int:
        return self.splits["train"].num_batches

    def num_batches(self, split: str) -> int:
        return self.splits[split].num_batches

    def train_batches(self, epoch: int, start: int = 0, epoch_steps: int | None = None) -> Iterator:
        # The epoch's shuffle and augmentation come from a generator keyed by (seed, epoch),
        # so resuming mid-epoch replays the same batches (a short epoch is the start of a
        # fresh shuffle: `epoch_steps` needs no handling).
        batches = itertools.islice(self.splits["train"].epoch(self._generator(0, epoch)), start, None)
        if self.train_rows is None:
            return batches
        rows = self.train_rows
        return ((images[rows], labels[rows]) for images, labels in batches)

    def shard_train(self, rank: int, world_size: int) -> None:
        """Keep rows [rank * B/N, (rank + 1) * B/N) of each training batch.

        Every rank shuffles and augments the whole global batch with the same generator (keyed
        by seed and epoch) and keeps its rows, so the shards together are exactly the batch of
        one process. BatchNorm then normalises each shard with its own statistics.
        """
        self.train_rows = shard_slice(self.splits["train"].batch_size, rank, world_size, "training batch")

    def valid_batches(self, start: int = 0) -> Iterator:
        valid = self.splits["valid"]
        per_pass = valid.num_batches
        k = start
        while True:
            for batch in itertools.islice(valid.epoch(self._generator(1, k // per_pass)), k % per_pass, None):
                yield batch
                k += 1

    def init_state(self, model, split: str = "train"):
        return None

    @staticmethod
    def _split_outputs(outputs):
        return outputs if isinstance(outputs, tuple) else (outputs, None)

    def _forward(self, model, images, arch):
        """(logits, aux logits or None) of a batch, in the task's memory format and precision."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self._split_outputs(model(images, arch))

    def loss(self, model, batch, state=None, arch=None, aux_weight: float = 0.0):
        images, labels = batch
        with autocast(images.device, self.amp_dtype):
            logits, aux = self._forward(model, images, arch)
            loss = F.cross_entropy(logits, labels)
            if aux is not None and aux_weight:
                loss = loss + aux_weight * F.cross_entropy(aux, labels)
        return loss, None

    @torch.no_grad()
    def reward(self, model, batch, state=None, arch=None):
        images, labels = batch
        with autocast(images.device, self.amp_dtype):
            logits, _ = self._forward(model, images, arch)
        return (logits.argmax(1) == labels).float().mean().item(), None

    @torch.no_grad()
    def evaluate(self, model, split: str, arch=None, max_batches: int | None = None) -> dict:
        """Loss and accuracy over the split's first `max_batches` batches, unaugmented, fixed order."""
        total, correct, count = 0.0, 0, 0
        for images, labels in self.splits[split].fixed_batches(max_batches):
            with autocast(images.device, self.amp_dtype):
                logits, _ = self._forward(model, images, arch)
                loss_sum = F.cross_entropy(logits, labels, reduction="sum")
            # summed on the device: one sync at the end, not one per batch
            total = total + loss_sum.double()
            correct = correct + (logits.argmax(1) == labels).sum()
            count += labels.numel()
        total, correct = float(total), int(correct)
        return {"loss": total / max(count, 1), "acc": correct / max(count, 1)}

    def score(self, metrics: dict) -> float:
        """The reward of a whole evaluation: its accuracy."""
        return metrics["acc"]

    def metric_of_score(self, score: float) -> float:
        """The accuracy a reward stands for (the same number)."""
        return score

    def uniform_loss(self) -> float:
        """ln(number of classes): the cross-entropy of uniform predictions."""
        return math.log(self.num_classes)


class DatasetClassification(ImageClassification):
    """Classification on a user's torch Datasets: (train, valid[, test]) of (input tensor, label) pairs.

    Batches come from `enas.data.datasets.DatasetBatches` (no augmentation: put it in the
    dataset's transform). Without a test split, test metrics are those of the validation split.
    `model_sizes()`: num_classes, input_shape (one input's shape), and in_channels/image_size
    for square (C, H, W) images, so image models built for the built-in data take them too.
    """

    kind = "classification"

    def __init__(self, train, valid, test=None, batch_size: int = 32, eval_batch_size: int | None = None,
                 device="cpu", seed: int = 0, num_classes: int | None = None, num_workers: int = 0):
        from enas.data.datasets import DatasetBatches, check_dataset, count_classes
        shape, _ = check_dataset(train, "train")
        for name, split in (("valid", valid), ("test", test)):
            if split is not None and check_dataset(split, name)[0] != shape:
                raise ValueError(f"{name}[0]: input shape {check_dataset(split, name)[0]} differs from "
                                 f"train's {shape}")
        if len(train) < batch_size:
            raise ValueError(f"train: {len(train)} samples are fewer than batch_size {batch_size}")
        eval_bs = eval_batch_size or batch_size
        self.splits = {"train": DatasetBatches(train, batch_size, device, True, seed, num_workers),
                       "valid": DatasetBatches(valid, eval_bs, device, False, seed, num_workers),
                       "test": DatasetBatches(test if test is not None else valid, eval_bs, device, False, seed,
                                              num_workers)}
        self.num_classes = num_classes or count_classes(train, "train")
        self.seed = seed
        self.input_shape = shape

    def model_sizes(self) -> dict:
        sizes = {"num_classes": self.num_classes, "input_shape": list(self.input_shape)}
        if len(self.input_shape) == 3 and self.input_shape[1] == self.input_shape[2]:
            sizes.update(in_channels=self.input_shape[0], image_size=self.input_shape[1])
        return sizes
