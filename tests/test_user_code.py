"""User code through the config (space=custom, data=custom), user datasets, and the rule that a
config read back from a run directory never becomes an import."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch.utils.data import TensorDataset

from enas.arch import Architecture
from enas.build import build_space, build_task
from enas.user_code import as_task, check_user_code, import_target
from enas.tasks import DatasetClassification
from enas.utils import UserError

DATA = {"name": "custom", "batch_size": 4, "eval_batch_size": 5, "num_classes": None, "num_workers": 0}


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """A package outside enas/: a space with a choice and a data function, importable from tmp_path."""
    pkg = tmp_path / "userpkg_a"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(textwrap.dedent("""
        from torch import nn
        from enas.nn import LayerChoice

        class Net(nn.Module):
            def __init__(self, num_classes, input_shape, hidden=6):
                super().__init__()
                self.body = LayerChoice({"relu": nn.Sequential(nn.Linear(input_shape[0], hidden), nn.ReLU()),
                                         "tanh": nn.Sequential(nn.Linear(input_shape[0], hidden), nn.Tanh())})
                self.head = nn.Linear(hidden, num_classes)

            def forward(self, x):
                return self.head(self.body(x))
    """))
    (pkg / "data.py").write_text(textwrap.dedent("""
        import torch
        from torch.utils.data import TensorDataset

        def make(n=40, seed=0):
            g = torch.Generator().manual_seed(seed)
            x = torch.randn(n, 5, generator=g)
            y = (x[:, 0] > 0).long()
            return TensorDataset(x[:30], y[:30]), TensorDataset(x[30:], y[30:])

        def not_a_task():
            return 3
    """))
    monkeypatch.chdir(tmp_path)                  # targets import from the current directory, as `python -m`
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield "userpkg_a"
    for name in [m for m in sys.modules if m.startswith("userpkg_a")]:
        del sys.modules[name]


def test_targets_import_from_the_current_directory(user_package):
    cls = import_target(f"{user_package}.models:Net", "space.target")
    assert cls.__name__ == "Net"
    task = build_task({**DATA, "target": f"{user_package}.data:make", "kwargs": {"n": 40}}, "cpu", seed=0)
    assert isinstance(task, DatasetClassification)
    assert task.model_sizes() == {"num_classes": 2, "input_shape": [5]}
    sizes = task.model_sizes()
    space = build_space({"name": "custom", "target": f"{user_package}.models:Net", "kwargs": {"hidden": 6}},
                        sizes=sizes)
    assert space.name == f"{user_package}.models:Net" and [d.name for d in space.decisions()] == ["body"]
    network = space.build_network(Architecture(space.name, (1,)), **sizes)
    x, y = next(task.train_batches(0))
    assert network(x, None).shape == (4, 2) and y.shape == (4,)


@pytest.mark.parametrize("target, message", [
    ("userpkg_a.models", "expected 'package.module:Name'"),
    ("no_such_pkg.models:Net", "cannot import 'no_such_pkg.models'"),
    ("userpkg_a.models:Missing", "has no 'Missing'"),
])
def test_bad_targets_are_one_line_errors(user_package, target, message):
    with pytest.raises(UserError, match=message):
        import_target(target, "space.target")


def test_data_function_must_return_a_task_or_datasets(user_package):
    with pytest.raises(UserError, match=r"data.target=userpkg_a.data:not_a_task: got a int; expected a Task"):
        build_task({**DATA, "target": f"{user_package}.data:not_a_task"}, "cpu", seed=0)


def test_checkpoint_config_never_becomes_an_import():
    stored = {"space": {"name": "custom", "target": "pkg.models:Net"}, "data": {"name": "digits"}}
    where = "runs/x/checkpoint.pt"
    with pytest.raises(UserError, match=r"name its code again on the command line: space.target=pkg.models:Net"):
        check_user_code(stored, {}, where)
    with pytest.raises(UserError, match=r"used space.target=pkg.models:Net, the command line names space.target=pkg:Other"):
        check_user_code(stored, {"space": "pkg:Other"}, where)
    with pytest.raises(UserError, match=r"built-in data 'digits'; drop data.target=pkg:make"):
        check_user_code(stored, {"space": "pkg.models:Net", "data": "pkg:make"}, where)
    api_run = {"space": {"name": "custom", "target": "pkg.models:Net"}, "data": {"name": "custom", "target": None}}
    with pytest.raises(UserError, match="got its data as a Python object"):
        check_user_code(api_run, {"space": "pkg.models:Net"}, where)
    assert check_user_code(stored, {"space": "pkg.models:Net"}, where)["space"]["target"] == "pkg.models:Net"


def test_dataset_tuples_become_a_deterministic_task():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(30, 3, 8, 8, generator=g), torch.arange(30) % 3
    train, valid = TensorDataset(images[:20], labels[:20]), TensorDataset(images[20:], labels[20:])
    task = as_task((train, valid), DATA, "cpu", seed=1, batch_size=None, where="api")
    assert task.model_sizes() == {"num_classes": 3, "input_shape": [3, 8, 8], "in_channels": 3, "image_size": 8}
    assert task.num_train_batches == 5 and task.num_batches("valid") == 2 and task.num_batches("test") == 2
    first = [y.tolist() for _, y in task.train_batches(0)]
    assert first == [y.tolist() for _, y in task.train_batches(0)] != [y.tolist() for _, y in task.train_batches(1)]
    resumed = [y.tolist() for _, y in task.train_batches(0, start=2)]
    assert resumed == first[2:]
    assert sorted(sum(first, [])) == sorted(labels[:20].tolist())
    stream = task.valid_batches()
    assert [next(stream)[1].shape[0] for _ in range(3)] == [5, 5, 5]
    rng = torch.get_rng_state()
    list(task.train_batches(2))
    assert torch.equal(rng, torch.get_rng_state())        # batches never draw from the global RNG (resume)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 3))
    metrics = task.evaluate(lambda x, arch: model(x), "valid", None, max_batches=99)
    assert 0.0 <= metrics["acc"] <= 1.0 and metrics["loss"] > 0


@pytest.mark.parametrize("made, message", [
    ((TensorDataset(torch.randn(8, 2)), TensorDataset(torch.randn(4, 2))), r"train\[0\]: expected an \(input, label\) pair"),
    (([(1.0, 0)] * 8, [(1.0, 0)] * 4), r"train\[0\]: the input must be a tensor"),
    (([(torch.ones(2), 0.5)] * 8, [(torch.ones(2), 0)] * 4), r"train\[0\]: the label must be an integer"),
    (([(torch.ones(2), 0)] * 2, [(torch.ones(2), 0)] * 4), r"train: 2 samples are fewer than batch_size 4"),
    (([(torch.ones(2), 0)] * 8, [(torch.ones(3), 0)] * 4), r"valid\[0\]: input shape \(3,\) differs from train's \(2,\)"),
    ((TensorDataset(torch.randn(8, 2), torch.zeros(8, dtype=torch.long)),), "expected a Task"),
])
def test_wrong_datasets_are_one_line_errors(made, message):
    with pytest.raises(UserError, match=message):
        as_task(made, DATA, "cpu", seed=0, batch_size=None, where="the task handed to enas")


def test_standalone_children_rebuild_the_custom_space_and_data_from_the_recipe(user_package):
    """Workers get the command's space/data sections (targets the user named) in the child recipe."""
    import numpy as np

    from enas.build import build_evaluator, model_sizes
    from enas.strategies.base import uniform_architecture
    cfg = {"space": {"name": "custom", "target": f"{user_package}.models:Net", "kwargs": {}, "sizes": {}},
           "data": {**DATA, "target": f"{user_package}.data:make", "kwargs": {}}, "seed": 0,
           "evaluator": {"name": "standalone"},
           "trainer": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "valid_batches": 1, "log_every": 0,
                       "optim": {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "grad_clip": 5.0,
                                 "schedule": "constant"}, "aux_weight": 0.0, "drop_path": 0.0, "sizes": {}}}
    task = build_task(cfg["data"], "cpu", 0)
    sizes = model_sizes(cfg["space"], task)
    space = build_space(cfg["space"], sizes=sizes)
    evaluator = build_evaluator(cfg, task, space, None, sizes, None, "cpu", options={"engine": "inline"})
    archs = [uniform_architecture(space.name, space.decisions(), np.random.default_rng(s)) for s in range(2)]
    evaluator.begin_phase(0)
    rewards = evaluator.evaluate(archs)
    assert len(rewards) == 2 and all(0.0 <= r <= 1.0 for r in rewards) and evaluator.failed == 0
