"""Bad input gives a one-line error naming the file or key, and nothing written is lost."""

import json

import pytest
import torch

from tests.helpers import run_command


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def test_missing_data_directory(tmp_path):
    proc = run_command("enas-search", "experiment=smoke_ptb", f"data.path={tmp_path / 'nope'}",
                       f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert_one_line_error(proc, "error:", str(tmp_path / "nope"))


def test_empty_data_file(tmp_path):
    data = tmp_path / "corpus"
    data.mkdir()
    (data / "train.txt").write_text("a b c\n" * 200)
    (data / "valid.txt").write_text("")
    (data / "test.txt").write_text("a b\n" * 50)
    proc = run_command("enas-search", "experiment=smoke_ptb", f"data.path={data}",
                       f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert_one_line_error(proc, "error:", "valid.txt")


def test_unknown_config_key(tmp_path):
    proc = run_command("enas-search", "experiment=smoke_ptb", "search.epochz=3",
                       f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode != 0 and "epochz" in proc.stderr


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("search")
    run_command("enas-search", "experiment=smoke_ptb", f"hydra.run.dir={run_dir}", "search.epochs=1")
    run_command("enas-derive", f"run_dir={run_dir}")
    return run_dir


def write_arch(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    out = path.parent / f"bad-{len(list(path.parent.glob('bad-*')))}.json"
    out.write_text(json.dumps(data))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("change, needle", [
    ({"space": "micro_cnn"}, "micro_cnn"),
    ({"choices": [0, 0]}, "decisions"),
    ({"choices": [0, 5, 0, 0, 0, 0, 0]}, "node1_input"),
    ({"choices": [9, 0, 0, 0, 0, 0, 0]}, "node0_act"),
])
def test_bad_arch_json(searched, tmp_path, change, needle):
    bad = write_arch(searched / "arch.json", **change)
    proc = run_command("enas-train", f"arch={bad}", "experiment=smoke_ptb", f"hydra.run.dir={tmp_path / 't'}",
                       check=False)
    assert_one_line_error(proc, str(bad), needle)


@pytest.mark.slow
def test_checkpoint_of_another_size_and_existing_run(searched, tmp_path):
    before = (searched / "checkpoint.pt").read_bytes()
    proc = run_command("enas-search", "experiment=smoke_ptb", f"hydra.run.dir={searched}", "resume=true",
                       "space.sizes.hidden_size=32", check=False)
    assert_one_line_error(proc, "checkpoint.pt", "sizes")
    proc = run_command("enas-search", "experiment=smoke_ptb", f"hydra.run.dir={searched}", check=False)
    assert_one_line_error(proc, "resume=true")
    proc = run_command("enas-search", "experiment=smoke_micro", f"hydra.run.dir={searched}", "resume=true",
                       check=False)
    assert_one_line_error(proc, "checkpoint.pt", "space")
    assert (searched / "checkpoint.pt").read_bytes() == before   # nothing written was lost


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    """torch.load(weights_only=True): a pickled callable is rejected, the payload never runs."""
    import os

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "enas-checkpoint", "version": 1, "kind": "search", "x": Evil()}, path)
    from enas.checkpoint import load_checkpoint
    from enas.utils import UserError
    with pytest.raises(UserError, match="not a readable enas checkpoint"):
        load_checkpoint(str(path))
    assert not marker.exists()
