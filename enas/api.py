"""The Python API: search, derive, train and export from a script or a notebook.

    import enas
    result = enas.search(MyNet, (train_set, valid_set), strategy="reinforce", epochs=5, run_dir="runs/s")
    arch = result.derive()                                  # runs/s/arch.json + arch.png
    metrics = enas.train(result, MyNet, (train_set, valid_set, test_set), epochs=10, run_dir="runs/t")
    folder = enas.export("runs/t", MyNet)                   # runs/t/export: model.pt2, state_dict.pt, arch.json
    model = enas.load_model(folder, space=MyNet)

One code path with the command lines: each function composes the same config tree (conf/)
as `enas-search` / `enas-derive` / `enas-train` / `enas-export` with the same overrides, and
calls the same run (enas/runs.py), so it writes the same run directory: checkpoint, log file,
TensorBoard events, arch.json.

What can be handed in:
- `model_or_space`: your module class (or a function returning a module, or a module instance,
  which is copied) with choice modules inside (enas.nn); a "package.module:Name" string (as
  space.target=); a built-in space's name ("macro_cnn") or a SearchSpace object.
- `task`: a Task (enas.tasks.Task); a (train, valid[, test]) tuple of torch Datasets of
  (input tensor, label) pairs; a "package.module:function" string (as data.target=); a built-in
  data config's name ("digits", "ptb", "image_folder": give its path as data={"path": ...}).
- `**overrides`, by config key: a string selects a config group option (evaluator="standalone",
  experiment="smoke_macro"); a dict merges into a section (search={"omega_steps": 50},
  trainer={"epochs": 3}); any other value sets a top-level key (seed=1, device="cpu").
  Unknown keys are refused with their name.

Objects handed in are used as they are; the config stored in the run records their
"package.module:Name" (space) or null (data) as the target. The standalone and inherit
evaluators rebuild the space and the data in worker processes from the config, so there the
space must be a module-level class and the data a "package.module:function" string.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from enas.arch import Architecture, load_arch_file, save_json
from enas.utils import UserError

GROUPS = ("data", "space", "strategy", "evaluator", "trainer", "controller", "experiment")
WORKER_EVALUATORS = ("standalone", "inherit")


# --- what the user handed in -> config overrides + objects ---------------------------------------------
@dataclass
class _Choice:
    """A config group option, the sections to merge and the objects for the build layer."""

    groups: list[str] = field(default_factory=list)
    sections: dict = field(default_factory=dict)
    user_space: Any = None
    user_data: Any = None


def _space_choice(model_or_space, kwargs: dict | None, out: _Choice) -> None:
    from enas.spaces import SPACES, SearchSpace
    from enas.spaces.module_space import ModuleSpace, canonical_name
    if isinstance(model_or_space, str) and ":" not in model_or_space:
        out.groups.append(f"space={model_or_space}")
        if kwargs:
            out.sections["space"] = {"structure": dict(kwargs)}
        return
    if isinstance(model_or_space, SearchSpace) and SPACES.get(model_or_space.name) is type(model_or_space):
        out.groups.append(f"space={model_or_space.name}")
        out.sections["space"] = {"structure": model_or_space.structure()}
        return
    out.groups.append("space=custom")
    if isinstance(model_or_space, str):
        out.sections["space"] = {"target": model_or_space, "kwargs": dict(kwargs or {})}
    elif isinstance(model_or_space, ModuleSpace):
        out.user_space = model_or_space.factory
        out.sections["space"] = {"target": model_or_space.name, "kwargs": model_or_space.structure()}
    else:
        out.user_space = model_or_space
        out.sections["space"] = {"target": canonical_name(model_or_space), "kwargs": dict(kwargs or {})}


def _data_choice(task, out: _Choice) -> None:
    if isinstance(task, str) and ":" not in task:
        out.groups.append(f"data={task}")
        return
    out.groups.append("data=custom")
    if isinstance(task, str):
        out.sections["data"] = {"target": task}
    else:
        out.user_data = task
        out.sections["data"] = {"target": None}


def _trainer_group(task) -> str:
    """Final-training recipe by the kind of data: lm for text, cnn otherwise."""
    return "trainer=lm" if task == "ptb" or getattr(task, "kind", None) == "lm" else "trainer=cnn"


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _apply_overrides(overrides: dict, out: _Choice) -> None:
    for key, value in overrides.items():
        if key in GROUPS and isinstance(value, str):
            out.groups = [g for g in out.groups if not g.startswith(f"{key}=")] + [f"{key}={value}"]
        else:
            out.sections = _merge(out.sections, {key: value})


def _open_free_maps(cfg, sections: dict, prefix: str = "") -> None:
    """Let `sections` add keys to maps that are empty in the config (space.kwargs, space.sizes,
    trainer.sizes: what `+key=value` does on a command line); other keys stay fixed."""
    from omegaconf import DictConfig, OmegaConf
    for key, value in sections.items():
        if not isinstance(value, dict):
            continue
        path = f"{prefix}{key}"
        node = OmegaConf.select(cfg, path, throw_on_missing=False)
        if isinstance(node, DictConfig) and len(node) == 0:
            OmegaConf.set_struct(node, False)
        elif isinstance(node, DictConfig):
            _open_free_maps(cfg, value, f"{path}.")


def _compose(config_name: str, groups: list[str], sections: dict) -> dict:
    """The config `enas-<command> <groups>` would see, with `sections` merged in (unknown keys refused)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, MissingMandatoryValue

    from enas.hydra_config import CONFIG_DIR, plain, register
    register()          # the typed bases the YAML files name (as the command lines do)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=groups)
    _open_free_maps(cfg, sections)
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.create(sections))
        return plain(cfg)
    except ConfigKeyError as e:
        raise UserError(f"unknown config key {e.full_key or e.key!r} (see conf/{config_name}.yaml)") from None
    except MissingMandatoryValue as e:
        raise UserError(f"missing value for {e.full_key}") from None


def _check_workers(config: dict, choice: _Choice) -> None:
    """Standalone/inherit children rebuild the space and data in worker processes, from the config."""
    from enas.user_code import import_target
    if config["evaluator"]["name"] not in WORKER_EVALUATORS:
        return
    if choice.user_data is not None:
        raise UserError(f"evaluator {config['evaluator']['name']} trains children in worker processes that rebuild "
                        f"the data from the config: pass the data as a 'package.module:function' string")
    if choice.user_space is not None:
        target = config["space"]["target"]
        try:
            same = import_target(target, "space") is choice.user_space
        except UserError:
            same = False
        if not same:
            raise UserError(f"evaluator {config['evaluator']['name']} rebuilds the space in worker processes from "
                            f"{target!r}: define it at module level of an importable module")


@contextlib.contextmanager
def _console():
    """Progress lines on stdout while an API call runs, unless logging is configured already."""
    root, logger = logging.getLogger(), logging.getLogger("enas")
    if root.handlers or logger.handlers:
        yield
        return
    from enas.logs import ConsoleFormatter
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(ConsoleFormatter("%(message)s"))
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _default_dir(kind: str, label: str) -> str:
    return os.path.join("runs", kind, f"{label}-{time.strftime('%Y%m%d-%H%M%S')}")


# --- search / derive ---------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """A finished (or stopped) search: its run directory, last epoch summary and config."""

    run_dir: str
    summary: dict
    config: dict
    user_space: Any = None
    user_data: Any = None
    arch_path: str | None = None

    @property
    def checkpoint(self) -> str:
        return os.path.join(self.run_dir, "checkpoint.pt")

    def derive(self, num_samples: int | None = None, valid_batches: int | None = None, seed: int | None = None,
               top: int = 10, device: str | None = None, *, estimator: str | None = None, steps: int | None = None,
               lr: float | None = None, workers: int | None = None, recalibrate_bn: int | None = None,
               rank_by: str | None = None, finalists: int | None = None,
               finalist_epochs: int | None = None) -> Architecture:
        """The best architecture (writes arch.json + arch.png into the run directory, as enas-derive;
        None: the search's derive setting)."""
        targets = {s: self.config[s].get("target") for s in ("space", "data") if self.config[s]["name"] == "custom"}
        arch, self.arch_path = _derive(self.run_dir, targets, self.user_space, self.user_data,
                                       dict(num_samples=num_samples, valid_batches=valid_batches, seed=seed, top=top,
                                            device=device or self.config["device"], estimator=estimator,
                                            steps=steps, lr=lr, workers=workers, recalibrate_bn=recalibrate_bn,
                                            rank_by=rank_by, finalists=finalists, finalist_epochs=finalist_epochs))
        return arch


def search(model_or_space, task, strategy: str = "reinforce", epochs: int | None = None, run_dir: str | None = None,
           *, kwargs: dict | None = None, **overrides) -> SearchResult:
    """Search `model_or_space` on `task` (see the module docstring); as enas-search with the same overrides."""
    choice = _Choice(groups=[f"strategy={strategy}", _trainer_group(task)])
    _space_choice(model_or_space, kwargs, choice)
    _data_choice(task, choice)
    if epochs is not None:
        choice.sections = _merge(choice.sections, {"search": {"epochs": epochs}})
    _apply_overrides(overrides, choice)
    config = _compose("search", choice.groups, choice.sections)
    _check_workers(config, choice)
    run_dir = run_dir or _default_dir("search", f"{config['space']['name']}-{strategy}")
    from enas.runs import run_search
    with _console():
        summary = run_search(config, run_dir, hints=False, user_space=choice.user_space, user_data=choice.user_data)
    return SearchResult(run_dir, summary, config, choice.user_space, choice.user_data)


def _derive(run_dir: str, targets: dict, user_space, user_data, options: dict) -> tuple[Architecture, str]:
    from enas.runs import run_derive
    sections = {k: v for k, v in options.items() if v is not None}
    sections.update(run_dir=run_dir, space={"target": targets.get("space")})
    groups = []
    if targets.get("data") is not None or user_data is not None:        # as on the command line: data=custom
        groups.append("data=custom")
        sections["data"] = {"target": targets.get("data")}
    cfg = {**_compose("derive", groups, sections), "hints": False}     # next steps are Python calls here
    with _console():
        data = run_derive(cfg, user_space=user_space, user_data=user_data)
    return Architecture.from_plain(data["space"], data["choices"]), os.path.join(run_dir, "arch.json")


def derive(run_dir: str, model_or_space=None, task=None, **options) -> Architecture:
    """The best architecture of the search in `run_dir` (as enas-derive); a custom space or data
    must be handed in again (the object, or its "package.module:Name" string)."""
    targets, objects = {}, {}
    for section, given in (("space", model_or_space), ("data", task)):
        if isinstance(given, str):
            targets[section] = given
        elif given is not None:
            objects[section] = given
    options.setdefault("top", 10)
    arch, _ = _derive(run_dir, targets, objects.get("space"), objects.get("data"), options)
    return arch


# --- train / export / load ---------------------------------------------------------------------------------
def _arch_file(arch, run_dir: str) -> str:
    """A path to the arch.json of `arch` (an arch.json path, a derived SearchResult or an Architecture)."""
    if isinstance(arch, SearchResult):
        if arch.arch_path is None:
            raise UserError(f"{arch.run_dir}: derive the search first (result.derive())")
        return arch.arch_path
    if isinstance(arch, Architecture):
        path = os.path.join(run_dir, "arch.json")
        save_json(path, arch.to_dict())
        return path
    if isinstance(arch, (str, os.PathLike)):
        return os.fspath(arch)
    raise UserError(f"arch: expected an arch.json path, a SearchResult or an Architecture, got {type(arch).__name__}")


def train(arch, model_or_space, task, epochs: int | None = None, run_dir: str | None = None, *,
          kwargs: dict | None = None, **overrides) -> dict:
    """Train `arch` from scratch (as enas-train); the result dict (valid and test metrics, also result.json)."""
    choice = _Choice(groups=[_trainer_group(task)])
    _space_choice(model_or_space, kwargs, choice)
    _data_choice(task, choice)
    if epochs is not None:
        choice.sections = _merge(choice.sections, {"trainer": {"epochs": epochs}})
    _apply_overrides(overrides, choice)
    choice.sections["arch"] = "set below"           # train.yaml's mandatory arch; the run dir decides it
    config = _compose("train", choice.groups, choice.sections)
    run_dir = run_dir or _default_dir("train", config["space"]["name"])
    config["arch"] = _arch_file(arch, run_dir)
    from enas.runs import run_train
    with _console():
        return run_train(config, run_dir, user_space=choice.user_space, user_data=choice.user_data)


def export(run_dir: str, model_or_space=None, out_dir: str | None = None) -> str:
    """Export the trained network of the enas-train run in `run_dir` (as enas-export); the export folder."""
    from enas.runs import run_export
    target = model_or_space if isinstance(model_or_space, str) else None
    user_space = None if isinstance(model_or_space, str) else model_or_space
    cfg = _compose("export", [], {"run_dir": run_dir, "out_dir": out_dir, "space": {"target": target}})
    with _console():
        return run_export(cfg, user_space=user_space)["out_dir"]


def load_model(path: str, space=None):
    """The module exported to `path` (a folder from enas-export: arch.json + state_dict.pt), in eval mode.

    A built-in space is found by the name in arch.json; a custom one must be handed in: the
    module class (or function, or "package.module:Name" string), the same the search used.
    """
    from enas.build import build_space
    from enas.deploy import load_exported
    from enas.spaces import SPACES
    arch_path = os.path.join(path, "arch.json")
    data = load_arch_file(arch_path)
    structure, sizes = data.get("structure") or {}, data.get("sizes") or {}
    if space is None:
        if data["space"] not in SPACES:
            raise UserError(f"{arch_path}: a custom space ({data['space']}); hand in its module: "
                            f"enas.load_model({path!r}, space=<the module class>)")
        built = build_space({"name": data["space"]}, structure)
    elif isinstance(space, str):
        built = build_space({"name": "custom", "target": space}, structure, sizes=sizes)
    else:
        built = build_space({"name": "custom", "target": None}, structure, sizes=sizes, user_space=space)
    if built.name != data["space"]:
        raise UserError(f"{arch_path}: an architecture of space {data['space']!r}, not of {built.name!r}")
    return load_exported(path, built)
