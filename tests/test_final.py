"""Final training (enas/final.py): a trained network is evaluated as a trained network."""

from __future__ import annotations

import torch
from torch import nn

from enas.build import build_task
from enas.final import Trainer, TrainSettings
from enas.training import eval_mode
from tests.test_evaluators import DATA


class DropoutNet(nn.Module):
    """A digits classifier whose outputs are all zero in training mode (dropout p=1) and whose
    BatchNorm statistics would move if evaluation ran in training mode."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(64)
        self.drop = nn.Dropout(p=1.0)
        self.fc = nn.Linear(64, 10)

    def forward(self, x, arch=None):
        h = self.drop(self.bn(x.flatten(1)[:, :64]))
        return self.fc(h), None


def test_valid_and_test_run_in_eval_mode_and_training_resumes_in_train_mode():
    task = build_task(DATA, "cpu", 0)
    torch.manual_seed(0)
    model = DropoutNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(task, model, optimizer, TrainSettings(epochs=1, steps_per_epoch=3, lr=0.1, log_every=0,
                                                            valid_batches=2))
    summary = trainer.run()
    running_mean = model.bn.running_mean.clone()
    test = trainer.test()
    with eval_mode(model):
        expected = task.evaluate(model, "test")
    assert model.training                       # the mode before test() is restored
    assert test == expected
    assert torch.equal(model.bn.running_mean, running_mean)   # evaluation left BatchNorm's statistics alone
    with eval_mode(model):
        assert summary["valid_acc"] == task.evaluate(model, "valid", None, 2)["acc"]
    # In training mode dropout p=1 zeroes every feature: all logits equal the bias, one class for all.
    with torch.no_grad():
        in_train_mode = task.evaluate(model, "valid", None, 2)
    assert (summary["valid_acc"], summary["valid_loss"]) != (in_train_mode["acc"], in_train_mode["loss"])


def test_eval_mode_restores_the_previous_mode_even_on_error():
    model = DropoutNet().eval()
    with eval_mode(model):
        assert not model.training
    assert not model.training
    model.train()
    try:
        with eval_mode(model):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert model.training and model.bn.training
