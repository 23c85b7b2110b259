"""Issue 11, end to end: a search space written as a plain module with choice modules, in a package
outside enas/, searched with two strategies through the command lines and the Python API,
derived, trained, exported, and the exported program run where enas cannot be imported.

The steps of one run are module-scoped fixtures, so every test runs at most one command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest
import torch

from enas.utils import UserError
from tests.helpers import run_script

pytestmark = pytest.mark.slow

MODELS = '''
import torch.nn.functional as F
from torch import nn
from enas.nn import InputChoice, LayerChoice, ValueChoice


class Net(nn.Module):
    """Two blocks choosing an op and their inputs, a shared activation and a head choice."""

    def __init__(self, num_classes, in_channels, width=6):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.ops = nn.ModuleList(LayerChoice({"conv3": nn.Conv2d(width, width, 3, padding=1),
                                              "conv1": nn.Conv2d(width, width, 1),
                                              "avg": nn.AvgPool2d(3, 1, 1)}) for _ in range(2))
        self.inputs = InputChoice(2, n_chosen=None, label="skips")
        self.act = ValueChoice(["relu", "elu"], label="act")
        self.head = LayerChoice([nn.Linear(width, num_classes), nn.Sequential(nn.Dropout(0.1), nn.Linear(width, num_classes))])

    def forward(self, x):                                   # (B, C, 8, 8) -> (B, K)
        act = getattr(F, self.act.value)
        a = act(self.ops[0](act(self.stem(x))))
        b = act(self.ops[1](a))
        skip = self.inputs([a, x.mean(1, keepdim=True).expand_as(a)])
        return self.head((b if skip is None else b + skip).mean((2, 3)))
'''

DATA = '''
import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset


def make_datasets(n_train=192, n_valid=64):
    """scikit-learn's 8x8 digits as (train, valid, test) TensorDatasets of (1, 8, 8) images."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target)
    cut = (n_train, n_train + n_valid, n_train + 2 * n_valid)
    return (TensorDataset(x[:cut[0]], y[:cut[0]]), TensorDataset(x[cut[0]:cut[1]], y[cut[0]:cut[1]]),
            TensorDataset(x[cut[1]:cut[2]], y[cut[1]:cut[2]]))
'''

TARGETS = {"space": "ownpkg.models:Net", "data": "ownpkg.data:make_datasets"}
SEARCH = {"epochs": 1, "omega_steps": 4, "strategy_steps": 2, "archs_per_step": 2, "valid_batches": 1, "log_every": 2}
TRAINER = {"epochs": 1, "steps_per_epoch": 4, "batch_size": 16, "valid_batches": 1, "cutout": 0, "aux_weight": 0.0,
           "drop_path": 0.0}


def as_overrides(section: str, values: dict) -> list[str]:
    return [f"{section}.{k}={v}" for k, v in values.items()]


# What enas-search and enas-train are both given; the search alone gets search.* and derive.*.
CLI_ARGS = ["space=custom", f"space.target={TARGETS['space']}", "data=custom", f"data.target={TARGETS['data']}",
            "data.batch_size=16", "trainer=cnn", "controller.lstm_size=8", *as_overrides("trainer", TRAINER)]
SEARCH_ARGS = [*CLI_ARGS, "derive.num_samples=3", "derive.valid_batches=1", *as_overrides("search", SEARCH)]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's project: ownpkg/ (models, data) outside enas/; the commands run from here."""
    root = tmp_path_factory.mktemp("project")
    (root / "ownpkg").mkdir()
    (root / "ownpkg" / "__init__.py").write_text("")
    (root / "ownpkg" / "models.py").write_text(textwrap.dedent(MODELS))
    (root / "ownpkg" / "data.py").write_text(textwrap.dedent(DATA))
    sys.path.insert(0, str(root))                  # the in-process API imports it as the CLI does
    yield root
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m.startswith("ownpkg")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def cli_search(project):
    run_dir = project / "runs" / "cli-search"
    out = run_script("enas-search", *SEARCH_ARGS, f"hydra.run.dir={run_dir}", cwd=project).stdout
    assert "epoch 1/1 done" in out and f"space.target={TARGETS['space']}" in out
    return run_dir


@pytest.fixture(scope="module")
def cli_derived(project, cli_search):
    out = run_script("enas-derive", f"run_dir={cli_search}", f"space.target={TARGETS['space']}", "data=custom",
                     f"data.target={TARGETS['data']}", cwd=project).stdout
    assert "wrote" in out
    return cli_search / "arch.json"


@pytest.fixture(scope="module")
def cli_trained(project, cli_derived):
    train_dir = project / "runs" / "cli-train"
    out = run_script("enas-train", f"arch={cli_derived}", *CLI_ARGS, f"hydra.run.dir={train_dir}", cwd=project).stdout
    assert "final: valid acc" in out
    return train_dir


def run_without_enas(code: str, cwd) -> subprocess.CompletedProcess:
    """Python with torch but without enas or the user's package: isolated (-I), no site (-S: no
    .pth file, so no editable enas install), the venv's site-packages on the path by hand."""
    prelude = textwrap.dedent(f"""
        import sys
        sys.path.append({sysconfig.get_paths()["purelib"]!r})
        for name in ("enas", "ownpkg"):
            try:
                __import__(name)
            except ImportError:
                pass
            else:
                raise SystemExit(name + " is importable here")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([sys.executable, "-I", "-S", "-c", prelude + code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_search_writes_the_run_directory(cli_search):
    assert (cli_search / "checkpoint.pt").exists() and (cli_search / "search.log").exists()
    assert list((cli_search / "tb").glob("events.out.tfevents.*"))
    state = torch.load(cli_search / "checkpoint.pt", weights_only=True)
    assert state["space"] == "ownpkg.models:Net" and state["config"]["space"]["target"] == TARGETS["space"]


def test_derive_refuses_to_import_what_the_run_directory_names(project, cli_search):
    proc = run_script("enas-derive", f"run_dir={cli_search}", check=False, cwd=project)
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert errors[0] == (f"error: {cli_search / 'checkpoint.pt'}: the run used a custom space; name its code again "
                         f"on the command line: space.target={TARGETS['space']}")


def test_cli_derive(cli_derived):
    arch = json.loads(cli_derived.read_text())
    assert arch["space"] == "ownpkg.models:Net" and [r["score"] for r in arch["ranking"]]
    assert (cli_derived.parent / "arch.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_train(cli_trained):
    result = json.loads((cli_trained / "result.json").read_text())
    assert 0.0 <= result["test"]["acc"] <= 1.0 and (cli_trained / "checkpoint.pt").exists()


@pytest.fixture(scope="module")
def cli_exported(project, cli_trained):
    out = run_script("enas-export", f"run_dir={cli_trained}", f"space.target={TARGETS['space']}", cwd=project).stdout
    assert "model.pt2" in out
    return cli_trained / "export"


def test_cli_export(cli_exported):
    assert {p.name for p in cli_exported.iterdir()} == {"model.pt2", "state_dict.pt", "arch.json"}
    info = json.loads((cli_exported / "arch.json").read_text())
    assert info["space"] == "ownpkg.models:Net" and info["export"]["traced"] == "dynamic"


def test_the_export_runs_without_enas(cli_exported):
    import enas
    x = torch.randn(5, 1, 8, 8)
    torch.save(x, cli_exported / "x.pt")
    proc = run_without_enas("import torch\nm = torch.export.load('model.pt2').module()\n"
                            "torch.save(m(torch.load('x.pt')), 'y.pt')\n", cwd=cli_exported)
    assert proc.returncode == 0, proc.stderr
    model = enas.load_model(str(cli_exported), space="ownpkg.models:Net")
    assert torch.allclose(torch.load(cli_exported / "y.pt"), model(x), atol=1e-5)


def test_the_api_writes_what_the_cli_writes(project, cli_search):
    """Same config through enas.search: the same files and bit-identical weights and controller."""
    import enas
    run_dir = project / "runs" / "api-search"
    enas.search(TARGETS["space"], TARGETS["data"], strategy="reinforce", run_dir=str(run_dir),
                data={"batch_size": 16}, controller={"lstm_size": 8}, search=SEARCH,
                derive={"num_samples": 3, "valid_batches": 1}, trainer=TRAINER)
    later = {".hydra", "arch.json", "arch.png", "derive.log"}          # Hydra's record; enas-derive's output
    written = {p.name for p in run_dir.iterdir()}
    assert {"checkpoint.pt", "search.log", "tb"} <= written == {p.name for p in cli_search.iterdir()} - later
    assert len(list((run_dir / "tb").glob("events.out.tfevents.*"))) == 1
    api, cli = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (run_dir, cli_search))
    assert api["config"] == cli["config"]
    for part in ("supernet", "strategy"):
        flat_api, flat_cli = json.dumps(_plain(api[part]), sort_keys=True), json.dumps(_plain(cli[part]), sort_keys=True)
        assert flat_api == flat_cli, part
    assert "search: space ownpkg.models:Net, strategy reinforce" in (run_dir / "search.log").read_text()


def _plain(value):
    """Tensors as lists, for an exact comparison of nested state."""
    if torch.is_tensor(value):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def test_api_with_objects_and_a_second_strategy(project, tmp_path):
    """The class and a Dataset tuple handed in as objects; random search; derive, train, export, load."""
    import enas
    from ownpkg.data import make_datasets
    from ownpkg.models import Net
    datasets = make_datasets()
    result = enas.search(Net, datasets, strategy="random", run_dir=str(tmp_path / "s"), data={"batch_size": 16},
                         search=SEARCH, derive={"num_samples": 3, "valid_batches": 1})
    assert result.config["space"]["target"] == "ownpkg.models:Net" and result.config["data"]["target"] is None
    arch = result.derive()
    assert arch.space == "ownpkg.models:Net" and (tmp_path / "s" / "arch.png").exists()
    metrics = enas.train(result, Net, datasets, run_dir=str(tmp_path / "t"), trainer=TRAINER)
    assert set(metrics["test"]) == {"loss", "acc"}
    folder = enas.export(str(tmp_path / "t"), Net)
    model = enas.load_model(folder, space=Net)
    program = torch.export.load(os.path.join(folder, "model.pt2")).module()
    x = torch.randn(3, 1, 8, 8)
    assert type(model) is Net and torch.allclose(program(x), model(x), atol=1e-5)
    with pytest.raises(UserError, match="got its data as a Python object"):
        enas.api.derive(str(tmp_path / "s"), Net)


def test_an_interrupted_search_of_a_module_space_resumes_exactly(project, tmp_path):
    """Stopped after 3 omega steps and resumed, the run ends with the uninterrupted run's weights."""
    import enas
    from ownpkg.data import make_datasets
    from ownpkg.models import Net
    datasets = make_datasets()
    options = dict(strategy="reinforce", data={"batch_size": 16}, controller={"lstm_size": 8},
                   derive={"num_samples": 3, "valid_batches": 1})
    search = {**SEARCH, "epochs": 2, "checkpoint_every": 0}
    enas.search(Net, datasets, run_dir=str(tmp_path / "whole"), search=search, **options)
    enas.search(Net, datasets, run_dir=str(tmp_path / "cut"), search={**search, "max_steps": 3}, **options)
    enas.search(Net, datasets, run_dir=str(tmp_path / "cut"), search=search, resume=True, **options)
    whole, cut = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=True) for d in ("whole", "cut"))
    assert whole["position"] == cut["position"] and whole["position"]["global_step"] == 8
    for part in ("supernet", "strategy"):
        assert json.dumps(_plain(whole[part]), sort_keys=True) == json.dumps(_plain(cut[part]), sort_keys=True), part
