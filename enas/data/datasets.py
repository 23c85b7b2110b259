"""Batches of a user's `torch.utils.data.Dataset` (any (input, label) pairs), for the tasks.

`DatasetBatches` offers what `enas.tasks.ImageClassification` reads of a split (the interface
of `enas.data.images.ImageBatches`): `num_batches`, `epoch(generator)` (a shuffled pass) and
`fixed_batches(n)` (the first n batches of one fixed shuffled order, for repeatable
validation: a dataset sorted by class, such as an ImageFolder, would otherwise give batches of
one class). Items are loaded through a DataLoader with the given batches of indices, so
`num_workers` > 0 decodes in worker processes and the order stays the one the generator drew.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader


def check_dataset(dataset, name: str) -> tuple[tuple[int, ...], object]:
    """Raise ValueError naming `name` unless `dataset` yields (tensor input, integer label) pairs.

    Returns the input shape and the first label.
    """
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        raise ValueError(f"{name}: expected a torch Dataset (with __len__ and __getitem__), got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError(f"{name}: the dataset is empty")
    item = dataset[0]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise ValueError(f"{name}[0]: expected an (input, label) pair, got {type(item).__name__}")
    x, y = item
    if not torch.is_tensor(x):
        raise ValueError(f"{name}[0]: the input must be a tensor (add a ToTensor transform), got {type(x).__name__}")
    if not (isinstance(y, int) or (torch.is_tensor(y) and y.dim() == 0 and not y.is_floating_point())):
        raise ValueError(f"{name}[0]: the label must be an integer class index, got {y!r}")
    return tuple(x.shape), y


def count_classes(dataset, name: str) -> int:
    """Classes of a labelled dataset: its `classes` list, else 1 + the largest label (reads every label)."""
    classes = getattr(dataset, "classes", None)
    if isinstance(classes, (list, tuple)) and classes:
        return len(classes)
    targets = getattr(dataset, "targets", None)
    labels = targets if targets is not None else [int(dataset[i][1]) for i in range(len(dataset))]
    labels = torch.as_tensor(labels)
    if labels.numel() == 0 or int(labels.min()) < 0:
        raise ValueError(f"{name}: labels must be class indices >= 0")
    return int(labels.max()) + 1


class DatasetBatches:
    """A dataset split as batches on `device` (see the module docstring)."""

    def __init__(self, dataset, batch_size: int, device, drop_last: bool, seed: int, num_workers: int = 0):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.dataset, self.batch_size, self.device = dataset, batch_size, torch.device(device)
        self.drop_last, self.seed, self.num_workers = drop_last, seed, num_workers
        n = len(dataset)
        self.num_batches = n // batch_size if drop_last else -(-n // batch_size)

    def _chunks(self, order: torch.Tensor) -> list[list[int]]:
        chunks = [order[i:i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        return chunks[:self.num_batches]

    def _load(self, chunks: list[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Its own generator: a DataLoader draws a base seed for its workers at every iteration,
        # from the global RNG otherwise, which would shift dropout masks after a resume.
        loader = DataLoader(self.dataset, batch_sampler=chunks, num_workers=self.num_workers,
                            generator=torch.Generator().manual_seed(self.seed))
        for x, y in loader:
            yield x.to(self.device), torch.as_tensor(y, dtype=torch.long).to(self.device)  # (B, ...), (B,)

    def epoch(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass in the order `generator` draws."""
        return self._load(self._chunks(torch.randperm(len(self.dataset), generator=generator)))

    def fixed_batches(self, n: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The first `n` batches (all when None, at most all) of one fixed shuffled order."""
        order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.seed))
        chunks = self._chunks(order)
        return self._load(chunks if n is None else chunks[:n])
