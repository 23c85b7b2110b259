"""Architecture: JSON round trip and validation errors that name the decision."""

import json

import numpy as np

import pytest

from enas.arch import Architecture, ArchitectureError, load_arch_file, save_json
from enas.spaces import SPACES, build_space
from enas.strategies.base import uniform_architecture


@pytest.mark.parametrize("name", sorted(SPACES))
def test_json_round_trip_for_every_space(name, tmp_path):
    space = build_space(name)
    arch = uniform_architecture(name, space.decisions(), np.random.default_rng(0))
    path = tmp_path / "arch.json"
    save_json(str(path), space.arch_to_dict(arch, score=0.5))
    data = load_arch_file(str(path))
    assert data["genotype"] == space.describe(arch) and data["score"] == 0.5
    assert space.arch_from_dict(data) == arch
    assert hash(arch) == hash(space.arch_from_dict(data))


def test_validation_names_the_decision(toy_space):
    good = uniform_architecture("toy", toy_space.decisions(), np.random.default_rng(1))
    choices = list(good.choices)
    choices[0] = 7          # n0_in has 2 choices
    with pytest.raises(ArchitectureError, match="'n0_in'.*out of range 0..1"):
        toy_space.validate(Architecture("toy", tuple(choices)))
    choices = list(good.choices)
    choices[4] = (1, 1, 1)  # n1_skip has 1 bit
    with pytest.raises(ArchitectureError, match="'n1_skip'.*1 bits"):
        toy_space.validate(Architecture("toy", tuple(choices)))
    with pytest.raises(ArchitectureError, match="decisions"):
        toy_space.validate(Architecture("toy", good.choices[:-1]))
    with pytest.raises(ArchitectureError, match="space 'other'"):
        toy_space.validate(Architecture("other", good.choices))


def test_arch_file_errors_name_the_file(tmp_path, toy_space):
    missing = tmp_path / "none.json"
    with pytest.raises(ArchitectureError, match="none.json: no such"):
        load_arch_file(str(missing))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ArchitectureError, match="broken.json: not valid JSON"):
        load_arch_file(str(broken))
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"space": "toy"}))
    with pytest.raises(ArchitectureError, match="partial.json: missing field 'choices'"):
        load_arch_file(str(partial))
    other = toy_space.arch_to_dict(uniform_architecture("toy", toy_space.decisions(), np.random.default_rng(1)))
    other["structure"] = {"num_nodes": 5}
    with pytest.raises(ArchitectureError, match="x.json: structure"):
        toy_space.arch_from_dict(other, source="x.json")
