"""Hydra's side of the typed configs (enas/config_schema.py): the ConfigStore entries the YAML
files name in their defaults, and the one line a config that does not compose is reported as.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import typing

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from enas.config_schema import GROUPS, OPEN_SECTIONS, PRIMARY

# The Hydra config tree ships inside the package: conf/ installs as enas.conf (setup.cfg), and
# Hydra reads it through the package (pkg://), wherever enas is installed.
CONFIG_PACKAGE = "enas.conf"
CONFIG_PATH = f"pkg://{CONFIG_PACKAGE}"


def config_dir() -> str:
    """The folder of the installed config tree (for tools and tests that want a path)."""
    return str(importlib.resources.files(CONFIG_PACKAGE))


CONFIG_DIR = config_dir()


def plain(node) -> dict:
    """A config node as a plain dict (resolved)."""
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    return dict(node)


def schema_node(cls) -> DictConfig:
    """The structured config of `cls`, with its OPEN_SECTIONS accepting new keys."""
    node = OmegaConf.structured(cls)
    for path in OPEN_SECTIONS:
        section = OmegaConf.select(node, path)
        if section is not None:
            OmegaConf.set_struct(section, False)
    return node


def register() -> None:
    """Put every schema in Hydra's ConfigStore (primary: `<command>_schema`; groups: schema/<group>/<name>)."""
    store = ConfigStore.instance()
    for name, cls in PRIMARY.items():
        store.store(name=name, node=schema_node(cls))
    for group, schemas in GROUPS.items():
        for name, cls in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=schema_node(cls))


def describe_error(error: Exception) -> str:
    """One line for a config that does not compose: the key, the value and the expected type."""
    cause = error if isinstance(error, OmegaConfBaseException) else (error.__cause__ or error.__context__)
    expected = _expected_type(cause) if isinstance(cause, OmegaConfBaseException) else None
    if expected is not None:
        return f"{cause.full_key}={_shown(cause.value)}: expected {expected}"
    message, detail = _message_lines(error), _message_lines(cause) if cause is not None else ""
    return message if detail in message else f"{message} ({detail})"


def _message_lines(error: Exception) -> str:
    """An exception's message on one line, without OmegaConf's key/type trailer and Hydra's search path."""
    lines = []
    for line in str(error).splitlines():
        line = line.strip()
        if line.startswith("Config search path"):
            break
        if line and not line.startswith(("full_key:", "object_type=", "reference_type=")):
            lines.append(line)
    return " ".join(lines)


def _expected_type(error: OmegaConfBaseException) -> str | None:
    """The schema's type of the key (or list item) a validation error is about; None otherwise."""
    if not isinstance(error, ValidationError):
        return None
    if isinstance(error.key, int):       # an item of a typed list: seeds=[a]
        items = typing.get_args(error.ref_type)
        return _type_name(items[0]) if items else None
    if not dataclasses.is_dataclass(error.object_type):
        return None
    hints = typing.get_type_hints(error.object_type)
    return _type_name(hints[error.key]) if error.key in hints else None


def _type_name(annotation) -> str:
    """int, int or null, list of str, dict, ... for a schema annotation."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        return f"{_type_name(args[0])} or null"
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "dict"
    return getattr(annotation, "__name__", str(annotation))


def _shown(value) -> str:
    """A value as the user typed it (a string without quotes)."""
    return value if isinstance(value, str) else repr(value)
