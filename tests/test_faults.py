"""Faults a long search meets: kills, a full or read-only disk, corrupt checkpoints, two writers,
files that are not what they claim, and checkpoints that name code.

The kill tests run the real console scripts, SIGKILL them at seeded random moments, resume, and
compare every tensor of the final checkpoint with an uninterrupted run in this process.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from enas.arch import save_json
from enas.checkpoint import existing_checkpoints, load_checkpoint, load_latest_checkpoint, save_checkpoint
from enas.data.text import load_corpus
from enas.fileio import TEMP_PREFIX, atomic_write
from enas.runlock import run_dir_lock
from enas.utils import UserError
from tests.helpers import compose_config

BIN = Path(sys.executable).parent
# One thread everywhere: the uninterrupted run in this process and the killed ones must do the
# same arithmetic; the spawn workers of the standalone evaluator follow the same rule.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
KILLS = 3


# --- helpers ---------------------------------------------------------------------------------------
def write_corpus(folder: Path) -> Path:
    """A tiny PTB-format corpus (seeded): fast to load, enough batches for a smoke search."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(40)]
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in (("train", 400), ("valid", 80), ("test", 80)):
        text = "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))) for _ in range(lines))
        (folder / f"ptb.{split}.txt").write_text(text + "\n")
    return folder


def leaves(value, path=()):
    """Every leaf of a nested dict/list as (path, value), skipping the config and timings."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in ("config", "seconds"):
                yield from leaves(item, path + (key,))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from leaves(item, path + (i,))
    else:
        yield path, value


def assert_same_checkpoint(expected: dict, actual: dict) -> int:
    """Every tensor and value of two checkpoints is equal; returns the number of tensors."""
    want, got = dict(leaves(expected)), dict(leaves(actual))
    assert want.keys() == got.keys()
    tensors = 0
    for path, value in want.items():
        if torch.is_tensor(value):
            assert torch.equal(value, got[path]), path
            tensors += 1
        else:
            assert value == got[path], path
    return tensors


# The kill tests run the entry functions of enas-search and enas-train (what the console scripts
# call once Hydra has parsed the command line) in processes forked from a fork server that has
# imported torch and enas once: a fresh interpreter per start would spend most of the test's
# time importing torch. A SIGKILL ends them exactly as it ends a console script.
_SERVER = None


def fork_server():
    global _SERVER
    if _SERVER is None:
        _SERVER = multiprocessing.get_context("forkserver")
        _SERVER.set_forkserver_preload(["torch", "enas.cli.search", "enas.cli.train", "tests.test_faults"])
    return _SERVER


def _entry(command: str, config: dict, run_dir: str, log: str) -> None:
    """Body of a started process: run_search / run_train of `config`, all output into `log`."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    torch.set_num_threads(1)
    import logging
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s", force=True)
    from enas.cli.search import run_search
    from enas.cli.train import run_train
    try:
        (run_search if command == "search" else run_train)(config, run_dir)
    except UserError as e:
        print(f"error: {e}", flush=True)
        os._exit(2)


def start(command: str, config: dict, run_dir: Path, log: Path):
    proc = fork_server().Process(target=_entry, args=(command, config, str(run_dir), str(log)))
    proc.start()
    return proc


def wait_for(predicate, proc=None, timeout: float = 120.0) -> bool:
    """Poll `predicate` until it holds (True) or the process `proc` ends first (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc is not None and not alive(proc):
            return predicate()
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def alive(proc) -> bool:
    """A multiprocessing.Process or a subprocess.Popen that still runs."""
    return proc.is_alive() if hasattr(proc, "is_alive") else proc.poll() is None


def output(log: Path) -> str:
    return log.read_text() if log.exists() else ""


def kill_and_resume(command: str, config: dict, run_dir: Path, rng: random.Random, window: float,
                    logs: Path, corrupt_at: int | None = None) -> list[str]:
    """Start `command` KILLS times, SIGKILL each at a random moment of its loop, then finish it.

    Each start resumes when a checkpoint exists. Before start number `corrupt_at`, when two
    checkpoints exist, the newest is cut in half, so that resume must fall back to the other.
    Returns the output of every start.
    """
    outputs = []
    for attempt in range(KILLS + 1):
        kept = existing_checkpoints(str(run_dir / "checkpoint.pt"))
        if attempt == corrupt_at and len(kept) >= 2:
            newest = Path(kept[0])
            newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
        log = logs / f"{command}-{attempt}.log"
        proc = start(command, {**config, "resume": bool(kept)}, run_dir, log)
        if attempt < KILLS:
            if wait_for(lambda: "run dir" in output(log), proc):
                time.sleep(rng.uniform(0.0, window))
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass                           # it finished first
        proc.join(timeout=300)
        assert attempt < KILLS or proc.exitcode == 0, output(log)[-3000:]
        outputs.append(output(log))
    return outputs


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]


# --- 1. the one atomic, durable writer -----------------------------------------------------------
def test_atomic_write_all_or_nothing(tmp_path):
    path = tmp_path / "out.json"
    save_json(str(path), {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and oct(path.stat().st_mode & 0o777) == "0o644"

    def fails_half_way(f):
        f.write(b"{\"partial\": ")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fails_half_way)
    assert json.loads(path.read_text()) == {"a": 1}          # untouched, and no temp file left
    assert no_temp_files(tmp_path)


def test_missing_folder_and_file_in_the_way(tmp_path):
    with pytest.raises(UserError, match=r"gone/x\.json: folder .*gone does not exist.*was not created"):
        atomic_write(tmp_path / "gone" / "x.json", lambda f: f.write(b"{}"))
    (tmp_path / "afile").write_text("")
    with pytest.raises(UserError, match=r"afile is a file, not a folder"):
        save_json(str(tmp_path / "afile" / "sub" / "arch.json"), {})


def mount_tmpfs(folder: Path, size_kb: int, read_only: bool = False) -> bool:
    """A tiny tmpfs at `folder` when this process may mount one (root in a container)."""
    folder.mkdir()
    options = f"size={size_kb}k" + (",ro" if read_only else "")
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True)


def state_of(step: int, kb: int = 100) -> dict:
    return {"kind": "search", "position": {"epoch": 0, "global_step": step},
            "weights": torch.full((kb * 256,), float(step))}        # kb KiB of float32


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """Two 100 KiB checkpoints fit on a 256 KiB disk, the third does not."""
    disk = tmp_path / "disk"
    real = mount_tmpfs(disk, 256)
    try:
        path = str(disk / "checkpoint.pt")
        save_checkpoint(path, state_of(1))
        save_checkpoint(path, state_of(2))
        if not real:                # no tmpfs to fill: the same error from the file system layer
            def no_space(fd):
                raise OSError(errno.ENOSPC, "No space left on device")
            monkeypatch.setattr("enas.fileio.os.fsync", no_space)
        with pytest.raises(UserError) as info:
            save_checkpoint(path, state_of(3))
        message = str(info.value)
        assert message.startswith(f"disk full writing {path} (No space left on device)"), message
        assert f"the previous checkpoint {path} (step 2) is intact" in message
        assert "\n" not in message
        monkeypatch.undo()
        assert load_checkpoint(path)["position"]["global_step"] == 2
        assert load_checkpoint(str(disk / "checkpoint.prev.pt"))["position"]["global_step"] == 1
        assert no_temp_files(disk)
    finally:
        if real:
            unmount(disk)


def make_read_only(folder: Path, monkeypatch) -> str:
    """Make `folder` (holding files already) unwritable the best way this process can; how."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return "chmod"
    if subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True).returncode == 0:
        return "mount"

    def read_only(*args, **kwargs):     # root ignores permissions: raise what the kernel would
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr("enas.fileio.tempfile.mkstemp", read_only)
    monkeypatch.setattr("enas.runlock.os.open", read_only)
    return "patched"


def test_read_only_run_directory(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    mounted = mount_tmpfs(folder, 64)
    try:
        save_json(str(folder / "arch.json"), {"v": 1})
        how = make_read_only(folder, monkeypatch)
        with pytest.raises(UserError) as info:
            save_json(str(folder / "arch.json"), {"v": 2})
        message = str(info.value)
        expected = "no permission to write in" if how == "chmod" else "read-only file system"
        assert message == f"cannot write {folder / 'arch.json'}: {expected}" + \
            (f" {folder}" if how == "chmod" else "") + f"; {folder / 'arch.json'} is unchanged", message
        with pytest.raises(UserError, match=r"cannot lock run directory .*\.lock \(.*\); is it read-only\?"):
            with run_dir_lock(str(folder)):
                pass
        monkeypatch.undo()
        assert json.loads((folder / "arch.json").read_text()) == {"v": 1}
    finally:
        if not mounted:
            folder.chmod(0o755)
        else:
            unmount(folder)


# --- 2. durable checkpoints with a fallback ------------------------------------------------------
def test_rotation_keeps_the_last_k(tmp_path):
    path = str(tmp_path / "checkpoint.pt")
    for step in range(1, 5):
        save_checkpoint(path, state_of(step, kb=1), keep=3)
    names = [os.path.basename(p) for p in existing_checkpoints(path)]
    assert names == ["checkpoint.pt", "checkpoint.prev.pt", "checkpoint.prev2.pt"]
    assert [load_checkpoint(p)["position"]["global_step"] for p in existing_checkpoints(path)] == [4, 3, 2]
    save_checkpoint(path, state_of(5, kb=1), keep=2)          # a smaller `keep` prunes the oldest
    assert [load_checkpoint(p)["position"]["global_step"] for p in existing_checkpoints(path)] == [5, 4]
    with pytest.raises(UserError, match="keep_checkpoints=0"):
        save_checkpoint(path, state_of(6, kb=1), keep=0)


def test_truncated_newest_falls_back_to_the_previous(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(str(path), state_of(10, kb=4))
    save_checkpoint(str(path), state_of(20, kb=4))
    path.write_bytes(path.read_bytes()[:3000])
    warnings = []
    state = load_latest_checkpoint(str(path), warn=warnings.append)
    assert state["position"]["global_step"] == 10
    assert len(warnings) == 1 and str(path) in warnings[0] and "not a readable enas checkpoint" in warnings[0]
    assert f"using the previous checkpoint {tmp_path / 'checkpoint.prev.pt'} (step 10)" in warnings[0]
    assert "the work from step 10 to step 20 (10 steps) is lost" in warnings[0]
    (tmp_path / "checkpoint.prev.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"no readable checkpoint in .*checkpoint\.pt: .*checkpoint\.prev\.pt: "):
        load_latest_checkpoint(str(path), warn=warnings.append)


# --- 3. one writer per run directory -------------------------------------------------------------
HOLDER = """
import sys, time
from enas.runlock import run_dir_lock
with run_dir_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_second_writer_refused_and_lock_freed_by_sigkill(tmp_path):
    run_dir = tmp_path / "run"
    script = tmp_path / "hold_lock.py"
    script.write_text(HOLDER)
    log = tmp_path / "holder.log"
    with open(log, "w") as out:
        holder = subprocess.Popen([sys.executable, str(script), str(run_dir)], stdout=out, env=ENV)
    try:
        wait_for(lambda: "locked" in log.read_text(), holder, timeout=60)
        proc = subprocess.run([str(BIN / "enas-search"), "experiment=smoke_ptb", f"hydra.run.dir={run_dir}",
                               "resume=true"], capture_output=True, text=True, env=ENV, timeout=120)
        assert proc.returncode == 2
        err = proc.stderr.strip()
        assert "\n" not in err and "Traceback" not in err, err
        assert f"{run_dir} is in use by another enas process (pid {holder.pid}: hold_lock.py {run_dir}" in err
        with pytest.raises(UserError, match=f"pid {holder.pid}"):   # this process is refused too
            with run_dir_lock(str(run_dir)):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with run_dir_lock(str(run_dir)):                       # the kernel dropped the dead holder's lock
        with run_dir_lock(str(run_dir)):                   # re-entrant within one process
            assert json.loads((run_dir / ".lock").read_text())["pid"] == os.getpid()


# --- 4. readers name the file --------------------------------------------------------------------
@pytest.mark.parametrize("content, needle", [
    (b"\xbb\xef binary \x00\xff", r"not UTF-8 text in PTB format .*byte 0xbb at offset 0"),
    (b"a b c\n\x00\x00\x00\n", r"binary data \(a NUL byte at offset 6\), expected UTF-8 text in PTB format"),
    (b"\x1f\x8b\x08\x00rest", r"gzip-compressed data, expected UTF-8 text in PTB format"),
])
def test_corpus_that_is_not_text(tmp_path, content, needle):
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "ptb.train.txt").write_bytes(content)
    with pytest.raises(ValueError, match=f"{corpus / 'ptb.train.txt'}: {needle}"):
        load_corpus(corpus)


def test_image_files_that_are_not_what_they_claim(tmp_path):
    from enas.data.images import load_cifar10_batches, load_fashion_mnist, load_image_folder
    cifar = tmp_path / "cifar-10-batches-py"
    cifar.mkdir()
    (cifar / "data_batch_1").write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(ValueError, match=r"data_batch_1: .*expected a CIFAR-10 python batch"):
        load_cifar10_batches(cifar)
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    (idx / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + (0).to_bytes(4, "big"))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: corrupt gzip data .*expected a gzipped idx"):
        load_fashion_mnist(idx)
    archive = tmp_path / "images.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)))
    with pytest.raises(ValueError, match=r"images\.tar\.gz: cannot read tar archive .*expected a \.tar or \.tar\.gz"):
        load_image_folder(archive)
    folder = tmp_path / "folder"
    for split in ("train", "test"):
        (folder / split / "cat").mkdir(parents=True)
        (folder / split / "cat" / "0.png").write_bytes(b"<html>not an image</html>")
    with pytest.raises(ValueError, match=r"train/cat/0\.png: cannot decode image .*expected an image file"):
        load_image_folder(folder)


def test_binary_corpus_gives_one_line_at_the_command_line(tmp_path, capsys):
    """What the entry points print (their `user_errors` wrapper), without starting a process."""
    from enas.build import build_task
    from enas.cli.common import user_errors
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "ptb.train.txt").write_bytes(b"\xbb" + bytes(range(256)))
    data = compose_config("search", ["experiment=smoke_ptb", f"data.path={corpus}"])["data"]
    with pytest.raises(SystemExit) as info:
        user_errors(lambda: build_task(data, "cpu", 0))()
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {corpus / 'ptb.train.txt'}: not UTF-8 text in PTB format"), err


# --- 5. SIGKILL at random moments, resume, compare with an uninterrupted run ---------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def search_args(corpus: Path) -> list[str]:
    return ["experiment=smoke_ptb", f"data.path={corpus}", "search.epochs=2", "search.omega_steps=8",
            "search.strategy_steps=3", "search.valid_batches=2", "search.checkpoint_every=3",
            "search.log_every=0", "derive.num_samples=2", "derive.valid_batches=1"]


@pytest.fixture(scope="module")
def reference_search(corpus, tmp_path_factory):
    """The uninterrupted search, run in this process through the same entry function."""
    from enas.cli.search import run_search
    run_dir = tmp_path_factory.mktemp("reference-search")
    run_search(compose_config("search", search_args(corpus)), str(run_dir))
    return run_dir


def test_search_killed_at_random_moments_resumes_exactly(corpus, reference_search, tmp_path):
    run_dir = tmp_path / "run"
    config = compose_config("search", search_args(corpus))
    outputs = kill_and_resume("search", config, run_dir, random.Random(10), window=1.0, logs=tmp_path,
                              corrupt_at=KILLS)
    if "using the previous checkpoint" not in outputs[-1]:
        assert len(outputs) == KILLS + 1      # only when fewer than two checkpoints existed
    tensors = assert_same_checkpoint(load_checkpoint(str(reference_search / "checkpoint.pt")),
                                     load_checkpoint(str(run_dir / "checkpoint.pt")))
    assert tensors > 10
    assert no_temp_files(run_dir)


def test_final_training_killed_at_random_moments_resumes_exactly(corpus, tmp_path):
    from enas.cli.train import run_train
    from enas.spaces import build_space
    from enas.strategies.base import uniform_architecture
    space = build_space("rnn_cell", num_nodes=4)
    arch = uniform_architecture(space.name, space.decisions(), np.random.default_rng(3))
    arch_path = tmp_path / "arch.json"
    save_json(str(arch_path), space.arch_to_dict(arch))
    config = compose_config("train", ["experiment=smoke_ptb", f"data.path={corpus}", f"arch={arch_path}",
                                      "trainer.epochs=4", "trainer.steps_per_epoch=6", "trainer.valid_batches=2",
                                      "trainer.log_every=0"])
    run_train(config, str(tmp_path / "reference"))
    run_dir = tmp_path / "run"
    kill_and_resume("train", config, run_dir, random.Random(20), window=1.0, logs=tmp_path)
    tensors = assert_same_checkpoint(load_checkpoint(str(tmp_path / "reference" / "checkpoint.pt")),
                                     load_checkpoint(str(run_dir / "checkpoint.pt")))
    assert tensors >= 8                       # weights, optimizer state, RNG states
    assert json.loads((run_dir / "result.json").read_text())["test"] == \
        json.loads((tmp_path / "reference" / "result.json").read_text())["test"]


def worker_pids(parent: int) -> list[int]:
    """The process-pool workers of `parent` (spawned python processes, not the resource tracker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), None)
        if ppid == parent and "multiprocessing" in cmdline and "resource_tracker" not in cmdline:
            pids.append(int(entry.name))
    return pids


def journal_rewards(run_dir: Path) -> dict:
    lines = (run_dir / "evaluations.jsonl").read_text().splitlines()
    return {(e["phase"], e["index"]): (e["choices"], e["reward"]) for e in map(json.loads, lines)}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="finds worker processes through /proc")
def test_async_standalone_search_survives_a_killed_worker(corpus, tmp_path):
    """NAS-RL with 2 asynchronous workers; one worker is SIGKILLed from outside mid-search.

    Results are told in the order they arrive, which timing decides; with the random strategy
    the proposals do not depend on that order, so the final state must equal an uninterrupted
    run's (the controller of `reinforce` would learn from a timing-dependent order).
    """
    from enas.cli.search import run_search
    config = compose_config("search", [
        "experiment=smoke_nas_rnn", f"data.path={corpus}", "strategy=random", "evaluator.options.mode=async",
        "evaluator.options.workers=2", "evaluator.options.engine=process", "evaluator.options.steps_per_epoch=3",
        "evaluator.options.valid_batches=2", "search.epochs=1", "search.strategy_steps=2", "search.archs_per_step=2"])
    run_search(config, str(tmp_path / "reference"))
    run_dir, log = tmp_path / "run", tmp_path / "search.log"
    proc = start("search", config, run_dir, log)
    try:
        wait_for(lambda: len(worker_pids(proc.pid)) == 2, proc)
        os.kill(worker_pids(proc.pid)[0], signal.SIGKILL)
        proc.join(timeout=300)
        assert proc.exitcode == 0, output(log)[-3000:]
    finally:
        if proc.is_alive():
            proc.kill()
    assert "worker process died" in output(log)
    assert journal_rewards(run_dir) == journal_rewards(tmp_path / "reference")
    want = load_checkpoint(str(tmp_path / "reference" / "checkpoint.pt"))
    got = load_checkpoint(str(run_dir / "checkpoint.pt"))
    for state in (want, got):
        # arrival order shows only in the heap's layout, and in which of equal rewards an
        # epoch summary names as its best architecture
        state["strategy"]["best"] = sorted(state["strategy"]["best"])
        state["best"] = sorted(state["best"], key=lambda b: (-b["reward"], b["choices"]))
        for summary in state["history"]:
            summary.pop("best_arch")
    assert_same_checkpoint(want, got)


# --- 6. what a run directory holds is data, never code -------------------------------------------
def tampered_run(reference_search: Path, run_dir: Path, marker: Path, where: str) -> Path:
    """A copy of a search run whose stored config names os.system (as a _target_ or a name)."""
    state = load_checkpoint(str(reference_search / "checkpoint.pt"))
    call = {"_target_": "os.system", "_args_": [f"touch {marker}"], "command": f"touch {marker}"}
    config = state["config"]
    if where.startswith("target"):
        config.update(call)
        for section in ("space", "strategy", "evaluator", "data", "search"):
            config[section] = {**config[section], **call}
        if where == "target_option":
            config["strategy"]["options"] = {**config["strategy"].get("options", {}), **call}
    elif where == "custom":                     # space=custom / data=custom with a stored target
        config["space"] = {"name": "custom", "target": "os:system", "kwargs": {"command": f"touch {marker}"},
                           "sizes": {}}
        config["data"] = {**config["data"], "name": "custom", "target": "os:system", "kwargs": {}}
        state["space"] = "os:system"
    else:
        config[where]["name"] = "os.system"
        state[f"{where}_name" if where == "strategy" else where] = "os.system"
    run_dir.mkdir()
    torch.save(state, run_dir / "checkpoint.pt")
    return run_dir


@pytest.mark.parametrize("where", ["target", "target_option", "space", "strategy", "custom"])
def test_checkpoint_naming_os_system_is_never_called(reference_search, corpus, tmp_path, where):
    from enas.cli.derive import run_derive
    from enas.cli.search import run_search
    marker = tmp_path / "pwned"
    run_dir = tampered_run(reference_search, tmp_path / "run", marker, where)
    derive = {"run_dir": str(run_dir), "device": "cpu", "num_samples": None, "valid_batches": None, "seed": None,
              "top": 3}
    if where == "target":
        run_derive(derive)                      # _target_ keys are ignored: derive just works
        assert (run_dir / "arch.json").exists()
    elif where == "custom":                     # a stored user-code target is never imported
        with pytest.raises(UserError, match="the run used a custom space; name its code again"):
            run_derive(derive)
    else:                                       # a name nothing registers, or an option, is refused
        with pytest.raises((UserError, ValueError), match="unknown search space 'os.system'|unknown strategy "
                           "'os.system'|bad option .*_target_"):
            run_derive(derive)
    resume = compose_config("search", [*search_args(corpus), "resume=true", "search.epochs=3"])
    if where in ("space", "strategy", "custom"):  # resume compares the stored names, never uses them
        with pytest.raises(UserError, match=r"checkpoint\.pt: checkpoint has .*'os[.:]system'"):
            run_search(resume, str(run_dir))
    else:                                       # resume builds from the command line's config only
        assert run_search(resume, str(run_dir))["epoch"] == 3
    assert not marker.exists()


def test_library_never_instantiates_names_from_data():
    """No call in enas/ turns a string into code (what a checkpoint holds stays data)."""
    banned = ("instantiate(", "import_module(", "__import__(", "eval(", "exec(", "pickle.load(", "pickle.loads(")
    # The one import of user code: a space.target / data.target of the command line's config;
    # a target stored in a run is compared with it, never imported (user_code.check_user_code).
    allowed = {("user_code.py", "import_module(")}
    root = Path(__file__).resolve().parents[1] / "enas"
    for source in root.rglob("*.py"):
        for number, line in enumerate(source.read_text().splitlines(), start=1):
            code = line.split("#")[0].replace(".eval()", "")
            found = [b for b in banned if b in code and (source.name, b) not in allowed]
            assert not found, f"{source}:{number}: {line.strip()}"
            if "torch.load(" in code:
                assert "weights_only=True" in code, f"{source}:{number}: {line.strip()}"


# --- 6. Ctrl-C: one line, what is kept, and the command line that continues ------------------------
@pytest.mark.slow
@pytest.mark.parametrize("command", ["search", "train"])
def test_ctrl_c_says_how_to_continue_and_the_hint_works(command, tmp_path, monkeypatch):
    """An interruption after the first checkpoint ends with exit status 130, one line on stderr and
    no traceback; the log names the checkpoint and the resume command line, which then finishes."""
    from enas.final import Trainer
    from enas.search_loop import SearchLoop
    from tests.helpers import run_command
    cls = SearchLoop if command == "search" else Trainer
    save = cls.save

    def save_then_interrupt(self):
        save(self)
        raise KeyboardInterrupt

    if command == "search":
        args = ["experiment=smoke_macro", "search.epochs=2"]
    else:
        run_command("enas-search", "experiment=smoke_macro", "search.epochs=1", f"hydra.run.dir={tmp_path / 's'}")
        run_command("enas-derive", f"run_dir={tmp_path / 's'}")
        args = [f"arch={tmp_path / 's' / 'arch.json'}", "experiment=smoke_macro", "trainer.epochs=2"]
    run_dir = tmp_path / "run"
    monkeypatch.setattr(cls, "save", save_then_interrupt)
    stopped = run_command(f"enas-{command}", *args, f"hydra.run.dir={run_dir}", check=False)
    assert stopped.returncode == 130 and stopped.stderr.strip().endswith("interrupted"), stopped.stderr
    assert "Traceback" not in stopped.stderr + stopped.stdout
    hint = f"continue with the same enas-{command} command line plus resume=true hydra.run.dir={run_dir}"
    assert hint in (run_dir / f"{command}.log").read_text()
    monkeypatch.setattr(cls, "save", save)
    done = run_command(f"enas-{command}", *args, f"hydra.run.dir={run_dir}", "resume=true")
    assert "resumed" in done.stdout + done.stderr
    assert "done in" in done.stdout + done.stderr if command == "search" else (run_dir / "result.json").exists()


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(tmp_path, caplog):
    from enas.runs import interruption_hint
    with caplog.at_level("INFO", logger="enas"), pytest.raises(KeyboardInterrupt):
        with interruption_hint(str(tmp_path / "checkpoint.pt"), str(tmp_path), "enas-search"):
            raise KeyboardInterrupt
    assert f"interrupted before the first checkpoint of {tmp_path}: nothing to resume; run the enas-search " \
           f"command again" in caplog.text
