"""Learning-rate schedules and the language-model batch stream."""

import math

import pytest
import torch

from enas.data.text import corpus_from_texts
from enas.optim import lr_factor, scheduled_lr
from enas.tasks import LanguageModel


def test_decay_starts_at_decay_start():
    assert [lr_factor("decay", e, decay=0.5, decay_start=2) for e in range(4)] == [1.0, 1.0, 0.5, 0.25]


def test_cosine_restarts_periods_grow():
    factors = [lr_factor("cosine_restarts", e, t0=2, t_mul=2, min_ratio=0.0) for e in range(7)]
    assert factors[0] == 1.0 and factors[2] == 1.0 and factors[6] == 1.0   # restarts at 0, 2, 6
    assert factors[1] == pytest.approx(0.5) and factors[4] == pytest.approx(0.5)


def test_scheduled_lr_reaches_lr_min():
    lrs = [scheduled_lr(0.05, "cosine", {"lr_min": 1e-4}, e, 10) for e in range(11)]
    assert lrs[0] == pytest.approx(0.05) and lrs[10] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_factor("linear", 0)


@pytest.fixture
def lm_task():
    text = " ".join(f"w{i % 7}" for i in range(400))
    corpus = corpus_from_texts({"train": text, "valid": text[:200], "test": text[:200]},
                               {"train": "train", "valid": "valid", "test": "test"})
    return LanguageModel(corpus, batch_size=2, eval_batch_size=2, bptt=10, device="cpu")


def test_short_lm_epochs_walk_through_the_text(lm_task):
    n = lm_task.num_train_batches
    seen = []
    for epoch in range(3):
        seen += [inputs[0, 0].item() for inputs, _ in list(lm_task.train_batches(epoch, epoch_steps=4))[:4]]
    full = [inputs[0, 0].item() for inputs, _ in lm_task.train_batches(0)]
    assert seen == [full[k % n] for k in range(12)]      # epoch e starts where e-1 stopped
    resumed = [inputs[0, 0].item() for inputs, _ in list(lm_task.train_batches(1, start=2, epoch_steps=4))[:2]]
    assert resumed == seen[6:8]


def test_lm_targets_follow_inputs_and_reward_is_c_over_ppl(lm_task):
    inputs, targets = next(lm_task.train_batches(0))
    assert torch.equal(inputs[1:], targets[:-1])
    assert lm_task.score({"ppl": 40.0}) == pytest.approx(80.0 / 40.0)
    assert math.isinf(LanguageModel.evaluate.__wrapped__(lm_task, _Diverged(), "valid", None, 1)["ppl"])


class _Diverged(torch.nn.Module):
    def init_hidden(self, batch_size):
        return torch.zeros(batch_size, 1)

    def forward(self, tokens, hidden, arch=None):
        return torch.full((*tokens.shape, 7), math.nan), hidden
