"""The `accel` speed options (enas/accel.py) on a CPU: each equals the default path within its
stated tolerance. bf16 autocast: loss within 2%; gradient cosine > 0.99 for the recurrent cell,
> 0.9 for the CNNs (the gradients of BatchNorm shifts are sums over the batch that nearly cancel,
and bf16 keeps ~3 significant digits: measured 0.95 at 16x16 images, batch 16). channels_last:
loss within 1e-5, gradients within 1e-4 relative."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import enas.spaces.macro_cnn  # noqa: F401  (registers the space)
import enas.spaces.micro_cnn  # noqa: F401
from enas.accel import AccelOptions
from enas.build import build_search
from enas.spaces import build_space
from enas.spaces.base import SPACES
from enas.strategies.base import uniform_architecture
from enas.tasks import ImageClassification
from enas.utils import UserError
from tests.helpers import compose_config
from tests.test_graphed import V, tiny_lm_task
from tests.test_rnn_cell_static import random_archs

CNN_CASES = [("macro_cnn", {"num_layers": 4}, {"channels": 8}),
             ("micro_cnn", {"num_nodes": 3}, {"channels": 8, "num_layers": 3, "sep_conv_stack": 2,
                                              "per_input_weights": True})]
DATA = {"num_classes": 5, "in_channels": 3, "image_size": 16}


def test_options_are_checked_and_cuda_only_ones_turn_off_on_cpu():
    with pytest.raises(UserError, match="unknown option"):
        AccelOptions.from_config({"amp": "bf16", "fast": True})
    with pytest.raises(UserError, match="accel.amp='fp8'"):
        AccelOptions.from_config({"amp": "fp8"})
    gpu = AccelOptions.from_config(compose_config("search", ["accel=gpu"])["accel"])
    assert gpu.amp_dtype == torch.bfloat16 and gpu.cuda_graphs and gpu.static_graph
    cpu = gpu.for_device(torch.device("cpu"))
    assert not (cpu.cuda_graphs or cpu.tf32 or cpu.cudnn_benchmark) and cpu.static_graph and cpu.amp == "bf16"
    assert AccelOptions.from_config(None) == AccelOptions()


def grads_of(model):
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def cosine(a, b):
    return float(F.cosine_similarity(a.double(), b.double(), dim=0))


@pytest.mark.parametrize("static", [False, True], ids=["eager", "static"])
def test_bf16_autocast_rnn_cell_is_close_to_float32(static):
    space = build_space("rnn_cell", num_nodes=5)
    task = tiny_lm_task("cpu")
    batch = next(task.train_batches(0))
    torch.manual_seed(0)
    model = space.build_supernet(vocab_size=V, hidden_size=16, static_graph=static)
    for arch in random_archs(space, 2, seed=4):
        results = []
        for dtype in (None, torch.bfloat16):
            task.amp_dtype = dtype
            model.zero_grad(set_to_none=True)
            loss, state = task.loss(model, batch, task.init_state(model), arch)
            loss.backward()
            results.append((loss.item(), grads_of(model), state))
        (l32, g32, s32), (l16, g16, s16) = results
        assert s16.dtype == torch.float32 and loss.dtype == torch.float32
        assert abs(l16 - l32) < 0.02 * l32 and l16 != l32      # bf16 really ran, and stayed close
        assert cosine(g16, g32) > 0.99


def cnn_task(amp=None, channels_last=False):
    task = ImageClassification.__new__(ImageClassification)   # only the forward helpers are used
    task.amp_dtype, task.channels_last = amp, channels_last
    return task


@pytest.mark.parametrize("case", CNN_CASES, ids=[c[0] for c in CNN_CASES])
def test_cnn_bf16_and_channels_last_match_the_default(case):
    name, structure, sizes = case
    space = SPACES[name](**structure)
    arch = uniform_architecture(space.name, space.decisions(), np.random.default_rng(0))
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(16, 3, 16, 16, generator=g), torch.randint(0, 5, (16,), generator=g))
    results = {}
    for label, amp, nhwc in (("default", None, False), ("channels_last", None, True), ("bf16", torch.bfloat16, False)):
        torch.manual_seed(0)
        model = space.build_supernet(**DATA, **sizes).train()
        if nhwc:
            model = model.to(memory_format=torch.channels_last)
        loss, _ = cnn_task(amp, nhwc).loss(model, batch, None, arch)
        loss.backward()
        results[label] = (loss.item(), grads_of(model))
    base_loss, base_grad = results["default"]
    nhwc_loss, nhwc_grad = results["channels_last"]
    assert abs(nhwc_loss - base_loss) < 1e-5 and torch.allclose(nhwc_grad, base_grad, rtol=1e-4, atol=1e-5)
    bf16_loss, bf16_grad = results["bf16"]
    assert abs(bf16_loss - base_loss) < 0.02 * base_loss and bf16_loss != base_loss
    assert cosine(bf16_grad, base_grad) > 0.9


def test_a_search_with_the_gpu_preset_runs_on_cpu(tmp_path):
    """accel=gpu on a CPU: bf16, channels_last and sync-free steps on the micro space; CUDA-only options off."""
    cfg = compose_config("search", ["experiment=smoke_micro", "accel=gpu", "search.epochs=1", "search.omega_steps=2",
                                    "search.strategy_steps=1", "search.log_every=1"])
    loop = build_search(cfg, str(tmp_path), torch.device("cpu"))
    assert loop.task.amp_dtype == torch.bfloat16 and loop.task.channels_last and loop.stepper.sync_free
    assert loop.graphed is None and next(p for p in loop.supernet.parameters() if p.dim() == 4).is_contiguous(
        memory_format=torch.channels_last)
    summary = loop.run()
    assert summary["epoch"] == 1 and np.isfinite(summary["valid_loss"]) and loop.global_step == 2


@pytest.mark.cuda
@pytest.mark.parametrize("case", CNN_CASES, ids=[c[0] for c in CNN_CASES])
def test_cnn_gpu_options_on_cuda_match_the_default(case):
    """channels_last + cudnn.benchmark: rounding only (1e-4); + TF32: ~1e-3; + bf16: the CPU tolerances."""
    name, structure, sizes = case
    space = SPACES[name](**structure)
    arch = uniform_architecture(space.name, space.decisions(), np.random.default_rng(0))
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(16, 3, 16, 16, generator=g).cuda(), torch.randint(0, 5, (16,), generator=g).cuda())
    results = {}
    try:
        for label, amp, nhwc, bench, tf32 in (("default", None, False, False, False), ("nhwc", None, True, True, False),
                                              ("tf32", None, True, True, True), ("bf16", torch.bfloat16, True, True, True)):
            torch.backends.cudnn.benchmark = bench
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            torch.manual_seed(0)
            model = space.build_supernet(**DATA, **sizes).cuda().train()
            if nhwc:
                model = model.to(memory_format=torch.channels_last)
            loss, _ = cnn_task(amp, nhwc).loss(model, batch, None, arch)
            loss.backward()
            results[label] = (loss.item(), grads_of(model))
    finally:
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True   # torch's defaults
    base_loss, base_grad = results["default"]
    assert abs(results["nhwc"][0] - base_loss) < 1e-4 and cosine(results["nhwc"][1], base_grad) > 0.9999
    assert abs(results["tf32"][0] - base_loss) < 1e-2 * base_loss and cosine(results["tf32"][1], base_grad) > 0.99
    assert abs(results["bf16"][0] - base_loss) < 0.02 * base_loss and cosine(results["bf16"][1], base_grad) > 0.9
