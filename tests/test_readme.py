"""README.md and the software agree: every documented command composes, every documented
TensorBoard tag is written by a smoke run.

Commands are read from the README's code blocks (lines starting with an enas command, with `\\`
continuations). Each one is composed with Hydra in smoke size: placeholders (`<...>`) become
temporary values, sweeps (`a,b`) their first value; an unknown key, group or option fails here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from enas.cli.common import CONFIG_DIR
from tests.helpers import run_command

README = Path(__file__).resolve().parents[1] / "README.md"
CONFIG_OF = {"enas-search": "search", "enas-train": "train", "enas-derive": "derive",
             "enas-rank-check": "rank_check", "enas-compare": "compare", "enas-export": "export",
             "enas-beats-random": "beats_random",
             "enas.cli.search": "search", "enas.cli.train": "train"}


def documented_commands() -> list[list[str]]:
    """Every enas command line of the README's code blocks (fenced or indented), as argument lists."""
    lines, commands, pending, fenced = README.read_text().splitlines(), [], "", False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not (fenced or line.startswith("    ")) and not pending:
            continue
        text = pending + " " + line.strip() if pending else line.strip()
        if text.endswith("\\"):
            pending = text[:-1]
            continue
        pending = ""
        text = text.split(" # ")[0].strip()
        first = text.split()[:4]
        if any(w in CONFIG_OF for w in first) and first[0] in (*CONFIG_OF, "torchrun", "srun", "python", "python3"):
            commands.append(shlex.split(text))
    return commands


def smoke_overrides(words: list[str]) -> tuple[str, list[str]]:
    """(config name, overrides) of one documented command, made composable in smoke size."""
    program = next(w for w in words if w in CONFIG_OF)
    overrides = []
    for word in words[words.index(program) + 1:]:
        if word.startswith("[") and word.endswith("]"):
            word = word[1:-1]                 # an optional argument: [search.epochs=<more>]
        if word.startswith("-") or "=" not in word or word.startswith(("hydra.", "hydra/")):
            continue                          # flags (-m), and Hydra's own settings
        key, value = word.split("=", 1)
        if "<" in value or value == "...":
            value = "smoke_ptb" if key == "experiment" else ("5" if key.endswith(("epochs", "steps")) else "/tmp/x")
        if "," in value and not value.startswith("["):
            value = value.split(",")[0]       # a sweep: its first value
        overrides.append(f"{key}={value}")
    return CONFIG_OF[program], overrides


COMMANDS = documented_commands()


def test_the_readme_documents_the_commands():
    programs = {next(w for w in c if w in CONFIG_OF) for c in COMMANDS}
    assert {"enas-search", "enas-train", "enas-derive", "enas-rank-check", "enas-compare", "enas-export",
            "enas-beats-random"} <= programs


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(c)[:70] for c in COMMANDS])
def test_every_documented_command_composes(words):
    config_name, overrides = smoke_overrides(words)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        compose(config_name=config_name, overrides=overrides)


def documented_tags() -> list[list[str]]:
    """The TensorBoard tags of the README's table (first column): one list of alternatives per
    item (`a` or `b`), `<x>` a wildcard; items marked "(language models)" are left out (the smoke
    run below is an image search)."""
    section = README.read_text().split("## TensorBoard names", 1)[1].split("\n## ", 1)[0]
    items = []
    for row in section.splitlines():
        if row.startswith("| `"):
            for item in row.split("|")[1].split(", "):
                if "language models" not in item:
                    items.append(re.findall(r"`([^`]+)`", item))
    return [names for names in items if names]


def written_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tags = set()
    for events in run_dir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent), size_guidance={"scalars": 1, "images": 1, "histograms": 1})
        acc.Reload()
        for kind in ("scalars", "images", "histograms"):
            tags.update(acc.Tags()[kind])
    return tags


@pytest.mark.slow
def test_every_documented_tensorboard_tag_is_written(tmp_path):
    tiny = ["search.epochs=1", "search.omega_steps=3", "search.strategy_steps=2", "search.log_every=1"]
    for strategy in ("reinforce", "evolution", "tpe"):
        run_command("enas-search", "experiment=smoke_macro", f"strategy={strategy}", *tiny,
                    f"hydra.run.dir={tmp_path / strategy}")
    run_command("enas-derive", f"run_dir={tmp_path / 'reinforce'}", "num_samples=2")
    run_command("enas-train", f"arch={tmp_path / 'reinforce'}", "experiment=smoke_macro", "trainer.epochs=1",
                "trainer.steps_per_epoch=2", "trainer.log_every=1", f"hydra.run.dir={tmp_path / 'train'}")
    written = written_tags(tmp_path)
    items = documented_tags()
    assert len(items) > 20

    def pattern(tag: str) -> str:
        return "[^/]+".join(re.escape(part) for part in re.split(r"<[^>]+>", tag))

    missing = [names for names in items
               if not any(re.fullmatch(pattern(t), w) for t in names for w in written)]
    assert not missing, f"documented but never written: {missing}; written: {sorted(written)}"
