"""Few-shot supernets (enas/spaces/few_shot.py): dispatch, the split, checkpoints, the search loop."""

import numpy as np
import pytest
import torch

import enas.spaces.macro_cnn  # noqa: F401  (registers the space)
from enas.arch import Architecture
from enas.build import build_search
from enas.checkpoint import load_checkpoint
from enas.evaluators import inherited_state
from enas.spaces.base import SPACES
from enas.spaces.few_shot import FewShotSupernet, supernet_part
from enas.strategies.base import uniform_architecture
from enas.utils import UserError
from tests.helpers import compose_config, run_loop

DATA = {"num_classes": 3, "in_channels": 3, "image_size": 8}


def tiny_few_shot(seed: int = 0):
    """(space, few-shot macro supernet split on layer0_op, two architectures differing only there)."""
    space = SPACES["macro_cnn"](num_layers=3)
    torch.manual_seed(seed)
    supernet = FewShotSupernet(space.build_supernet(**DATA, channels=4), space.decisions()[0], 0)
    arch = uniform_architecture(space.name, space.decisions(), np.random.default_rng(seed))
    first = list(arch.choices)
    first[0] = 1
    other = list(first)
    other[0] = 4
    return space, supernet, Architecture(space.name, tuple(first)), Architecture(space.name, tuple(other))


def images(seed: int = 0) -> torch.Tensor:
    return torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def grads_of(module) -> list:
    return [p.grad for p in module.parameters()]


def test_before_the_split_every_architecture_trains_copy_zero_alone():
    space, supernet, a, b = tiny_few_shot()
    assert len(supernet.parts) == 6 and not supernet.is_split
    assert supernet.part(a) is supernet.part(b) is supernet.parts[0]
    supernet(images(), a).sum().backward()
    assert any(g is not None for g in grads_of(supernet.parts[0]))
    for part in supernet.parts[1:]:
        assert all(g is None for g in grads_of(part))          # the optimizer leaves them alone


def test_split_copies_the_weights_in_place_then_dispatches_by_the_choice():
    space, supernet, a, b = tiny_few_shot()
    with torch.no_grad():                                       # copy 0 is no longer the copies' init
        for p in supernet.parts[0].parameters():
            p.add_(0.1)
    params_before = [id(p) for p in supernet.parameters()]
    supernet.split()
    assert [id(p) for p in supernet.parameters()] == params_before     # an optimizer keeps working
    reference = supernet.parts[0].state_dict()
    for part in supernet.parts[1:]:
        for name, value in part.state_dict().items():
            assert torch.equal(value, reference[name]), name
    assert supernet.part(a) is supernet.parts[1] and supernet.part(b) is supernet.parts[4]
    x = images()
    assert torch.equal(supernet(x, a), supernet.parts[1](x, a))
    supernet(x, b).sum().backward()
    assert any(g is not None for g in grads_of(supernet.parts[4]))
    assert all(g is None for k in (0, 1, 2, 3, 5) for g in grads_of(supernet.parts[k]))
    # weight inheritance copies from the architecture's own copy
    with torch.no_grad():
        next(supernet.parts[4].parameters()).add_(1.0)
    assert supernet_part(supernet, b) is supernet.parts[4] and supernet_part(supernet.parts[0], b) is supernet.parts[0]
    from_b = inherited_state(space, supernet, b, {**DATA, "channels": 4})
    from_copy = inherited_state(space, supernet.parts[4], b, {**DATA, "channels": 4})
    assert all(torch.equal(from_b[k], from_copy[k]) for k in from_b)


def test_the_split_is_part_of_the_state_dict():
    _, supernet, a, _ = tiny_few_shot()
    supernet.split()
    _, fresh, _, _ = tiny_few_shot(seed=1)
    fresh.load_state_dict(supernet.state_dict())
    assert fresh.is_split and fresh.part(a) is fresh.parts[1]


def test_a_skip_decision_cannot_split_a_supernet():
    space = SPACES["macro_cnn"](num_layers=3)
    skip = [d for d in space.decisions() if d.kind == "skip"][0]
    with pytest.raises(ValueError, match="choose an op or input decision"):
        FewShotSupernet(space.build_supernet(**DATA, channels=4), skip, 2)


def macro_config(*overrides):
    return compose_config("search", ["experiment=smoke_macro", "search.log_every=0", "search.checkpoint_every=0",
                                     *overrides])


def test_search_builds_and_refuses_few_shot_settings(tmp_path):
    loop = build_search(macro_config("search.few_shot.decision=layer1_op"), str(tmp_path), torch.device("cpu"))
    assert isinstance(loop.supernet, FewShotSupernet) and loop.supernet.decision.name == "layer1_op"
    one = sum(p.numel() for p in loop.supernet.parts[0].parameters())
    assert sum(p.numel() for group in loop.optimizer.param_groups for p in group["params"]) == 6 * one
    for value, error in [("layer1_skip", "is a skip decision"), ("layer9_op", "is not a decision of this space")]:
        with pytest.raises(UserError, match=f"search.few_shot.decision={value}: {error}; space macro_cnn splits "
                                            f"on one of layer0_op, layer1_op"):
            build_search(macro_config(f"search.few_shot.decision={value}"), str(tmp_path), torch.device("cpu"))
    with pytest.raises(UserError, match="split_epoch=-1"):
        build_search(macro_config("search.few_shot.decision=layer0_op", "search.few_shot.split_epoch=-1"),
                     str(tmp_path), torch.device("cpu"))


def run_macro(run_dir, max_steps, resume_from=None, split_epoch=1):
    cfg = macro_config("search.epochs=2", "search.few_shot.decision=layer0_op",
                       f"search.few_shot.split_epoch={split_epoch}")
    return run_loop(cfg, run_dir, max_steps, resume_from)


def test_search_splits_at_its_epoch_and_resumes_exactly_across_the_split(tmp_path):
    whole = run_macro(tmp_path / "a", None)                   # 2 epochs x 6 omega steps, split at epoch 2
    assert whole.supernet.is_split and whole.global_step == 12
    def same(k, j):
        return all(torch.equal(p, q) for p, q in zip(whole.supernet.parts[k].parameters(),
                                                      whole.supernet.parts[j].parameters()))
    assert not all(same(0, k) for k in range(1, 6)), "after the split the copies train apart"
    unsplit = run_macro(tmp_path / "u", None, split_epoch=2)  # never split: copy 0 alone trains
    assert not unsplit.supernet.is_split
    assert all(torch.equal(p, q) for p, q in zip(unsplit.supernet.parts[1].parameters(),
                                                 unsplit.supernet.parts[5].parameters()))
    stopped = run_macro(tmp_path / "b", 4)                    # stopped in epoch 1, before the split
    assert not stopped.supernet.is_split
    resumed = run_macro(tmp_path / "b", None, resume_from=str(tmp_path / "b" / "checkpoint.pt"))
    assert resumed.supernet.is_split and resumed.global_step == 12
    for name, value in whole.supernet.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, resumed.supernet.state_dict()[name]), name
    assert whole.history == resumed.history
    restored = load_checkpoint(str(tmp_path / "b" / "checkpoint.pt"))
    fresh = build_search(macro_config("search.few_shot.decision=layer0_op"), str(tmp_path / "c"), torch.device("cpu"))
    fresh.load_state_dict(restored)
    assert fresh.supernet.is_split                             # derive / rank-check see the split supernet
