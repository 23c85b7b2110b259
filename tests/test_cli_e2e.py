"""End to end through the console scripts: search -> derive -> train, for each smoke preset."""

import json

import pytest
import torch

from tests.helpers import run_script

PRESETS = ["smoke_ptb", "smoke_micro", "smoke_macro"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_search_derive_train(preset, tmp_path):
    run_dir, train_dir = tmp_path / "search", tmp_path / "train"
    out = run_script("enas-search", f"experiment={preset}", f"hydra.run.dir={run_dir}").stdout
    assert "epoch 2/2 done" in out
    assert (run_dir / "checkpoint.pt").exists()
    events = list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file"

    out = run_script("enas-derive", f"run_dir={run_dir}").stdout
    assert "rank" in out and "wrote" in out
    arch = json.loads((run_dir / "arch.json").read_text())
    assert arch["space"] and arch["version"] == 1 and len(arch["ranking"]) >= 2
    scores = [row["score"] for row in arch["ranking"]]
    assert scores == sorted(scores, reverse=True) and arch["score"] == scores[0]
    assert (run_dir / "arch.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # same inputs and seed, same result
    run_script("enas-derive", f"run_dir={run_dir}")
    assert json.loads((run_dir / "arch.json").read_text())["ranking"] == arch["ranking"]

    out = run_script("enas-train", f"arch={run_dir / 'arch.json'}", f"experiment={preset}",
                     f"hydra.run.dir={train_dir}").stdout
    assert "final: valid" in out and "test" in out
    result = json.loads((train_dir / "result.json").read_text())
    metric = "ppl" if preset == "smoke_ptb" else "acc"
    assert result["test"][metric] > 0
    state = torch.load(train_dir / "checkpoint.pt", weights_only=True)
    assert state["kind"] == "train" and state["epoch"] == 1


@pytest.mark.slow
def test_train_resumes_for_more_epochs(tmp_path):
    run_dir = tmp_path / "search"
    run_script("enas-search", "experiment=smoke_micro", f"hydra.run.dir={run_dir}", "search.epochs=1")
    run_script("enas-derive", f"run_dir={run_dir}")
    train_dir = tmp_path / "train"
    run_script("enas-train", f"arch={run_dir / 'arch.json'}", "experiment=smoke_micro", f"hydra.run.dir={train_dir}")
    out = run_script("enas-train", f"arch={run_dir / 'arch.json'}", "experiment=smoke_micro",
                     f"hydra.run.dir={train_dir}", "resume=true", "trainer.epochs=2").stdout
    assert "resumed" in out and "epoch 2/2" in out
    assert torch.load(train_dir / "checkpoint.pt", weights_only=True)["epoch"] == 2
