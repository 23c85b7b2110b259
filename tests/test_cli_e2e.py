"""End to end through the commands: search -> derive -> train, for each smoke preset (smoke_ptb
through the installed console scripts, each in its own process; the others call the same entry
functions in this process)."""

import json

import pytest
import torch

from tests.helpers import run_command, run_script

PRESETS = ["smoke_ptb", "smoke_micro", "smoke_macro"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_search_derive_train(preset, tmp_path):
    run_command_or_script = run_script if preset == "smoke_ptb" else run_command
    run_dir, train_dir = tmp_path / "search", tmp_path / "train"
    out = run_command_or_script("enas-search", f"experiment={preset}", f"hydra.run.dir={run_dir}").stdout
    assert "epoch 2/2 done" in out
    assert (run_dir / "checkpoint.pt").exists()
    events = list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file"

    out = run_command_or_script("enas-derive", f"run_dir={run_dir}").stdout
    assert "rank" in out and "wrote" in out
    arch = json.loads((run_dir / "arch.json").read_text())
    assert arch["space"] and arch["version"] == 1 and len(arch["ranking"]) >= 2
    scores = [row["score"] for row in arch["ranking"]]
    assert scores == sorted(scores, reverse=True) and arch["score"] == scores[0]
    assert (run_dir / "arch.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # same inputs and seed, same result
    run_command_or_script("enas-derive", f"run_dir={run_dir}")
    assert json.loads((run_dir / "arch.json").read_text())["ranking"] == arch["ranking"]

    out = run_command_or_script("enas-train", f"arch={run_dir / 'arch.json'}", f"experiment={preset}",
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
    run_command("enas-search", "experiment=smoke_micro", f"hydra.run.dir={run_dir}", "search.epochs=1")
    run_command("enas-derive", f"run_dir={run_dir}")
    train_dir = tmp_path / "train"
    run_command("enas-train", f"arch={run_dir / 'arch.json'}", "experiment=smoke_micro", f"hydra.run.dir={train_dir}")
    out = run_command("enas-train", f"arch={run_dir / 'arch.json'}", "experiment=smoke_micro",
                      f"hydra.run.dir={train_dir}", "resume=true", "trainer.epochs=2").stdout
    assert "resumed" in out and "epoch 2/2" in out
    assert torch.load(train_dir / "checkpoint.pt", weights_only=True)["epoch"] == 2


@pytest.mark.slow
def test_a_nan_storm_gives_the_same_one_line_error_from_search_and_train(tmp_path):
    """Search and final training share one step and one non-finite policy (enas.training)."""
    import numpy as np

    from enas.spaces import build_space
    from enas.strategies.base import uniform_architecture
    diverge = {section: [f"{section}.optim.lr=1e30", f"{section}.optim.grad_clip=0", f"{section}.max_nonfinite=3"]
               for section in ("search", "trainer")}
    search = run_command("enas-search", "experiment=smoke_ptb", *diverge["search"], f"hydra.run.dir={tmp_path / 's'}",
                         check=False)
    space = build_space("rnn_cell", num_nodes=4)
    arch_path = tmp_path / "arch.json"
    arch_path.write_text(json.dumps(space.arch_to_dict(
        uniform_architecture(space.name, space.decisions(), np.random.default_rng(0)))))
    train = run_command("enas-train", "experiment=smoke_ptb", *diverge["trainer"], f"arch={arch_path}",
                        f"hydra.run.dir={tmp_path / 't'}", check=False)
    for proc in (search, train):
        errors = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(errors) == 1, proc.stderr
        assert errors[0].startswith("error: 3 non-finite losses in a row at step ")
        assert "lower the learning rate" in errors[0] and "Traceback" not in proc.stderr
        assert "warning: non-finite loss (nan)" in proc.stdout
    assert search.stderr.split(" at step ")[0] == train.stderr.split(" at step ")[0]
    assert (tmp_path / "s" / "search.log").read_text().count("non-finite loss") == 2
