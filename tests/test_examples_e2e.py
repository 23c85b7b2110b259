"""The worked examples of examples/own_network: an own CNN searched on an ImageFolder directory and
an own language model on a PTB-format text folder, both created here in tmp_path (Python API; the
command lines share its code path, tests/test_own_network_e2e.py)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.slow
EXAMPLES = REPO / "examples" / "own_network"


@pytest.fixture
def examples(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import make_toy_data
    return make_toy_data


def test_own_cnn_on_an_image_folder(examples, tmp_path):
    import enas
    from mynet import MyNet
    examples.make_images(tmp_path / "images", per_class=12, size=8)
    data = {"path": str(tmp_path / "images"), "num_valid": 6, "batch_size": 6, "eval_batch_size": 6}
    result = enas.search(MyNet, "image_folder", strategy="reinforce", epochs=1, run_dir=str(tmp_path / "s"),
                         data=data, space={"sizes": {"width": 4}}, controller={"lstm_size": 8},
                         search={"omega_steps": 3, "strategy_steps": 2, "valid_batches": 1},
                         derive={"num_samples": 2, "valid_batches": 1})
    arch = result.derive()
    assert [d for d in json.loads((tmp_path / "s" / "arch.json").read_text())["genotype"].split()][0].startswith(
        "blocks.0.op=")
    enas.train(result, MyNet, "image_folder", epochs=1, run_dir=str(tmp_path / "t"), data=data,
               trainer={"steps_per_epoch": 2, "batch_size": 6, "cutout": 0, "sizes": {"width": 4}})
    folder = enas.export(str(tmp_path / "t"), MyNet)
    model, program = enas.load_model(folder, space=MyNet), torch.export.load(f"{folder}/model.pt2").module()
    x = torch.randn(4, 3, 8, 8)
    assert model(x).shape == (4, 3) and torch.allclose(program(x), model(x), atol=1e-5)
    assert arch.space == "mynet:MyNet"


def test_own_language_model_on_a_text_folder(examples, tmp_path):
    import enas
    from tinylm import TinyLM
    examples.make_corpus(tmp_path / "corpus", sentences=(120, 30, 30))
    data = {"path": str(tmp_path / "corpus"), "batch_size": 4, "eval_batch_size": 4, "test_batch_size": 4, "bptt": 6}
    sizes = {"hidden_size": 8}
    result = enas.search(TinyLM, "ptb", strategy="evolution", epochs=1, run_dir=str(tmp_path / "s"), data=data,
                         space={"sizes": sizes}, search={"omega_steps": 4, "strategy_steps": 2, "valid_batches": 2},
                         derive={"num_samples": 2, "valid_batches": 2})
    result.derive()
    metrics = enas.train(result, TinyLM, "ptb", epochs=1, run_dir=str(tmp_path / "t"), data=data,
                         trainer={"steps_per_epoch": 3, "batch_size": 4, "sizes": sizes})
    assert metrics["test"]["ppl"] > 1
    folder = enas.export(str(tmp_path / "t"), TinyLM)
    info = json.loads((tmp_path / "t" / "export" / "arch.json").read_text())["export"]
    model = enas.load_model(folder, space=TinyLM)
    tokens, hidden = torch.randint(0, model.out.out_features, (6, 3)), model.init_hidden(3)
    if info["pt2"]:                                         # time fixed to bptt when it cannot be dynamic
        program = torch.export.load(f"{folder}/model.pt2").module()
        assert torch.allclose(program(tokens, hidden)[0], model(tokens, hidden)[0], atol=1e-5)
    assert model(tokens, hidden)[0].shape == (6, 3, model.out.out_features)


def test_the_readme_shows_the_example_as_it_is():
    """README "Search your own network" quotes examples/own_network/mynet.py, under 40 lines of code."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Search your own network", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    source = (EXAMPLES / "mynet.py").read_text()
    code = source.split('"""', 2)[2].strip()                   # without the module docstring
    assert block.strip() == code
    assert len([line for line in code.splitlines() if line.strip()]) < 40
