"""The found model, taken away (enas-export): a torch.export program and a plain state_dict + arch.json.

`export_network` writes into one folder:

    model.pt2      torch.export.save of the trained network in eval mode: runs with plain torch,
                   no enas needed:  model = torch.export.load("model.pt2").module(); model(x)
    state_dict.pt  the network's state_dict (plain tensors)
    arch.json      the architecture (as enas-derive writes it) plus "sizes" (the builder sizes)
                   and "export" (the inputs the program takes, how it was traced, notes)

`load_exported(folder, space)` rebuilds the module from arch.json + state_dict.pt.

The module exported is the one a user calls: a space written with choice modules exports its
own module (`forward(x)` or `forward(tokens, hidden)`), a built-in space its standalone network
(`forward(images)`, `forward(tokens, hidden)`). Example inputs come from the sizes: images
(2, C, H, W) from in_channels/image_size, any input from input_shape, or tokens (T, 2) and
`init_hidden(2)` from vocab_size.

Tracing tries the most general program first and falls back:
  1. every batch dimension dynamic, and the time dimension of a language model;
  2. the time dimension fixed to T = data.bptt (language models whose cell loops over time in
     Python, such as rnn_cell and nas_rnn_tree, unroll the loop; nn.RNN/nn.GRU land here too
     with torch 2.13): the program takes exactly T steps, any batch;
  3. every shape fixed to the example's;
and gives up (no model.pt2, the reason in arch.json and on the console) when the module has
data-dependent control flow or other code that torch.export cannot trace. The state_dict path
works for every network.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from typing import Any

import torch
from torch import nn

from enas.arch import Architecture, load_arch_file, save_json

EXAMPLE_BATCH = 2


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _changed_dim(a: torch.Tensor, b: torch.Tensor) -> int:
    return next(i for i, (x, y) in enumerate(zip(a.shape, b.shape)) if x != y)


def _batch_dim(module: nn.Module, hidden: Any) -> Any:
    """Per tensor of `hidden` (a tensor or a tuple of tensors), its batch dimension: the one
    that changes between init_hidden(2) and init_hidden(3)."""
    other = module.init_hidden(EXAMPLE_BATCH + 1)
    if torch.is_tensor(hidden):
        return _changed_dim(hidden, other)
    return tuple(_changed_dim(h, o) for h, o in zip(hidden, other))


def example_inputs(module: nn.Module, sizes: dict, seq_len: int | None) -> tuple[tuple, list[dict], str]:
    """(example args, their description, kind "image" | "lm") for `module`, from the builder sizes."""
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    if "vocab_size" in sizes:
        steps = int(seq_len or 35)
        tokens = torch.randint(0, int(sizes["vocab_size"]), (steps, EXAMPLE_BATCH), device=device)  # (T, B)
        hidden = module.init_hidden(EXAMPLE_BATCH)
        shapes = [list(h.shape) for h in ([hidden] if torch.is_tensor(hidden) else hidden)]
        described = [{"name": "tokens", "shape": ["time", "batch"], "dtype": "int64"},
                     {"name": "hidden", "shape": shapes, "batch_dim": _batch_dim(module, hidden),
                      "note": "the model's init_hidden(batch): zeros of these shapes at batch 2"}]
        return (tokens, hidden), described, "lm"
    if "input_shape" in sizes:
        shape = [int(n) for n in sizes["input_shape"]]
    elif "in_channels" in sizes and "image_size" in sizes:
        shape = [int(sizes["in_channels"]), int(sizes["image_size"]), int(sizes["image_size"])]
    else:
        raise ValueError(f"cannot make an example input from the sizes {sorted(sizes)}: the task's model_sizes() "
                         f"needs input_shape (or in_channels and image_size, or vocab_size)")
    x = torch.randn(EXAMPLE_BATCH, *shape, device=device)
    return (x,), [{"name": "input", "shape": ["batch", *shape], "dtype": "float32"}], "image"


def _dynamic_shapes(args: tuple, described: list[dict], kind: str, dynamic_time: bool):
    batch = torch.export.Dim("batch", min=1, max=65536)
    if kind == "image":
        return ({0: batch},)
    time_dim = torch.export.Dim("time", min=1, max=65536) if dynamic_time else None
    tokens = {0: time_dim, 1: batch} if dynamic_time else {1: batch}
    dims = described[1]["batch_dim"]
    hidden = {dims: batch} if isinstance(dims, int) else tuple({d: batch} for d in dims)
    return (tokens, hidden)


@contextlib.contextmanager
def _quiet():
    """Tracing chatter off (warnings, torch's symbolic-shape log, the graph torch.export prints to
    stderr when it fails): a failure's reason is kept, and the program is checked against the module."""
    shapes_log = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    level = shapes_log.level
    shapes_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        shapes_log.setLevel(level)


def trace(module: nn.Module, args: tuple, described: list[dict], kind: str):
    """(ExportedProgram or None, how: "dynamic" | "static time" | "static" | None, note)."""
    attempts = [("dynamic", _dynamic_shapes(args, described, kind, True))]
    if kind == "lm":
        attempts.append(("static time", _dynamic_shapes(args, described, kind, False)))
    attempts.append(("static", None))
    failures = []
    for how, dynamic in attempts:
        try:
            with _quiet():
                program = torch.export.export(module, args, dynamic_shapes=dynamic)
        except Exception as e:  # noqa: BLE001  (torch.export raises many kinds; the next attempt decides)
            failures.append(f"{how}: {_first_line(e)}")
            continue
        note = ""
        if how == "static time":
            note = (f"the time dimension is fixed to {args[0].shape[0]} steps, batch is dynamic (a dynamic time "
                    f"dimension failed: {failures[0]})")
        elif how == "static":
            note = f"every shape is fixed to the example's ({failures[0]})"
        return program, how, note
    reasons = [f.split(": ", 1)[1] for f in failures]
    return None, None, reasons[0] if len(set(reasons)) == 1 else "; ".join(failures)


def _leaves(value) -> list[torch.Tensor]:
    """The tensors of an output: a tensor or (nested) tuples/lists of tensors."""
    if torch.is_tensor(value):
        return [value]
    return [t for v in value for t in _leaves(v)] if isinstance(value, (tuple, list)) else []


def _same_outputs(program, module: nn.Module, args: tuple) -> bool:
    """Does the program compute what the module computes on `args`?"""
    expected, got = module(*args), program.module()(*args)
    flat_e, flat_g = _leaves(expected), _leaves(got)
    return len(flat_e) == len(flat_g) and all(torch.allclose(a, b, atol=1e-5, rtol=1e-4)
                                              for a, b in zip(flat_e, flat_g))


def export_network(network: nn.Module, space, arch: Architecture, sizes: dict, out_dir: str,
                   seq_len: int | None = None) -> dict:
    """Write model.pt2 (when traceable), state_dict.pt and arch.json of a trained network into `out_dir`.

    Returns {"out_dir", "files", "pt2" (path or None), "traced" (how), "note"}.
    """
    from enas.spaces.module_space import deployable
    module = deployable(network).eval()
    os.makedirs(out_dir, exist_ok=True)
    torch.save(module.state_dict(), os.path.join(out_dir, "state_dict.pt"))
    args, described, kind = example_inputs(module, sizes, seq_len)
    with torch.no_grad():
        program, how, note = trace(module, args, described, kind)
        if program is not None and not _same_outputs(program, module, args):
            program, how, note = None, None, "the traced program computes other outputs than the module"
    files = ["state_dict.pt", "arch.json"]
    pt2 = None
    if program is not None:
        pt2 = os.path.join(out_dir, "model.pt2")
        torch.export.save(program, pt2)
        files.insert(0, "model.pt2")
    elif os.path.exists(os.path.join(out_dir, "model.pt2")):
        os.remove(os.path.join(out_dir, "model.pt2"))       # never leave an older program beside new weights
    export_info = {"pt2": "model.pt2" if pt2 else None, "traced": how, "note": note, "inputs": described,
                   "module": f"{type(module).__module__}.{type(module).__qualname__}", "torch": torch.__version__}
    save_json(os.path.join(out_dir, "arch.json"), space.arch_to_dict(arch, sizes=sizes, export=export_info))
    return {"out_dir": out_dir, "files": files, "pt2": pt2, "traced": how, "note": note}


def load_exported(folder: str, space) -> nn.Module:
    """The module of an export folder (arch.json + state_dict.pt), in eval mode, built by `space`."""
    from enas.spaces.module_space import deployable
    arch_path = os.path.join(folder, "arch.json")
    data = load_arch_file(arch_path)
    if "sizes" not in data:
        raise ValueError(f"{arch_path}: no 'sizes' entry (not written by enas-export)")
    arch = space.arch_from_dict(data, source=arch_path)
    module = deployable(space.build_network(arch, **data["sizes"]))
    weights = os.path.join(folder, "state_dict.pt")
    if not os.path.exists(weights):
        raise FileNotFoundError(f"{weights}: no such file (the export folder holds arch.json and state_dict.pt)")
    module.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return module.eval()
