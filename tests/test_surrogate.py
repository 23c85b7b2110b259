"""Surrogate pre-screening: features, selection on a toy additive reward, state round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from enas.arch import Architecture
from enas.strategies.base import uniform_architecture
from enas.surrogate import Surrogate, encode


def toy_reward(space, arch: Architecture) -> float:
    """Additive: each op choice index and each skip bit adds to the reward, input choices do not."""
    total = 0.0
    for d, c in zip(space.decisions(), arch.choices):
        if d.kind == "op":
            total += c
        elif d.kind == "skip":
            total += 0.5 * sum(c)
    return total


def draw(space, n, seed):
    g = np.random.default_rng(seed)
    return [uniform_architecture(space.name, space.decisions(), g) for _ in range(n)]


def test_encode_one_hot_and_bits(toy_space):
    arch = draw(toy_space, 1, 0)[0]
    x = encode(toy_space.decisions(), arch)
    width = sum(d.num_choices for d in toy_space.decisions())
    assert x.shape == (width,)
    first = toy_space.decisions()[0]
    assert x[: first.num_choices].sum() == 1.0 and x[arch.choices[0]] == 1.0


@pytest.mark.parametrize("model", ["ridge", "forest"])
def test_selection_beats_the_pool_average(toy_space, model):
    s = Surrogate(toy_space.decisions(), share=0.25, model=model, min_observations=5, seed=0)
    train = draw(toy_space, 40, 1)
    s.observe(train, [toy_reward(toy_space, a) for a in train])
    pool = draw(toy_space, 40, 2)
    chosen = s.select(pool, 8)
    assert len(chosen) == 8 and all(a in pool for a in chosen)
    pool_rewards = [toy_reward(toy_space, a) for a in pool]
    chosen_mean = np.mean([toy_reward(toy_space, a) for a in chosen])
    assert chosen_mean > np.mean(pool_rewards) + np.std(pool_rewards), (chosen_mean, np.mean(pool_rewards))


def test_no_screening_before_min_observations_and_state_round_trip(toy_space):
    s = Surrogate(toy_space.decisions(), share=0.5, model="forest", min_observations=5)
    pool = draw(toy_space, 6, 3)
    s.observe(pool[:4], [1.0, 2.0, 3.0, 4.0])
    assert s.select(pool, 2) == pool[:2]
    with pytest.raises(RuntimeError, match="not fitted"):
        s.predict(pool)
    s.observe(pool[4:], [5.0, 6.0])
    copy = Surrogate(toy_space.decisions(), share=0.5, model="forest", min_observations=5)
    copy.load_state_dict(s.state_dict())
    assert np.allclose(copy.predict(pool), s.predict(pool))
    assert copy.select(pool, 3) == s.select(pool, 3)


def test_bad_settings(toy_space):
    with pytest.raises(ValueError, match="share"):
        Surrogate(toy_space.decisions(), share=0.0)
    with pytest.raises(ValueError, match="known: ridge, forest"):
        Surrogate(toy_space.decisions(), share=0.5, model="gp")
