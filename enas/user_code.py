"""User code through the config, for the build layer (enas/build.py; only it and the entry points import this).

    space=custom space.target=mypkg.models:MyNet space.kwargs={...}  -> ModuleSpace(MyNet, kwargs)
    data=custom data.target=mypkg.data:make_task data.kwargs={...}   -> make_task(...) -> a Task, or a
                                                                        (train, valid[, test]) Dataset tuple
                                                                        wrapped in DatasetClassification

A target is imported only from the config of the command the user typed (or its object is handed
in by the Python API: `user_space`, `user_data`). A config read back from a run directory never
becomes an import: `check_user_code` requires the user to name the same target again.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys

from enas.utils import UserError

CUSTOM = "custom"                   # space=custom / data=custom: the user's own code, named by `target`


def import_target(target, key: str):
    """The object that `target` ("package.module:Name") names; `key` ("space.target") in errors.

    Imported as `python -m` would: the current directory is searched too (last).
    """
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        raise UserError(f"{key}={target!r}: expected 'package.module:Name'")
    module_name, attr = target.split(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"{key}={target}: cannot import {module_name!r} ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"{key}={target}: {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


def check_user_code(config: dict, targets: dict, source: str, objects: dict | None = None,
                    sections: tuple[str, ...] = ("space", "data")) -> dict:
    """`config` (read from `source`, a run directory's checkpoint) with its custom targets checked.

    For each section ("space", "data") the stored config names a custom target for, the
    command line must name the same one (`targets[section]`) or the Python API hand in the
    object (`objects[section]`); a stored target is never imported by itself.
    """
    out = dict(config)
    for section in sections:
        stored, named = config[section], targets.get(section)
        if stored.get("name") != CUSTOM:
            if named:
                raise UserError(f"{source}: the run used the built-in {section} {stored.get('name')!r}; "
                                f"drop {section}.target={named}")
            continue
        if (objects or {}).get(section) is not None:
            continue
        if stored.get("target") is None:
            raise UserError(f"{source}: the run got its {section} as a Python object (enas.search); "
                            f"continue from Python with the same object")
        if not named:
            again = f"{section}.target={stored['target']}" if section == "space" else \
                f"data=custom data.target={stored['target']}"
            raise UserError(f"{source}: the run used a custom {section}; name its code again on the command "
                            f"line: {again}")
        if named != stored["target"]:
            raise UserError(f"{source}: the run used {section}.target={stored['target']}, "
                            f"the command line names {section}.target={named}")
        out[section] = {**stored, "target": named}
    return out


def _accepted(fn, values: dict) -> dict:
    """The entries of `values` that `fn`'s signature takes by keyword."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(values)
    return {k: v for k, v in values.items() if k in params}


def as_task(made, data: dict, device, seed: int, batch_size: int | None, where: str):
    """A `Task` as it is, or a (train, valid[, test]) tuple of Datasets wrapped in DatasetClassification."""
    from enas.tasks import DatasetClassification
    if all(hasattr(made, attr) for attr in ("loss", "evaluate", "train_batches", "model_sizes")):
        return made
    if isinstance(made, (tuple, list)) and len(made) in (2, 3):
        try:
            return DatasetClassification(*made, batch_size=batch_size or data.get("batch_size", 32),
                                         eval_batch_size=data.get("eval_batch_size"), device=device, seed=seed,
                                         num_classes=data.get("num_classes"), num_workers=data.get("num_workers", 0))
        except ValueError as e:
            raise UserError(f"{where}: {e}") from None
    raise UserError(f"{where}: got a {type(made).__name__}; expected a Task (see enas.tasks.Task) or a "
                    f"(train, valid[, test]) tuple of torch Datasets")


def build_custom_task(data: dict, device, seed: int, batch_size, user_data):
    """The task of data=custom: from `user_data` (Python API) or what `data.target` returns."""
    if user_data is not None:
        return as_task(user_data, data, device, seed, batch_size, "the task handed to enas")
    target = data.get("target")
    make = import_target(target, "data.target")
    kwargs = dict(data.get("kwargs") or {})
    made = make(**kwargs, **_accepted(make, {"device": device, "seed": seed, "batch_size": batch_size}))
    return as_task(made, data, device, seed, batch_size, f"data.target={target}")


def build_custom_space(space_cfg: dict, structure: dict | None, sizes: dict | None, user_space):
    """The space of space=custom: `user_space` as it is (a SearchSpace), or a ModuleSpace of it / of `space.target`."""
    from enas.spaces.base import SearchSpace
    from enas.spaces.module_space import ModuleSpace
    if isinstance(user_space, SearchSpace):
        return user_space
    target = space_cfg.get("target")
    factory = user_space if user_space is not None else import_target(target, "space.target")
    kwargs = structure if structure is not None else space_cfg.get("kwargs") or {}
    try:
        return ModuleSpace(factory, kwargs, sizes=sizes)
    except (TypeError, ValueError) as e:
        raise UserError(f"space.target={target}: {e}") from None
