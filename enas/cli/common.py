"""What the three entry points share: turning config sections into objects, and error handling.

This is the only layer (with the entry points themselves) that reads the Hydra config; every
object below it gets plain numbers and objects.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from enas.arch import ArchitectureError
from enas.utils import UserError


def plain(node) -> dict:
    """A config node as a plain dict (resolved)."""
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    return dict(node)


def user_errors(fn):
    """Print user-facing errors as one line (exit 2) instead of a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MissingMandatoryValue as e:
            print(f"error: missing value for {e.full_key} (give it on the command line: {e.full_key}=...)",
                  file=sys.stderr, flush=True)
            sys.exit(2)
        except (UserError, ArchitectureError, OSError, ValueError) as e:   # OSError names its file
            if os.environ.get("ENAS_TRACEBACK"):
                traceback.print_exc()
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"error: {message}", file=sys.stderr, flush=True)
            sys.exit(2)
    return wrapper


# --- data -----------------------------------------------------------------------------------------
TEXT_DATASETS = ("ptb",)


def build_task(data: dict, device, seed: int, batch_size: int | None = None, cutout: int | None = None):
    """A `Task` from the `data` config section (batch size / cutout may be overridden for training)."""
    if data["name"] in TEXT_DATASETS:
        return _build_text_task(data, device, batch_size)
    return _build_image_task(data, device, seed, batch_size, cutout)


@functools.lru_cache(maxsize=2)
def _cached_corpus(path: str | None):
    # Tokenising PTB takes a few seconds; derive, rank checks and tests build tasks repeatedly.
    from enas.data.text import load_corpus
    return load_corpus(path)


def _build_text_task(data: dict, device, batch_size):
    from enas.tasks import LanguageModel
    path = data.get("path")
    if path is not None and not os.path.isdir(path):
        raise UserError(f"data.path={path}: no such directory (expected ptb.train.txt, ptb.valid.txt, ptb.test.txt)")
    corpus = _cached_corpus(path)
    return LanguageModel(corpus, batch_size=batch_size or data["batch_size"],
                         eval_batch_size=data["eval_batch_size"], bptt=data["bptt"], device=device,
                         reward_c=data.get("reward_c", 80.0), test_batch_size=data.get("test_batch_size", 1))


def _subset(x, y, limit: int | None, seed: int):
    """Keep the first `limit` images of a fixed random order (a low-fidelity data fraction)."""
    import torch
    if limit is None or limit >= len(y):
        return x, y
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    return x[order], y[order]


def _build_image_task(data: dict, device, seed: int, batch_size, cutout):
    from enas.data.images import ImageBatches, channel_stats, load_images, split_train_valid
    from enas.tasks import ImageClassification
    ds = load_images(data["name"], data.get("path"), data.get("limit_per_class"))
    train_x, train_y, valid_x, valid_y = split_train_valid(ds, data["num_valid"], seed)
    train_x, train_y = _subset(train_x, train_y, data.get("train_limit"), seed)
    test_x, test_y = _subset(ds.test_x, ds.test_y, data.get("test_limit"), seed)
    mean, std = channel_stats(train_x)
    augment = dict(data.get("augment") or {})
    if cutout is not None:
        augment["cutout"] = cutout
    bs = batch_size or data["batch_size"]
    eval_bs = data.get("eval_batch_size", bs)
    train = ImageBatches(train_x, train_y, mean, std, bs, device=device, drop_last=True, **augment)
    valid = ImageBatches(valid_x, valid_y, mean, std, eval_bs, device=device)
    test = ImageBatches(test_x, test_y, mean, std, eval_bs, device=device)
    return ImageClassification(train, valid, test, num_classes=ds.num_classes, seed=seed)


# --- space, strategy, evaluator --------------------------------------------------------------------
def model_sizes(space_cfg: dict, task, overrides: dict | None = None) -> dict:
    """Builder kwargs: the space's sizes, optional overrides (final training), the data's sizes."""
    return {**space_cfg.get("sizes", {}), **(overrides or {}), **task.model_sizes()}


def build_space_from(space_cfg: dict, structure: dict | None = None):
    from enas.spaces import build_space
    try:
        return build_space(space_cfg["name"], **(structure if structure is not None else space_cfg.get("structure", {})))
    except TypeError as e:
        raise UserError(f"space {space_cfg['name']!r}: bad structure ({e})") from None


def build_strategy_from(strategy_cfg: dict, space, seed: int, device):
    from enas.strategies import build_strategy
    try:
        strategy = build_strategy(strategy_cfg["name"], space, seed=seed, **strategy_cfg.get("options", {}))
    except TypeError as e:
        raise UserError(f"strategy {strategy_cfg['name']!r}: bad option ({e})") from None
    return strategy.to(device)


def build_evaluator_from(evaluator_cfg: dict, task, space, supernet, context: dict):
    """The evaluator; `context` (config, sizes, run_dir, device) lets standalone ones build children."""
    from enas.evaluators import build_evaluator
    return build_evaluator(evaluator_cfg["name"], task=task, space=space, supernet=supernet, context=context,
                           **evaluator_cfg.get("options", {}))


def build_surrogate_from(surrogate_cfg: dict | None, space):
    """Optional surrogate pre-screening (search.surrogate.share < 1)."""
    if not surrogate_cfg or surrogate_cfg.get("share", 1.0) >= 1.0:
        return None
    from enas.surrogate import Surrogate
    options = {k: v for k, v in surrogate_cfg.items() if k != "share"}
    return Surrogate(space.decisions(), share=surrogate_cfg["share"], **options)


def lr_kwargs(optim: dict) -> dict:
    """The schedule arguments of an `optim` config section."""
    return {k: optim[k] for k in ("decay", "decay_start", "t0", "t_mul", "lr_min") if optim.get(k) is not None}


# The Hydra config tree lives at the repository top level (conf/), beside the package.
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "conf")
