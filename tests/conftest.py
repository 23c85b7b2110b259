"""Shared test helpers: a toy search space with every decision kind, repo paths, markers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from enas.arch import Architecture, Decision
from enas.spaces.base import Graph, SearchSpace

# Tiny tensors: one thread avoids oversubscribing the 2 CI cores (much faster here).
torch.set_num_threads(1)
torch.set_flush_denormal(True)   # as the entry points do (enas.utils.pick_device)


@pytest.fixture(autouse=True)
def _one_torch_thread_again():
    """A command run in-process sets torch's thread count from its `threads` setting; the next
    test (on the same xdist worker) must not inherit it: several comparisons of two code paths
    (channels_last vs default, ...) hold only at one thread count."""
    yield
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


class ToySpace(SearchSpace):
    """Decisions of all three kinds, with micro-style anchors; models are not needed."""

    name = "toy"
    task = "image"

    def __init__(self, num_nodes: int = 3):
        self.num_nodes = num_nodes

    def structure(self):
        return {"num_nodes": self.num_nodes}

    def decisions(self):
        out = []
        for i in range(self.num_nodes):
            out.append(Decision(f"n{i}_in", "input", i + 2))
            out.append(Decision(f"n{i}_op", "op", 4, ("a", "b", "c", "d")))
            if i:
                out.append(Decision(f"n{i}_skip", "skip", i))
            out[-1] = Decision(out[-1].name, out[-1].kind, out[-1].num_choices, out[-1].labels, anchor=True)
        return out

    def build_supernet(self, **sizes):
        raise NotImplementedError("toy space has no models")

    def build_network(self, arch, **sizes):
        raise NotImplementedError("toy space has no models")

    def graph(self, arch: Architecture) -> Graph:
        return Graph(nodes=[("0", "x")])


@pytest.fixture
def toy_space():
    return ToySpace()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
