"""Architectures: the choices a strategy made for every decision of a search space.

An `Architecture` is frozen and serialisable. Its JSON form is

    {"space": "rnn_cell", "version": 1, "structure": {...}, "choices": [...], "genotype": "..."}

`choices[i]` answers `space.decisions()[i]`: an int for `op` and `input` decisions,
a list of 0/1 bits (one per earlier layer) for `skip` decisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

FORMAT_VERSION = 1


class ArchitectureError(ValueError):
    """An architecture does not fit its search space (the message names the decision)."""


@dataclass(frozen=True)
class Decision:
    """One choice a strategy makes.

    kind: "op" (one of `labels`), "input" (one of `num_choices` earlier nodes, a pointer)
    or "skip" (an on/off bit for each of `num_choices` earlier layers).
    group: decisions of one group share a list of anchors (the controller's states at the
    earlier nodes) that `input` and `skip` decisions attend over.
    anchor: after this decision the controller stores its state as the next anchor of the group.

    A space may declare a logit prior, one value per choice (a strategy is free to ignore it):
    init_bias: (`op` only) the initial value of a learned bias added to the raw logits, before
        the temperature and the tanh squashing (ENAS micro: sep convs start at 10).
    fixed_bias: (`op`, `input`) a constant, never learned, added to the logits after the
        squashing (ENAS micro normal cell: +-0.25 per op; ENAS PTB: -(distance^2)/6 on inputs).
    """

    name: str
    kind: str
    num_choices: int
    labels: tuple[str, ...] = ()
    group: str = "main"
    anchor: bool = False
    init_bias: tuple[float, ...] = ()
    fixed_bias: tuple[float, ...] = ()

    def __post_init__(self):
        if self.kind not in ("op", "input", "skip"):
            raise ValueError(f"decision {self.name!r}: unknown kind {self.kind!r}")
        if self.num_choices < 1:
            raise ValueError(f"decision {self.name!r}: needs at least one choice")
        if self.kind == "op" and len(self.labels) != self.num_choices:
            raise ValueError(f"decision {self.name!r}: {self.num_choices} choices but {len(self.labels)} labels")
        self._check_prior("init_bias", self.init_bias, ("op",))
        self._check_prior("fixed_bias", self.fixed_bias, ("op", "input"))

    def _check_prior(self, field: str, values: tuple[float, ...], kinds: tuple[str, ...]) -> None:
        if not values:
            return
        if self.kind not in kinds:
            raise ValueError(f"decision {self.name!r}: {field} is only for {' and '.join(kinds)} decisions")
        if len(values) != self.num_choices:
            raise ValueError(f"decision {self.name!r}: {field} has {len(values)} values for {self.num_choices} choices")

    def validate(self, value: Any) -> int | tuple[int, ...]:
        """Return `value` in canonical form, or raise ArchitectureError naming this decision."""
        if self.kind == "skip":
            if not isinstance(value, (list, tuple)) or len(value) != self.num_choices:
                raise ArchitectureError(
                    f"decision {self.name!r} (skip): expected a list of {self.num_choices} bits, got {value!r}")
            if any(isinstance(b, bool) or b not in (0, 1) for b in value):
                raise ArchitectureError(f"decision {self.name!r} (skip): bits must be 0 or 1, got {value!r}")
            return tuple(int(b) for b in value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArchitectureError(f"decision {self.name!r} ({self.kind}): expected an integer, got {value!r}")
        if not 0 <= value < self.num_choices:
            raise ArchitectureError(
                f"decision {self.name!r} ({self.kind}): choice {value} out of range 0..{self.num_choices - 1}")
        return int(value)

    def describe(self, value: int | tuple[int, ...]) -> str:
        """A readable form of one choice."""
        if self.kind == "op":
            return self.labels[value]
        if self.kind == "input":
            return f"<-{value}"
        return "skip[" + "".join(str(b) for b in value) + "]"


def plain_choices(choices: Sequence) -> list:
    """Choices as plain JSON values: skip bits become lists."""
    return [list(c) if isinstance(c, (list, tuple)) else c for c in choices]


def hashable_choices(choices: Sequence) -> tuple:
    """The inverse of `plain_choices`: a tuple (skip bits as tuples), as an Architecture holds them."""
    return tuple(tuple(c) if isinstance(c, (list, tuple)) else c for c in choices)


@dataclass(frozen=True)
class Architecture:
    """A point of a search space: `choices[i]` answers decision i of space `space`."""

    space: str
    choices: tuple

    def __post_init__(self):
        object.__setattr__(self, "choices", hashable_choices(self.choices))

    @classmethod
    def from_plain(cls, space: str, choices: Sequence) -> "Architecture":
        """The inverse of `plain_choices`: an architecture from JSON/checkpoint lists."""
        return cls(space, hashable_choices(choices))

    def plain_choices(self) -> list:
        """The choices as plain JSON values (skip bits as lists), for files and state dicts."""
        return plain_choices(self.choices)

    def key(self) -> str:
        """A compact string that identifies the architecture (for dictionaries and logs)."""
        return json.dumps(self.plain_choices(), separators=(",", ":"))

    def to_dict(self, structure: dict | None = None, genotype: str | None = None, **extra) -> dict:
        out = {"space": self.space, "version": FORMAT_VERSION, "structure": dict(structure or {}),
               "choices": self.plain_choices()}
        if genotype is not None:
            out["genotype"] = genotype
        out.update(extra)
        return out


def validate_choices(space_name: str, decisions: Sequence[Decision], arch: Architecture) -> Architecture:
    """Check `arch` against the decisions of a space; return it in canonical form."""
    if arch.space != space_name:
        raise ArchitectureError(f"architecture of space {arch.space!r}, expected {space_name!r}")
    if len(arch.choices) != len(decisions):
        raise ArchitectureError(
            f"space {space_name!r} has {len(decisions)} decisions, the architecture gives {len(arch.choices)}")
    return Architecture(space_name, tuple(d.validate(c) for d, c in zip(decisions, arch.choices)))


def save_json(path: str, data: dict) -> None:
    """Write JSON atomically and durably (enas.fileio.atomic_write); creates missing folders."""
    from enas.fileio import atomic_write

    def write(f):
        json.dump(data, f, indent=2)
        f.write("\n")

    atomic_write(path, write, binary=False, make_parents=True)


def load_arch_file(path: str) -> dict:
    """Read an arch.json file; errors name the file and the bad field."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ArchitectureError(f"{path}: no such architecture file") from None
    except json.JSONDecodeError as e:
        raise ArchitectureError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ArchitectureError(f"{path}: expected a JSON object")
    for field in ("space", "choices"):
        if field not in data:
            raise ArchitectureError(f"{path}: missing field {field!r}")
    if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ArchitectureError(f"{path}: format version {data.get('version')!r}, this enas reads {FORMAT_VERSION}")
    if not isinstance(data["choices"], list):
        raise ArchitectureError(f"{path}: field 'choices' must be a list")
    return data
