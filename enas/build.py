"""The build layer: config sections (plain dicts) -> objects.

This is the one library module that reads the configuration. Everything below it (the search
loop, evaluators, final training, spaces, strategies, tasks) takes numbers, tensors and
objects. The command lines (enas/cli/) resolve the Hydra config to a plain dict and call the
functions here; so do worker processes, which get a plain picklable job (`run_child`).

    cfg["data"]                       -> build_task        -> LanguageModel | ImageClassification
    cfg["space"]                      -> build_space       -> SearchSpace (+ model_sizes)
    cfg["strategy"]                   -> build_strategy    -> Strategy
    cfg["evaluator"] (+ data/trainer) -> build_evaluator   -> OneShot | Standalone | Inherit
    cfg["search"] / cfg["trainer"]    -> search_settings / train_settings, build_optimizer
    whole search config               -> build_search      -> SearchLoop
    search config + arch.json         -> build_training    -> (space, arch, Trainer)
    config + nested changes           -> with_changes      (the harness's ground_truth.overrides)

User code (`space=custom space.target=pkg.mod:Net`, `data=custom data.target=pkg.mod:make`) is
built by enas/user_code.py (part of this layer): see there.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time

import torch

from enas.arch import Architecture
from enas.user_code import CUSTOM, build_custom_space, build_custom_task, check_user_code
from enas.distributed import SINGLE, Dist
from enas.utils import UserError, pick_device, seed_everything, set_threads

log = logging.getLogger(__name__)

# Evaluators that score architectures with (or start from) the shared supernet's weights.
SUPERNET_EVALUATORS = ("one_shot", "inherit")
TEXT_DATASETS = ("ptb",)


# --- process ---------------------------------------------------------------------------------------
def start_process(cfg: dict, device=None):
    """The device (`device`) and torch's CPU threads (`threads`) of a command; returns (device, threads).

    `device`: already chosen (several processes: enas.distributed gives each its cuda:LOCAL_RANK).
    """
    chosen = device if device is not None else pick_device(cfg.get("device", "auto"))
    return chosen, set_threads(cfg.get("threads", "auto"))


# Overrides of a search that also decide what enas-train must train on (data, space, trainer).
TRAIN_OVERRIDE_KEYS = ("experiment", "data", "space", "trainer", "seed", "device", "threads")


def train_overrides(search_overrides: list[str]) -> list[str]:
    """The search's command-line overrides that enas-train needs to train on the same data and space."""
    kept = []
    for override in search_overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key.split(".")[0] in TRAIN_OVERRIDE_KEYS:
            kept.append(override)
    return kept


def clamp_batches(setting: str, value: int | None, available: int) -> int | None:
    """A number of validation batches no larger than the split has (warns, naming the setting)."""
    if value is not None and value > available:
        log.warning(
            f"{setting}={value}: the validation split has only {available} batches; using {available}")
        return available
    return value


def with_changes(config: dict, changes: dict | None) -> dict:
    """A copy of `config` with the nested values of `changes` put in (dicts merged key by key,
    other values replaced); `config` itself is left as it was."""
    out = json.loads(json.dumps(config))           # a deep copy of plain values
    for key, value in (changes or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = with_changes(out[key], value)
        else:
            out[key] = json.loads(json.dumps(value))
    return out


def recipe_description(config: dict) -> str:
    """One line naming the training recipe of an enas-train config (data, sizes, epochs)."""
    data, trainer = config["data"], config["trainer"]
    sizes = {**(config["space"].get("sizes") or {}), **(trainer.get("sizes") or {})}
    size_text = ", ".join(f"{k} {v}" for k, v in sizes.items())
    limit = f", {data['train_limit']} training images" if data.get("train_limit") else ""
    limit += f", {data['test_limit']} test images" if data.get("test_limit") else ""
    limit += f", data split seed {data['split_seed']}" if data.get("split_seed") is not None else ""
    steps = f" x {trainer['steps_per_epoch']} steps" if trainer.get("steps_per_epoch") else ""
    optim = trainer["optim"]
    return (f"{config['space']['name']} on {data['name']}{limit}; {trainer['epochs']} epochs{steps}, batch "
            f"{trainer.get('batch_size')}, lr {optim['lr']} ({optim.get('schedule')}); {size_text}")


# --- data -----------------------------------------------------------------------------------------
def build_task(data: dict, device, seed: int, batch_size: int | None = None, cutout: int | None = None,
               user_data=None):
    """A `Task` from the `data` config section (batch size / cutout may be overridden for training).

    data=custom: the task (or datasets) that `data.target` returns, or `user_data` (Python API).
    """
    if data["name"] == CUSTOM:
        return build_custom_task(data, device, seed, batch_size, user_data)
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
    if limit is None or limit >= len(y):
        return x, y
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    return x[order], y[order]


def _build_image_task(data: dict, device, seed: int, batch_size, cutout):
    from enas.data.images import ImageBatches, channel_stats, load_images, split_train_valid
    from enas.tasks import ImageClassification
    ds = load_images(data["name"], data.get("path"), data.get("limit_per_class"))
    # data.split_seed fixes which images are held out and kept whatever the run's seed (which
    # still seeds the shuffle and augmentation): trainings with several seeds then see the same data.
    split_seed = seed if data.get("split_seed") is None else int(data["split_seed"])
    train_x, train_y, valid_x, valid_y = split_train_valid(ds, data["num_valid"], split_seed)
    train_x, train_y = _subset(train_x, train_y, data.get("train_limit"), split_seed)
    test_x, test_y = _subset(ds.test_x, ds.test_y, data.get("test_limit"), split_seed)
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


# --- space, strategy, optimizer, surrogate ---------------------------------------------------------
def build_space(space_cfg: dict, structure: dict | None = None, sizes: dict | None = None, user_space=None):
    """The search space named in `space_cfg` (structure from the config, or from an arch.json).

    space=custom: a `ModuleSpace` of the module that `space.target` names (or of `user_space`,
    a module class/function/instance or a SearchSpace, from the Python API); `sizes` build the
    probe module its decisions are read from.
    """
    from enas.spaces import build_space as space_by_name
    if space_cfg["name"] == CUSTOM:
        return build_custom_space(space_cfg, structure, sizes, user_space)
    try:
        return space_by_name(space_cfg["name"], **(structure if structure is not None else space_cfg.get("structure", {})))
    except TypeError as e:
        raise UserError(f"space {space_cfg['name']!r}: bad structure ({e})") from None


def model_sizes(space_cfg: dict, task, overrides: dict | None = None) -> dict:
    """Builder kwargs: the space's sizes, optional overrides (final training), the data's sizes."""
    return {**space_cfg.get("sizes", {}), **(overrides or {}), **task.model_sizes()}


def build_strategy(strategy_cfg: dict, space, seed: int, device):
    """The strategy named in `strategy_cfg`, on `device` when it has parameters."""
    from enas.strategies import build_strategy as strategy_by_name
    try:
        strategy = strategy_by_name(strategy_cfg["name"], space, seed=seed, **strategy_cfg.get("options", {}))
    except TypeError as e:
        raise UserError(f"strategy {strategy_cfg['name']!r}: bad option ({e})") from None
    return strategy.to(device)


def build_optimizer(params, optim: dict, masked: bool = False, rows_for=None,
                    capturable: bool = False) -> torch.optim.SGD:
    """SGD from an `optim` config section (Nesterov only with momentum, as torch requires).

    `masked`: enas.masked_sgd.MaskedSGD, the same updates plus row masks (`rows_for`: a stacked
    supernet's unused rows get no decay and no momentum) and device-side skips (sync-free steps);
    `capturable`: its learning rate lives on the device (CUDA graphs).
    """
    momentum = optim.get("momentum", 0.0)
    kwargs = dict(lr=optim["lr"], momentum=momentum, weight_decay=optim.get("weight_decay", 0.0),
                  nesterov=bool(optim.get("nesterov", False)) and momentum > 0)
    if masked:
        from enas.masked_sgd import MaskedSGD
        return MaskedSGD(params, rows_for=rows_for, capturable=capturable, **kwargs)
    return torch.optim.SGD(params, **kwargs)


def lr_kwargs(optim: dict) -> dict:
    """The schedule arguments of an `optim` config section."""
    return {k: optim[k] for k in ("decay", "decay_start", "t0", "t_mul", "lr_min") if optim.get(k) is not None}


def build_surrogate(surrogate_cfg: dict | None, space):
    """Optional surrogate pre-screening (search.surrogate.share < 1)."""
    if not surrogate_cfg or surrogate_cfg.get("share", 1.0) >= 1.0:
        return None
    from enas.surrogate import Surrogate
    options = {k: v for k, v in surrogate_cfg.items() if k != "share"}
    return Surrogate(space.decisions(), share=surrogate_cfg["share"], **options)


# --- evaluators ---------------------------------------------------------------------------------------
def child_recipe(cfg: dict, device) -> dict:
    """What every standalone child of a search shares: plain values, read back by `run_child` only."""
    return {"data": cfg["data"], "space": cfg.get("space"), "trainer": cfg["trainer"], "data_seed": int(cfg["seed"]),
            "device": str(device), "accel": cfg.get("accel")}


def build_evaluator(cfg: dict, task, space, supernet, sizes: dict, run_dir: str | None, device,
                    options: dict | None = None, child_fn=None):
    """The evaluator of `cfg["evaluator"]` (its options, or `options` given explicitly).

    Standalone/inherit children run `child_fn` (default `run_child`) on the recipe of `cfg`;
    tests inject their own child function here.
    """
    from enas.evaluators import EVALUATORS, Inherit, OneShot, Standalone
    name = cfg["evaluator"]["name"]
    options = dict(cfg["evaluator"].get("options") or {}) if options is None else dict(options)
    if name not in EVALUATORS:
        raise UserError(f"unknown evaluator {name!r}; known: {', '.join(EVALUATORS)}")
    if name in SUPERNET_EVALUATORS and supernet is None:
        raise UserError(f"evaluator {name} needs a supernet; space {space.name!r} has none (use evaluator=standalone)")
    try:
        if name == "one_shot":
            return OneShot(task, supernet, **options)
        trainer = cfg["trainer"]
        for key in ("valid_batches", "batch_size"):
            if options.get(key) is None:
                options[key] = trainer.get(key)
        if options.get("seed") is None:
            options["seed"] = cfg["seed"]
        cls = Inherit if name == "inherit" else Standalone
        return cls(task, space, child_fn or run_child, child_recipe(cfg, device), sizes, run_dir, supernet,
                   **options)
    except TypeError as e:
        raise UserError(f"evaluator {name!r}: bad option ({e})") from None
    except ValueError as e:
        raise UserError(str(e)) from None


#: Tasks built by `run_child`, per worker process and data config (PTB is read once per worker).
_TASK_CACHE: dict[str, object] = {}


def _child_task(data: dict, seed: int, batch_size: int | None, device: str):
    key = json.dumps([data, seed, batch_size, device], sort_keys=True)
    if key not in _TASK_CACHE:
        if len(_TASK_CACHE) >= 4:            # a worker serves one search: keep memory bounded
            _TASK_CACHE.clear()
        _TASK_CACHE[key] = build_task(data, device, seed, batch_size=batch_size)
    return _TASK_CACHE[key]


def _child_trainer_cfg(trainer: dict, training: dict) -> dict:
    """The recipe's trainer section with a child's overrides (None: keep the recipe's value)."""
    out = json.loads(json.dumps(trainer))          # a deep copy of plain values
    out["log_every"] = 0
    for key in ("epochs", "steps_per_epoch", "valid_batches"):
        out[key] = training[key]
    out["recalibrate_bn"] = training.get("recalibrate_bn", 0)     # before each validation (TrainSettings)
    for key in ("lr", "weight_decay"):
        if training.get(key) is not None:
            out["optim"][key] = float(training[key])
    return out


def run_child(job: dict) -> dict:
    """Train one standalone child (a job of `enas.evaluators.Standalone`) and score it on validation.

    Runs in a worker process; builds everything through this layer.
    Returns {"reward", "metrics", "seconds", "pid"}.
    """
    from enas.final import Trainer
    t0 = time.time()
    recipe, training = job["recipe"], job["training"]
    data = dict(recipe["data"])
    if job.get("train_limit") is not None:
        data["train_limit"] = job["train_limit"]
    trainer_cfg = _child_trainer_cfg(recipe["trainer"], training)
    device = recipe["device"]
    accel = _accel(recipe.get("accel"), device)
    task = _child_task(data, recipe["data_seed"], training.get("batch_size"), device)
    _accel_task(task, accel)
    custom = (recipe.get("space") or {}).get("name") == CUSTOM
    space_cfg = recipe["space"] if custom else {"name": job["space"]}
    space = build_space(space_cfg, job["structure"], job["sizes"])
    arch = space.validate(Architecture.from_plain(space.name, job["choices"]))
    seed_everything(job["seed"])
    model = space.build_network(arch, **job["sizes"])
    if job.get("init_state") is not None:
        model.load_state_dict(job["init_state"])
    model = _accel_model(model.to(device), accel, task)
    optimizer = build_optimizer(model.parameters(), trainer_cfg["optim"])
    trainer = Trainer(task, model, optimizer, train_settings(trainer_cfg), run_dir=None, prefix="child")
    trainer.run()
    # The last epoch's validation is trainer.evaluate("valid", valid_batches) of the final model.
    last = trainer.history[-1] if trainer.history else None
    if last is None:
        metrics = trainer.evaluate("valid", trainer_cfg.get("valid_batches"))
    else:
        metrics = {k[len("valid_"):]: v for k, v in last.items() if k.startswith("valid_")}
    return {"reward": float(task.score(metrics)), "metrics": metrics, "seconds": time.time() - t0,
            "pid": os.getpid()}


# --- speed options (accel) ------------------------------------------------------------------------------
def _accel(section: dict | None, device):
    """The `accel` section as AccelOptions for `device`, its backend switches applied."""
    from enas.accel import AccelOptions, apply_backend
    options = AccelOptions.from_config(section).for_device(torch.device(device))
    apply_backend(options)
    return options


def _accel_task(task, accel) -> None:
    from enas.accel import configure_task
    configure_task(task, accel)


def _accel_model(model, accel, task):
    from enas.accel import prepare_model
    return prepare_model(model, accel, task.kind)


def _static_sizes(space, sizes: dict, accel) -> dict:
    """The supernet sizes with `static_graph` when accel asks for it and the space has one."""
    if not accel.static_graph or sizes.get("static_graph"):
        return sizes
    if not getattr(space, "supports_static_graph", False):
        log.info("accel.static_graph: space %s has no static-graph supernet; its eager one runs", space.name)
        return sizes
    return {**sizes, "static_graph": True}


def _fast_supernet(supernet, accel, device) -> bool:
    """Compile / graph-capture options on a static-graph supernet; True when the omega step is graphed."""
    static = hasattr(supernet, "arch_tensors")
    if (accel.compile or accel.cuda_graphs) and not static:
        log.info("accel.compile / accel.cuda_graphs need the static-graph supernet (rnn_cell, accel.static_graph); off")
        return False
    if accel.compile:
        supernet.compile_cell(dynamic=False)
    if accel.cuda_graphs:
        supernet.capture_eval_graphs(True)           # reward and validation forwards replayed from graphs
    return accel.cuda_graphs


# --- search and training -----------------------------------------------------------------------------
def search_settings(search: dict):
    """`SearchSettings` from the `search` config section."""
    from enas.search_loop import SearchSettings
    optim = search["optim"]
    return SearchSettings(
        epochs=search["epochs"], omega_steps=search.get("omega_steps"), max_steps=search.get("max_steps"),
        strategy_steps=search["strategy_steps"], archs_per_step=search["archs_per_step"],
        lr=optim["lr"], lr_schedule=optim.get("schedule", "constant"), lr_kwargs=lr_kwargs(optim),
        grad_clip=optim.get("grad_clip", 0.0), aux_weight=search.get("aux_weight", 0.0),
        warmup_epochs=search.get("warmup_epochs", 0), fair_sampling=search.get("fair_sampling", False),
        few_shot_split_epoch=(search.get("few_shot") or {}).get("split_epoch", 0),
        valid_batches=search.get("valid_batches"), checkpoint_every=search.get("checkpoint_every", 0),
        log_every=search.get("log_every", 50), max_nonfinite=search.get("max_nonfinite", 10),
        keep_checkpoints=search.get("keep_checkpoints", 2))


def train_settings(trainer: dict):
    """`TrainSettings` from the `trainer` config section."""
    from enas.final import TrainSettings
    optim = trainer["optim"]
    return TrainSettings(
        epochs=trainer["epochs"], steps_per_epoch=trainer.get("steps_per_epoch"), lr=optim["lr"],
        lr_schedule=optim.get("schedule", "constant"), lr_kwargs=lr_kwargs(optim),
        grad_clip=optim.get("grad_clip", 0.0), aux_weight=trainer.get("aux_weight", 0.0),
        drop_path=trainer.get("drop_path", 0.0), valid_batches=trainer.get("valid_batches"),
        log_every=trainer.get("log_every", 100), max_nonfinite=trainer.get("max_nonfinite", 10),
        keep_checkpoints=trainer.get("keep_checkpoints", 2), recalibrate_bn=trainer.get("recalibrate_bn", 0))


def _few_shot(space, supernet, section: dict | None, settings):
    """The supernet split on `search.few_shot.decision` (enas.spaces.few_shot), else `supernet` itself."""
    from enas.spaces.few_shot import SPLITTABLE_KINDS, FewShotSupernet
    name = (section or {}).get("decision")
    if name is None:
        return supernet
    decisions = space.decisions()
    names = [d.name for d in decisions]
    splittable = [d.name for d in decisions if d.kind in SPLITTABLE_KINDS]
    if name not in splittable:
        what = "is a skip decision" if name in names else "is not a decision of this space"
        raise UserError(f"search.few_shot.decision={name}: {what}; space {space.name} splits on one of "
                        f"{', '.join(splittable)}")
    if hasattr(supernet, "arch_tensors") or settings.cuda_graphs:
        raise UserError("search.few_shot: the static-graph supernet (accel.static_graph, accel.cuda_graphs) runs "
                        "one graph for every architecture and cannot be split; set accel.static_graph=false")
    if settings.few_shot_split_epoch < 0:
        raise UserError(f"search.few_shot.split_epoch={settings.few_shot_split_epoch}: give an epoch >= 0")
    index = names.index(name)
    few_shot = FewShotSupernet(supernet, decisions[index], index)
    per_copy = sum(p.numel() for p in supernet.parameters())
    log.info(f"few-shot supernet: {len(few_shot.parts)} copies of {per_copy:,} shared parameters, one per option "
             f"of {name}, split at the start of epoch {settings.few_shot_split_epoch + 1}")
    if settings.few_shot_split_epoch >= settings.epochs:
        log.warning(f"search.few_shot.split_epoch={settings.few_shot_split_epoch} >= search.epochs="
                    f"{settings.epochs}: the supernet is never split in this run")
    return few_shot


def _check_batch_mean_baseline(cfg: dict, settings) -> None:
    """controller.baseline=batch_mean compares the architectures of one controller update: refuse,
    before any training, a search whose updates hold one architecture."""
    if (cfg["strategy"].get("options") or {}).get("baseline") != "batch_mean":
        return
    if (cfg["evaluator"].get("options") or {}).get("mode") == "async":
        raise UserError("controller.baseline=batch_mean compares the architectures of one controller update, and "
                        "evaluator.options.mode=async tells the strategy one architecture at a time: use mode=sync")
    if settings.archs_per_step < 2:
        raise UserError(f"controller.baseline=batch_mean compares the architectures of one controller update: "
                        f"set search.archs_per_step to 2 or more (it is {settings.archs_per_step})")


def build_search(cfg: dict, run_dir: str, device, writer=None, task=None, user_space=None, user_data=None,
                 dist: Dist = SINGLE):
    """Everything a search needs, from a plain config dict (also used by enas-derive/rank-check).

    `task` may be given to skip loading the data (tests of presets whose data is not here);
    `user_space` / `user_data`: objects from the Python API for space=custom / data=custom;
    `dist`: the processes that share the omega phase (enas.distributed; one by default).
    """
    from enas.accel import data_section, strategy_device
    from enas.search_loop import SearchLoop
    seed_everything(cfg["seed"])
    accel = _accel(cfg.get("accel"), device)
    task = task if task is not None else build_task(data_section(cfg["data"], accel), device, cfg["seed"],
                                                    user_data=user_data)
    _accel_task(task, accel)
    sizes = model_sizes(cfg["space"], task)
    space = build_space(cfg["space"], sizes=sizes, user_space=user_space)
    sizes = _static_sizes(space, sizes, accel)
    supernet = optimizer = None
    settings = search_settings(cfg["search"])
    if cfg["evaluator"]["name"] in SUPERNET_EVALUATORS:
        try:
            supernet = _accel_model(space.build_supernet(**sizes).to(device), accel, task)
        except NotImplementedError as e:
            raise UserError(f"space {space.name!r}: {e}") from None
        settings.cuda_graphs = _fast_supernet(supernet, accel, device)
        settings.sync_free = accel.sync_free
        supernet = _few_shot(space, supernet, cfg["search"].get("few_shot"), settings)
        rows_for = getattr(supernet, "rows_for", None)
        optimizer = build_optimizer(supernet.parameters(), cfg["search"]["optim"],
                                    masked=rows_for is not None or settings.sync_free or settings.cuda_graphs,
                                    rows_for=rows_for, capturable=settings.cuda_graphs)
    _check_batch_mean_baseline(cfg, settings)
    strategy = build_strategy(cfg["strategy"], space, cfg["seed"], strategy_device(device, accel))
    evaluator = build_evaluator(cfg, task, space, supernet, sizes, run_dir, device)
    surrogate = build_surrogate(cfg["search"].get("surrogate"), space)
    metadata = {"space": space.name, "structure": space.structure(), "sizes": sizes,
                "strategy_name": strategy.name, "config": cfg}
    settings.valid_batches = clamp_batches("search.valid_batches", settings.valid_batches, task.num_batches("valid"))
    if dist.active:
        if settings.sync_free or settings.cuda_graphs:
            raise UserError(f"accel.sync_free and accel.cuda_graphs run in one process, and {dist.world_size} "
                            f"share this search: leave them off (accel.sync_free=false accel.cuda_graphs=false)")
        if supernet is None:
            raise UserError(f"{dist.world_size} processes share the training of a supernet, and this search "
                            f"has none (evaluator=standalone): run it as one process; its children spread "
                            f"over the evaluator's workers (process pool or Ray)")
        _shard(dist, task, cfg["seed"])
    return SearchLoop(task, space, supernet, strategy, evaluator, optimizer, settings,
                      run_dir=run_dir, writer=writer, metadata=metadata, surrogate=surrogate, dist=dist)


def _shard(dist: Dist, task, seed: int) -> None:
    """Several processes: this rank's rows of the training batches, and its own RNG stream
    (after every rank built the same models from the same seed)."""
    task.shard_train(dist.rank, dist.world_size)
    dist.seed_ranks(seed)


def build_training(cfg: dict, arch_data: dict, arch_path: str, device, run_dir: str | None, writer=None,
                   task=None, user_space=None, user_data=None, dist: Dist = SINGLE):
    """Space, architecture and `Trainer` for training one architecture from scratch (enas-train).

    `dist`: the processes that share the training (enas.distributed; one by default).
    """
    from enas.final import Trainer
    if cfg["space"]["name"] != CUSTOM and arch_data["space"] != cfg["space"]["name"]:
        raise UserError(f"{arch_path}: architecture of space {arch_data['space']!r}, but this config trains "
                        f"space {cfg['space']['name']!r} (choose the matching experiment=...)")
    trainer_cfg = cfg["trainer"]
    seed_everything(cfg["seed"])
    accel = _accel(cfg.get("accel"), device)
    if task is None:
        task = build_task(cfg["data"], device, cfg["seed"], batch_size=trainer_cfg.get("batch_size"),
                          cutout=trainer_cfg.get("cutout"), user_data=user_data)
    _accel_task(task, accel)
    sizes = model_sizes(cfg["space"], task, trainer_cfg.get("sizes"))
    space, arch = build_arch_space(cfg["space"], arch_data, arch_path, sizes, user_space)
    model = _accel_model(space.build_network(arch, **sizes).to(device), accel, task)
    optimizer = build_optimizer(model.parameters(), trainer_cfg["optim"])
    metadata = {"space": space.name, "structure": space.structure(), "sizes": sizes,
                "arch": space.arch_to_dict(arch), "config": cfg}
    settings = train_settings(trainer_cfg)
    settings.valid_batches = clamp_batches("trainer.valid_batches", settings.valid_batches, task.num_batches("valid"))
    if dist.active:
        _shard(dist, task, cfg["seed"])
    trainer = Trainer(task, model, optimizer, settings, run_dir=run_dir, writer=writer, metadata=metadata, dist=dist)
    return space, arch, trainer


def build_arch_space(space_cfg: dict, arch_data: dict, source: str, sizes: dict, user_space=None):
    """(space, architecture) of an arch.json's content: the space of `space_cfg` with the file's structure.

    A custom space must be the one the file names (its module's "package.module:Name").
    """
    custom = space_cfg["name"] == CUSTOM
    structure = arch_data.get("structure")
    space = build_space(space_cfg, structure if custom else structure or None, sizes=sizes, user_space=user_space)
    if custom and arch_data["space"] != space.name:
        raise UserError(f"{source}: architecture of space {arch_data['space']!r}, but space.target names "
                        f"{space.name!r}")
    return space, space.arch_from_dict(arch_data, source=source)


def restore_search(run_dir: str, device, targets: dict | None = None, user_space=None, user_data=None):
    """The search loop of an earlier run, rebuilt from the config stored in its checkpoint and
    loaded with its state (enas-derive, enas-rank-check). Stored names are looked up in the
    registries only: nothing read from the run directory names code to import or call. A
    custom space or data needs its target named again (`targets`, from the command line) or
    its object handed in (`user_space`, `user_data`): see `check_user_code`."""
    from enas.checkpoint import load_latest_checkpoint
    path = os.path.join(run_dir, "checkpoint.pt")
    state = load_latest_checkpoint(path, map_location=device, kind="search")
    config = check_user_code(state["config"], targets or {}, path, {"space": user_space, "data": user_data})
    loop = build_search(config, run_dir, device, user_space=user_space, user_data=user_data)
    loop.load_state_dict(state)
    loop.metadata["overrides"] = list(state.get("overrides") or [])     # the search's command line
    return loop
