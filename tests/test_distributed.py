"""Data parallelism (enas.distributed): sharding, and 2 gloo processes against 1 process.

The slow tests start 2 CPU processes (gloo) once for the module and run in them: a smoke PTB
search of 8 omega steps (global batch 16: 8 per rank), one of 4 steps resumed to 8 (through
enas-search's resume: rank 0 reads the checkpoint and sends it), a final training of 2 epochs,
and one of 1 epoch resumed to 2. The same runs in this process (one process, batch 16) are the
reference.

What is compared, and the tolerance: the two ranks must hold bit-identical weights, optimizer
and strategy states (every rank applies the same all-reduced gradient; rank 0's strategy is
replicated). Resumed runs must equal uninterrupted ones bit for bit, as in one process. Two
processes against one: float32 sums in another order (two shard means averaged instead of one
mean over the batch, a flat all-reduce of the gradients) differ by about 1e-7 per step; after
8 steps the largest difference seen is 1.2e-7 on weights of size ~0.1. `assert_close` with
rtol=1e-5, atol=1e-6 sits ten times above that, while the training moves the weights by more
than 1e-3 (checked), so a wrong shard, a summed instead of averaged gradient or a
missing all-reduce fails it. The smoke PTB preset has no dropout and no BatchNorm in the search;
the training test sets its dropouts to 0 (dropout masks are drawn per rank, so with dropout two
processes equal one process in distribution only).

Longer runs drift apart as any rounding-sized perturbation does in this recipe (lr 5, loss
spikes): after 30 steps two processes differ from one by 3e-3, and one process whose starting
weights were perturbed by one float32 ulp differs from the unperturbed run by 1.4e-3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.testing import assert_close

from enas.arch import Architecture, save_json
from enas.build import build_search, build_space, build_task, build_training
from enas.checkpoint import load_checkpoint
from enas.distributed import SINGLE, Dist, shard_slice
from enas.utils import UserError
from tests.dist_workers import search_and_train_job, spawn_gloo
from tests.helpers import compose_config

RTOL, ATOL = 1e-5, 1e-6
STEPS, HALF, EPOCHS = 8, 4, 2
SEARCH = ["experiment=smoke_ptb", "device=cpu", "search.log_every=0", "search.omega_steps=5", "search.epochs=3",
          "search.strategy_steps=2", "search.checkpoint_every=0", "search.valid_batches=2"]
NO_DROPOUT = [f"trainer.sizes.{k}_dropout=0.0" for k in ("emb", "in", "hidden", "out")]
TRAIN = ["experiment=smoke_ptb", "device=cpu", "trainer.log_every=0", "trainer.steps_per_epoch=4",
         "trainer.valid_batches=2", *NO_DROPOUT]
CHOICES = (0, 0, 1, 1, 0, 0, 2)          # an rnn_cell architecture of 4 nodes


# --- sharding, without processes -----------------------------------------------------------------
def test_equal_shards_cover_the_batch_and_uneven_ones_are_refused():
    assert [shard_slice(16, r, 4) for r in range(4)] == [slice(0, 4), slice(4, 8), slice(8, 12), slice(12, 16)]
    with pytest.raises(UserError, match="size 16 does not split into 3 equal shards"):
        shard_slice(16, 1, 3)


def test_one_process_is_the_identity():
    state = (torch.randn(4, 3), torch.randn(4, 3))
    assert SINGLE.gather_batch(state) is state and SINGLE.shard_batch(state) is state
    assert SINGLE.broadcast_object({"a": 1}) == {"a": 1} and SINGLE.rng_states() is None


def test_language_model_shards_are_columns_of_the_global_batch():
    cfg = compose_config("search", SEARCH)
    whole = build_task(cfg["data"], "cpu", 0)
    shards = [build_task(cfg["data"], "cpu", 0) for _ in range(2)]
    for rank, task in enumerate(shards):
        task.shard_train(rank, 2)
    batches = [next(t.train_batches(1, start=3, epoch_steps=5)) for t in (whole, *shards)]
    for k in (0, 1):                                     # inputs, targets: (T, B) -> two (T, B/2)
        assert torch.equal(torch.cat([batches[1][k], batches[2][k]], dim=1), batches[0][k])
    assert shards[0].batch_size("train") == 8 and shards[0].batch_size("valid") == 16


def test_image_shards_are_rows_of_the_same_augmented_batch():
    cfg = compose_config("search", ["experiment=smoke_micro"])
    whole = build_task(cfg["data"], "cpu", 0)
    shards = [build_task(cfg["data"], "cpu", 0) for _ in range(2)]
    for rank, task in enumerate(shards):
        task.shard_train(rank, 2)
    batches = [next(t.train_batches(2, start=1)) for t in (whole, *shards)]
    assert batches[1][0].shape[0] == 16
    for k in (0, 1):                                     # images (B, C, H, W), labels (B,)
        assert torch.equal(torch.cat([batches[1][k], batches[2][k]]), batches[0][k])


def test_several_processes_refuse_a_search_without_a_supernet_or_an_uneven_batch(tmp_path):
    two, three = Dist(rank=0, world_size=2), Dist(rank=0, world_size=3)   # no collective is reached
    with pytest.raises(UserError, match="has none"):
        build_search(compose_config("search", SEARCH + ["evaluator=standalone"]), str(tmp_path), "cpu", dist=two)
    with pytest.raises(UserError, match="16 does not split into 3 equal shards"):
        build_search(compose_config("search", SEARCH), str(tmp_path), "cpu", dist=three)


def test_a_rank_takes_rank_0s_run_dir_and_drops_its_own_empty_hydra_dir(tmp_path):
    from enas.runs import _agreed_run_dir as agreed_run_dir

    class Rank1:                                          # broadcast_object answers rank 0's value
        def broadcast_object(self, obj):
            return str(tmp_path / "rank0")

    mine, kept = tmp_path / "rank1", tmp_path / "rank1-with-files"
    (mine / ".hydra").mkdir(parents=True)
    (kept / ".hydra").mkdir(parents=True)
    (kept / "checkpoint.pt").write_bytes(b"")
    assert agreed_run_dir(Rank1(), str(mine)) == str(tmp_path / "rank0") and not mine.exists()
    assert agreed_run_dir(Rank1(), str(kept)) == str(tmp_path / "rank0") and kept.exists()


# --- 2 gloo processes against 1 process -----------------------------------------------------------
def write_arch(path) -> str:
    space = build_space(compose_config("train", TRAIN + ["arch=x"])["space"])
    save_json(str(path), space.arch_to_dict(Architecture("rnn_cell", CHOICES)))
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both jobs in 2 processes (one start-up), and the 1-process references."""
    tmp = tmp_path_factory.mktemp("ddp")
    train_cfg = compose_config("train", TRAIN + [f"arch={write_arch(tmp / 'arch.json')}"])
    two = spawn_gloo(search_and_train_job, 2, str(tmp), compose_config("search", SEARCH), train_cfg,
                     str(tmp / "two"), STEPS, HALF, EPOCHS)
    cfg = compose_config("search", SEARCH)
    cfg["search"]["max_steps"] = STEPS
    start = {k: v.clone() for k, v in build_search(cfg, str(tmp / "init"), "cpu").supernet.state_dict().items()}
    one = build_search(cfg, str(tmp / "one"), "cpu")
    one.run()
    train_cfg["trainer"]["epochs"] = EPOCHS
    _, _, trainer = build_training(train_cfg, {"space": "rnn_cell", "choices": list(CHOICES)}, "arch", "cpu",
                                   str(tmp / "one-train"))
    train_start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    return {"two": two, "one": one, "start": start, "trainer": trainer, "train_start": train_start,
            "tmp": tmp, "cfg": cfg}


def assert_identical(a, b, where=""):
    """Bit-identical nested dicts/lists of tensors and plain values."""
    if torch.is_tensor(a):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def assert_close_and_moved(expected: dict, got: dict, start: dict):
    """`got` within tolerance of `expected`, which training moved far beyond it from `start`."""
    moved = max((value - start[name]).abs().max().item() for name, value in expected.items())
    assert moved > 1e-3, "the weights barely trained: the comparison would be void"
    for name, value in expected.items():
        assert_close(got[name], value, rtol=RTOL, atol=ATOL, msg=lambda m: f"{name}: {m}")


@pytest.mark.slow
def test_two_processes_search_like_one_process_with_the_global_batch(runs):
    rank0, rank1 = (r["search"]["whole"] for r in runs["two"])
    one = runs["one"]
    assert_identical(rank0["supernet"], rank1["supernet"], "supernet")
    assert_identical(rank0["strategy"], rank1["strategy"], "strategy")    # controller, Adam, baseline, best
    assert_identical(rank0["history"], rank1["history"], "history")
    assert rank0["global_step"] == one.global_step == STEPS
    assert_close_and_moved(one.supernet.state_dict(), rank0["supernet"], runs["start"])
    for name, value in one.strategy.controller.state_dict().items():
        assert_close(rank0["strategy"]["controller"][name], value, rtol=RTOL, atol=ATOL)
    assert [h["best_arch"] for h in rank0["history"]] == [h["best_arch"] for h in one.history]
    # each rank carries its rows of the recurrent state: (8, H) of the global (16, H)
    assert_close(torch.cat([rank0["train_state"], rank1["train_state"]]), one.train_state, rtol=RTOL, atol=ATOL)


@pytest.mark.slow
def test_two_process_search_resumes_exactly_and_with_one_process(runs):
    for rank in runs["two"]:
        assert_identical(rank["search"]["resumed"]["supernet"], rank["search"]["whole"]["supernet"], "supernet")
        assert_identical(rank["search"]["resumed"]["strategy"], rank["search"]["whole"]["strategy"], "strategy")
        assert rank["search"]["resumed"]["global_step"] == STEPS
    # the 2-process checkpoint of step 4, continued by one process: the 1-process run again
    part = load_checkpoint(str(runs["tmp"] / "two" / "search" / "part" / "checkpoint.pt"), kind="search")
    assert part["position"]["global_step"] == HALF and len(part["rng_ranks"]) == 2
    assert part["train_state"].shape == (16, 24)                  # the global state: any process count
    loop = build_search(runs["cfg"], str(runs["tmp"] / "resumed-one"), "cpu")
    loop.load_state_dict(part)
    loop.run()
    assert loop.global_step == STEPS
    assert_close_and_moved(runs["one"].supernet.state_dict(), loop.supernet.state_dict(), runs["start"])


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_the_global_batch(runs):
    rank0, rank1 = (r["train"] for r in runs["two"])
    trainer = runs["trainer"]
    assert_identical(rank0["whole"]["model"], rank1["whole"]["model"], "model")
    assert_identical(rank0["whole"]["history"], rank1["whole"]["history"], "history")
    assert_identical(rank0["resumed"]["model"], rank0["whole"]["model"], "resumed model")
    assert rank0["resumed"]["epoch"] == trainer.epoch == EPOCHS
    assert_close_and_moved(trainer.model.state_dict(), rank0["whole"]["model"], runs["train_start"])
    for mine, theirs in zip(rank0["whole"]["history"], trainer.history):
        assert mine["valid_loss"] == pytest.approx(theirs["valid_loss"], rel=1e-5)
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)


# --- the console scripts under torchrun -------------------------------------------------------------
def torchrun(*args: str) -> str:
    """Run torchrun with 2 local CPU processes (a free port of its own); its output."""
    exe = os.path.join(os.path.dirname(sys.executable), "torchrun")
    proc = subprocess.run([exe, "--standalone", "--nproc_per_node=2", *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"torchrun {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_console_scripts_under_torchrun_write_once_from_rank_0(tmp_path):
    """enas-search (the console script) and enas-train (python -m) on a CNN preset, 2 processes:
    images sharded by rows, BatchNorm per shard; one copy of every file and log line."""
    search_dir, train_dir = tmp_path / "search", tmp_path / "train"
    script = os.path.join(os.path.dirname(sys.executable), "enas-search")
    out = torchrun("--no-python", script, "experiment=smoke_micro", "device=cpu", "search.omega_steps=2",
                   "search.strategy_steps=1", f"hydra.run.dir={search_dir}")
    assert out.count("data parallel: 2 processes, backend gloo") == 1
    assert out.count("== epoch 2/2 done") == 1
    state = load_checkpoint(str(search_dir / "checkpoint.pt"), kind="search")
    assert state["position"]["global_step"] == 4 and len(state["rng_ranks"]) == 2
    assert len(list((search_dir / "tb").glob("events.out.tfevents.*"))) == 1
    assert (search_dir / "search.log").read_text().count("== epoch 2/2 done") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search"]          # no second run dir

    space = build_space(compose_config("search", ["experiment=smoke_micro"])["space"])
    arch_path = tmp_path / "arch.json"                  # the best architecture the search saw
    best = state["best"][0]["choices"]
    save_json(str(arch_path), space.arch_to_dict(Architecture.from_plain(space.name, best)))
    out = torchrun("-m", "enas.cli.train", f"arch={arch_path}", "experiment=smoke_micro", "device=cpu",
                   "trainer.steps_per_epoch=2", f"hydra.run.dir={train_dir}")
    assert out.count("final: valid") == 1
    assert json.loads((train_dir / "result.json").read_text())["test"]["acc"] > 0
    assert len(load_checkpoint(str(train_dir / "checkpoint.pt"), kind="train")["rng_ranks"]) == 2
