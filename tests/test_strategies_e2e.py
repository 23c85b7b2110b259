"""Every strategy through the console scripts: enas-search then enas-derive, grid refusal, resume."""

import json

import pytest
import torch

from tests.helpers import run_command

# One short epoch: 3 omega steps, 3 theta steps of 2 architectures.
SHORT = ["search.epochs=1", "search.omega_steps=3"]


def search_and_derive(run_dir, *overrides: str) -> dict:
    out = run_command("enas-search", *overrides, f"hydra.run.dir={run_dir}").stdout
    assert "epoch 1/1 done" in out
    run_command("enas-derive", f"run_dir={run_dir}")
    return json.loads((run_dir / "arch.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "evolution", "tpe", "gp", "reinforce"])
def test_search_then_derive(strategy, tmp_path):
    arch = search_and_derive(tmp_path / "run", "experiment=smoke_micro", f"strategy={strategy}", *SHORT)
    assert arch["space"] == "micro_cnn" and len(arch["choices"]) == 16
    assert len(arch["ranking"]) >= 1 and arch["score"] == arch["ranking"][0]["score"]
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["strategy_name"] == strategy and state["history"][-1]["epoch"] == 1


@pytest.mark.slow
def test_grid_preset_enumerates_its_subset(tmp_path):
    arch = search_and_derive(tmp_path / "run", "experiment=smoke_grid", *SHORT)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["strategy"]["count"] == 25 and state["strategy"]["position"] == 6
    # only normal node 0's two ops (decisions 2 and 3) vary, through the first 6 grid points;
    # every other decision keeps its fixed value 0
    ranked = [row["choices"] for row in arch["ranking"]]
    assert {(c[2], c[3]) for c in ranked} == {(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0)}
    assert all(c[:2] + c[4:] == [0] * 14 for c in ranked)


@pytest.mark.slow
def test_grid_over_the_whole_space_fails_cleanly(tmp_path):
    proc = run_command("enas-search", "experiment=smoke_micro", "strategy=grid", *SHORT,
                       f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    # (2*2*5*5 * 3*3*5*5) per cell type, squared for normal + reduce cells
    assert len(errors) == 1 and "506250000 architectures" in errors[0] and "max_count" in errors[0]


def assert_same(a, b, where="state"):
    """Recursive equality of checkpoint contents (tensors compared exactly)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.slow
def test_evolution_resumes_mid_search_like_an_uninterrupted_run(tmp_path):
    # 2 epochs of 3 omega steps; a small population so that mutations happen in epoch 2
    base = ["experiment=smoke_micro", "strategy=evolution", "search.epochs=2", "search.omega_steps=3",
            "strategy.options.population_size=4", "strategy.options.sample_size=2", "search.checkpoint_every=0"]
    full, split = tmp_path / "full", tmp_path / "split"
    run_command("enas-search", *base, "search.max_steps=6", f"hydra.run.dir={full}")
    # stop mid-epoch 2 (after epoch 1's theta phase), then continue to the same end
    out = run_command("enas-search", *base, "search.max_steps=4", f"hydra.run.dir={split}").stdout
    assert "stopped at max_steps=4" in out
    stopped = torch.load(split / "checkpoint.pt", weights_only=True)
    assert stopped["position"]["global_step"] == 4 and len(stopped["strategy"]["population"]) == 4
    out = run_command("enas-search", *base, "search.max_steps=6", "resume=true", f"hydra.run.dir={split}").stdout
    assert "resumed" in out
    a = torch.load(full / "checkpoint.pt", weights_only=True)
    b = torch.load(split / "checkpoint.pt", weights_only=True)
    assert a["position"] == b["position"] and a["position"]["global_step"] == 6
    assert_same(a["strategy"], b["strategy"], "strategy")
    assert_same(a["supernet"], b["supernet"], "supernet")
    assert_same(a["best"], b["best"], "best")
    assert a["strategy"]["step"] == 12  # 2 theta phases of 3 steps x 2 architectures
