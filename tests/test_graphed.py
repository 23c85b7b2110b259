"""The captured omega step (enas/graphed.py) and the captured reward forwards of the static supernet.

On a CPU the step runs its body through the static buffers without a graph: it must equal the
sync-free step of the search loop. Under the `cuda` marker (skipped without a GPU) the captured
step must equal the uncaptured one, skip non-finite steps on the device, follow lr changes, and
the captured eval forward must equal the eager one."""

import pytest
import torch

from enas.arch import Architecture
from enas.build import build_search
from enas.data.text import Corpus, Vocabulary
from enas.graphed import MAX_GRAPHS, GraphedStep
from enas.masked_sgd import MaskedSGD
from enas.optim import set_lr
from enas.spaces import build_space
from enas.tasks import LanguageModel, autocast
from enas.training import StepRunner
from tests.helpers import compose_config
from tests.test_rnn_cell_static import random_archs

V, H = 40, 16


def tiny_lm_task(device, batch=4, bptt=6, length=400, seed=0):
    """A LanguageModel over random token ids (no files)."""
    vocab = Vocabulary()
    for i in range(V):
        vocab.add(f"w{i}")
    g = torch.Generator().manual_seed(seed)
    ids = [torch.randint(0, V, (n,), generator=g) for n in (length, length // 2, length // 2)]
    return LanguageModel(Corpus(*ids, vocab), batch_size=batch, eval_batch_size=batch, bptt=bptt, device=device)


def static_setup(device, capture, dropout=0.0, seed=0):
    """Task, static supernet, capturable MaskedSGD, sync-free StepRunner and GraphedStep."""
    space = build_space("rnn_cell", num_nodes=6)
    task = tiny_lm_task(device)
    torch.manual_seed(seed)
    model = space.build_supernet(vocab_size=V, hidden_size=H, static_graph=True, hidden_dropout=dropout,
                                 hidden_dropout_every_node=True).to(device)
    opt = MaskedSGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3, nesterov=True,
                    rows_for=model.rows_for, capturable=True)
    stepper = StepRunner(opt, model.parameters(), grad_clip=0.25, max_nonfinite=3, sync_free=True)
    return space, task, model, GraphedStep(task, model, stepper, capture=capture)


def run_steps(space, task, graphed, archs, lr_change_at=None):
    state = task.init_state(graphed.model, "train")
    batches = task.train_batches(0)
    for k, arch in enumerate(archs):
        if k == lr_change_at:
            set_lr(graphed.optimizer, 0.1)
        state = graphed(next(batches), state, arch)
    return state


def test_graphed_step_on_cpu_equals_the_search_loop_sync_free_step(tmp_path):
    """The loop with a GraphedStep (CPU: no capture, same static buffers) == the loop's own sync-free step."""
    loops = []
    for graphed in (False, True):
        cfg = compose_config("search", ["experiment=smoke_ptb", "search.log_every=0", "accel.static_graph=true",
                                        "accel.sync_free=true", "search.optim.momentum=0.9"])
        cfg["search"]["max_steps"] = 6
        loop = build_search(cfg, str(tmp_path / str(graphed)), torch.device("cpu"))
        if graphed:
            loop.optimizer.capturable = True
            loop.graphed = GraphedStep(loop.task, loop.supernet, loop.stepper, capture=False)
        loop.run()
        loops.append(loop)
    plain, graphed = loops
    assert graphed.graphed.uncaptured == 6 and graphed.graphed.replays == 0 and len(graphed.graphed.entries) == 1
    for name, value in plain.supernet.state_dict().items():
        assert torch.allclose(value, graphed.supernet.state_dict()[name], rtol=1e-6, atol=1e-7), name
    assert torch.allclose(plain.train_state, graphed.train_state, atol=1e-6)


def test_graphed_step_keeps_shapes_apart_and_skips_nonfinite_states():
    space, task, model, graphed = static_setup("cpu", capture=False)
    arch = random_archs(space, 1, seed=0)[0]
    state = task.init_state(model)
    inputs, targets = next(task.train_batches(0))
    for t in range(MAX_GRAPHS + 1):                       # three shapes: two get buffers, one runs as is
        graphed((inputs[:6 - t], targets[:6 - t]), state, arch)
    assert len(graphed.entries) == MAX_GRAPHS and graphed.uncaptured == MAX_GRAPHS + 1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = graphed((inputs, targets), torch.full_like(state, float("nan")), arch)
    assert not out.any()                                    # skipped: the state restarts at zeros
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k                 # and nothing moved
    loss_sum, good = graphed.stepper.check("here")
    assert good == MAX_GRAPHS + 1 and graphed.stepper.nonfinite_total == 1 and loss_sum > 0


# --- CUDA ---------------------------------------------------------------------------------------


@pytest.mark.cuda
def test_captured_step_equals_the_uncaptured_step():
    runs = {}
    for capture in (False, True):
        space, task, model, graphed = static_setup("cuda", capture=capture)
        archs = random_archs(space, 6, seed=1)
        initial = model.edge_stack.detach().clone()
        state = run_steps(space, task, graphed, archs, lr_change_at=4)
        runs[capture] = (model, graphed, state, initial, archs)
    (eager_model, eager_step, eager_state, _, archs), (model, graphed, state, initial, _) = runs[False], runs[True]
    assert graphed.captures == 1 and graphed.replays == len(archs) and eager_step.replays == 0
    for name, value in eager_model.state_dict().items():
        assert torch.allclose(value, model.state_dict()[name], rtol=1e-4, atol=1e-6), name
    assert torch.allclose(eager_state, state, atol=1e-5)
    used = {r for a in archs for r in model.arch_tensors(a, "cpu").rows.tolist()}
    for r in range(model.edge_stack.shape[0]):
        if r not in used:
            assert torch.equal(model.edge_stack[r], initial[r])   # no decay, no momentum inside the graph


@pytest.mark.cuda
def test_captured_step_skips_nonfinite_steps_on_the_device():
    space, task, model, graphed = static_setup("cuda", capture=True)
    arch = random_archs(space, 1, seed=2)[0]
    batches = task.train_batches(0)
    state = graphed(next(batches), task.init_state(model), arch)          # capture + first replay
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = graphed(next(batches), torch.full_like(state, float("nan")), arch)
    assert graphed.replays == 2 and not out.any()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    graphed.stepper.check("here")
    assert graphed.stepper.nonfinite_total == 1


@pytest.mark.cuda
@pytest.mark.parametrize("amp", [None, torch.bfloat16])
def test_captured_eval_forward_equals_eager(amp):
    space = build_space("rnn_cell", num_nodes=6)
    torch.manual_seed(0)
    model = space.build_supernet(vocab_size=V, hidden_size=H, static_graph=True).cuda().eval()
    tokens = torch.randint(0, V, (7, 5), device="cuda")
    h0 = torch.randn(5, H, device="cuda") * 0.3
    tol = 1e-5 if amp is None else 2e-2
    model.capture_eval_graphs(True)
    for arch in random_archs(space, 4, seed=3):
        with torch.no_grad(), autocast(torch.device("cuda"), amp):
            graphs, model._eval_graphs = model._eval_graphs, None   # the eager forward, for reference
            want, h_want = model(tokens, h0, arch)
            model._eval_graphs = graphs
            got, h_got = model(tokens, h0, arch)            # first arch: capture + replay; then replays
            again, _ = model(tokens, h0, arch)
        assert torch.allclose(got.float(), want.float(), atol=tol) and torch.allclose(h_got, h_want, atol=tol)
        assert torch.equal(got, again)
    assert len(model._eval_graphs) == 1


@pytest.mark.cuda
def test_bf16_autocast_on_cuda_is_close_to_float32():
    space = build_space("rnn_cell", num_nodes=6)
    task = tiny_lm_task("cuda")
    arch = Architecture("rnn_cell", tuple(0 for _ in space.decisions()))
    for static in (False, True):
        torch.manual_seed(0)
        model = space.build_supernet(vocab_size=V, hidden_size=H, static_graph=static).cuda()
        batch = next(task.train_batches(0))
        losses = []
        for dtype in (None, torch.bfloat16):
            task.amp_dtype = dtype
            loss, state = task.loss(model, batch, task.init_state(model), arch)
            assert loss.dtype == torch.float32 and state.dtype == torch.float32
            losses.append(loss.item())
        assert abs(losses[1] - losses[0]) < 0.02 * losses[0], (static, losses)
