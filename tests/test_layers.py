"""The layers of docs/architecture.md, held by reading every import of the package's source.

    cli/, api  ->  runs  ->  build  ->  loop / evaluators / final  ->  spaces, strategies, tasks  ->  arch, data, infra

Imports inside `if TYPE_CHECKING:` blocks are annotations only and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "enas"

INFRA = {"enas.arch", "enas.errors", "enas.utils", "enas.rng", "enas.logs", "enas.checkpoint", "enas.tb", "enas.draw",
         "enas.optim", "enas.fileio", "enas.runlock", "enas.nn",
         "enas.distributed"}
# The entry points: the command lines and the Python API (both compose the Hydra config tree).
ENTRY = {"enas.cli", "enas.api", "enas.hydra_config"}
BUILD = {"enas.build", "enas.user_code"}       # config -> objects, and the user's code it names
# (modules the rule applies to, prefixes they may import from enas); None = anything.
RULES = {
    "infra": (INFRA, INFRA | {"enas.spaces.base"}),          # draw/tb render a space's Graph
    "data": ({"enas.data"}, INFRA | {"enas.data"}),
    "strategies": ({"enas.strategies"}, INFRA | {"enas.strategies"}),
    "spaces": ({"enas.spaces"}, INFRA | {"enas.spaces"}),
    "tasks": ({"enas.tasks"}, INFRA | {"enas.data"}),
}
CONFIG_LIBRARIES = ("hydra", "omegaconf")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def runtime_imports(path: Path) -> set[str]:
    """Every module imported by `path` outside `if TYPE_CHECKING:` blocks (also inside functions)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


SOURCES = {module_name(p): runtime_imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def enas_imports(module: str) -> set[str]:
    return {m for m in SOURCES[module] if m == "enas" or m.startswith("enas.")}


def test_the_scan_sees_the_package():
    assert "enas.build" in SOURCES and "enas.cli.search" in SOURCES and len(SOURCES) > 30
    assert "enas.runs" in enas_imports("enas.cli.search") and "enas.build" in enas_imports("enas.runs")


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if not under(m, {"enas.cli"})))
def test_nothing_outside_cli_imports_the_command_line(module):
    assert not any(under(m, {"enas.cli"}) for m in enas_imports(module)), module


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if not under(m, ENTRY | {"enas.runs"})))
def test_nothing_below_the_runs_imports_them(module):
    assert not any(under(m, {"enas.runs"}) for m in enas_imports(module)), module


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if not under(m, ENTRY | {"enas.runs"} | BUILD)))
def test_only_the_entry_points_and_runs_import_the_build_layer(module):
    assert not any(under(m, BUILD) for m in enas_imports(module)), module


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if not under(m, ENTRY)))
def test_the_library_never_reads_the_hydra_config(module):
    assert not any(under(m, CONFIG_LIBRARIES) for m in SOURCES[module]), module


@pytest.mark.parametrize("layer", sorted(RULES))
def test_lower_layers_import_only_what_lies_below(layer):
    members, allowed = RULES[layer]
    checked = [m for m in SOURCES if under(m, members)]
    assert checked, f"no module of layer {layer}"
    for module in checked:
        bad = {m for m in enas_imports(module) if not under(m, allowed) and m != "enas"}
        assert not bad, f"{module} ({layer}) imports {sorted(bad)}"


def test_the_check_catches_a_violation(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import enas.cli.search\n"
                      "def f():\n    from enas.spaces.micro_cnn import MICRO_OPS\n")
    assert runtime_imports(source) == {"typing", "typing.TYPE_CHECKING", "enas.spaces.micro_cnn",
                                       "enas.spaces.micro_cnn.MICRO_OPS"}


def test_only_the_hydra_side_and_the_build_layer_read_the_config_schema():
    assert enas_imports("enas.config_schema") == set()
    readers = {m for m in SOURCES if any(under(i, {"enas.config_schema"}) for i in enas_imports(m))}
    assert readers and all(under(m, {"enas.hydra_config", "enas.build"}) for m in readers), readers
