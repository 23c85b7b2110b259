"""Typed configs: the schema every command's composed config is checked against.

Hydra composes the YAML files of conf/ on top of these dataclasses (Hydra structured configs,
put in Hydra's ConfigStore by enas/hydra_config.py), so a value of the wrong type fails while the
config is composed, before anything runs, naming its key: `search.epochs=abc` -> search.epochs
expects int. Defaults stay in the YAML files: every field here is `MISSING` (`???`), but for the
search sections a preset brings to enas-derive and enas-rank-check (None: absent).

- Primary configs name their schema first in their defaults list (`search_schema`, ...);
  train.yaml, compare.yaml and beats_random.yaml compose search.yaml and then name
  `train_schema` / `compare_schema` / `beats_random_schema`, which extend the search schema by
  their own keys.
- Groups whose options share one shape (space, controller, trainer) are typed by the primary
  schema. Groups whose options differ (data, strategy, evaluator) are `Any` there, and each
  option's YAML names its own schema: `- /schema/<group>/<name>@_here_` in its defaults.
- Sections that presets and users extend with their own keys stay open: `space.structure`,
  `space.sizes`, `trainer.sizes` (dicts), `search.surrogate` (`share` typed, other keys free,
  also in a preset's YAML). `threads` is `Any` (auto or a number; OmegaConf has no unions).

Plain dataclasses: this module imports neither Hydra nor OmegaConf nor anything of enas. Only
the entry points (enas.cli) and the build layer import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

# OmegaConf's mark of a value still to be given (omegaconf.MISSING); the library imports no
# config library (tests/test_layers.py), Hydra's side is in enas/hydra_config.py.
MISSING = "???"


def _section(cls):
    """A nested section: its own schema, every field `???` until the YAML fills it."""
    return field(default_factory=cls)


# --- shared pieces ---------------------------------------------------------------------------------
@dataclass
class Optim:
    """search.optim, trainer.optim: SGD and its learning-rate schedule."""
    lr: float = MISSING
    momentum: float = MISSING
    nesterov: bool = MISSING
    weight_decay: float = MISSING
    grad_clip: float = MISSING
    schedule: str = MISSING
    decay: Optional[float] = MISSING
    decay_start: Optional[int] = MISSING
    t0: Optional[int] = MISSING
    t_mul: Optional[int] = MISSING
    lr_min: Optional[float] = MISSING


@dataclass
class StandaloneKnobs:
    """Low-fidelity training of standalone children (the standalone/inherit evaluators' options)."""
    epochs: int = MISSING
    steps_per_epoch: Optional[int] = MISSING
    train_limit: Optional[int] = MISSING
    width_multiplier: Optional[float] = MISSING
    lr: Optional[float] = MISSING
    batch_size: Optional[int] = MISSING
    valid_batches: Optional[int] = MISSING
    workers: int = MISSING
    engine: str = MISSING
    mode: str = MISSING
    retries: int = MISSING
    failure_reward: float = MISSING
    seed: Optional[int] = MISSING
    recalibrate_bn: int = MISSING


# --- data (one schema per kind of data set) ----------------------------------------------------------
@dataclass
class TextData:
    """conf/data/ptb.yaml."""
    name: str = MISSING
    path: Optional[str] = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    test_batch_size: int = MISSING
    bptt: int = MISSING
    reward_c: float = MISSING


@dataclass
class Augment:
    crop_padding: int = MISSING
    flip: bool = MISSING
    cutout: int = MISSING


@dataclass
class ImageData:
    """conf/data/{digits,fashion_mnist,cifar10}.yaml."""
    name: str = MISSING
    path: Optional[str] = MISSING
    num_valid: int = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    train_limit: Optional[int] = MISSING
    test_limit: Optional[int] = MISSING
    limit_per_class: Optional[int] = MISSING
    split_seed: Optional[int] = MISSING
    augment: Augment = _section(Augment)


# --- space, controller, strategies, evaluators ---------------------------------------------------------
@dataclass
class Space:
    """conf/space/*.yaml: structure and sizes differ per space, so they stay open.

    space=custom: `target` names the user's module, `kwargs` its structure (conf/space/custom.yaml);
    enas-derive / enas-rank-check take `space.target` to name that code again (null: not named).
    """
    name: str = MISSING
    structure: Dict[str, Any] = MISSING
    sizes: Dict[str, Any] = MISSING
    target: Optional[str] = None
    kwargs: Dict[str, Any] = field(default_factory=dict)


@dataclass
class CustomData:
    """conf/data/custom.yaml: the user's function (`target`, null: objects from the Python API)."""
    name: str = MISSING
    target: Optional[str] = MISSING
    kwargs: Dict[str, Any] = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    num_classes: Optional[int] = MISSING
    num_workers: int = MISSING


@dataclass
class Controller:
    """conf/controller/enas.yaml: the LSTM controller and its REINFORCE update."""
    lstm_size: int = MISSING
    tanh_c: float = MISSING
    op_tanh_reduce: float = MISSING
    temperature: float = MISSING
    lr: float = MISSING
    entropy_weight: float = MISSING
    baseline_decay: float = MISSING
    skip_target: float = MISSING
    skip_weight: float = MISSING
    grad_clip: float = MISSING
    top_k: int = MISSING
    priors: bool = MISSING
    skip_pair: bool = MISSING
    skip_penalty: str = MISSING
    adam_beta1: float = MISSING
    adam_eps: float = MISSING
    baseline: str = MISSING
    entropy_mode: str = MISSING


@dataclass
class ReinforceStrategy:
    """conf/strategy/reinforce.yaml: its options are the `controller` section (`${controller}`)."""
    name: str = MISSING
    options: Dict[str, Any] = MISSING


@dataclass
class RandomOptions:
    skip_prob: float = MISSING
    top_k: int = MISSING


@dataclass
class RandomStrategy:
    name: str = MISSING
    options: RandomOptions = _section(RandomOptions)


@dataclass
class EvolutionOptions:
    population_size: int = MISSING
    sample_size: int = MISSING
    skip_prob: float = MISSING
    top_k: int = MISSING


@dataclass
class EvolutionStrategy:
    name: str = MISSING
    options: EvolutionOptions = _section(EvolutionOptions)


@dataclass
class GridOptions:
    decisions: Optional[List[str]] = MISSING
    fixed: Optional[Dict[str, Any]] = MISSING
    max_count: int = MISSING
    top_k: int = MISSING


@dataclass
class GridStrategy:
    name: str = MISSING
    options: GridOptions = _section(GridOptions)


@dataclass
class OptunaOptions:
    n_startup_trials: int = MISSING
    top_k: int = MISSING
    sampler_options: Optional[Dict[str, Any]] = MISSING


@dataclass
class OptunaStrategy:
    """conf/strategy/{tpe,gp}.yaml."""
    name: str = MISSING
    options: OptunaOptions = _section(OptunaOptions)


@dataclass
class OneShotOptions:
    batches_per_reward: int = MISSING
    fresh_state: bool = MISSING
    burn_in_batches: int = MISSING
    shared_batches: bool = MISSING


@dataclass
class OneShotEvaluator:
    name: str = MISSING
    options: OneShotOptions = _section(OneShotOptions)


@dataclass
class StandaloneOptions(StandaloneKnobs):
    journal: Optional[str] = MISSING


@dataclass
class StandaloneEvaluator:
    """conf/evaluator/{standalone,inherit}.yaml."""
    name: str = MISSING
    options: StandaloneOptions = _section(StandaloneOptions)


# --- trainer, search, derive --------------------------------------------------------------------------
@dataclass
class Trainer:
    """conf/trainer/*.yaml: final training; `sizes` overrides space.sizes (open)."""
    epochs: int = MISSING
    steps_per_epoch: Optional[int] = MISSING
    batch_size: Optional[int] = MISSING
    valid_batches: Optional[int] = MISSING
    log_every: int = MISSING
    optim: Optim = _section(Optim)
    aux_weight: float = MISSING
    drop_path: float = MISSING
    cutout: Optional[int] = MISSING
    max_nonfinite: int = MISSING
    keep_checkpoints: int = MISSING
    sizes: Dict[str, Any] = MISSING


@dataclass
class Surrogate:
    """search.surrogate: `share` here; the surrogate's own options may be added (open section)."""
    share: float = MISSING


@dataclass
class FewShot:
    """search.few_shot: split the supernet on one decision (enas/spaces/few_shot.py)."""
    decision: Optional[str] = MISSING
    split_epoch: int = MISSING


@dataclass
class SearchSection:
    epochs: int = MISSING
    omega_steps: Optional[int] = MISSING
    max_steps: Optional[int] = MISSING
    strategy_steps: int = MISSING
    archs_per_step: int = MISSING
    valid_batches: Optional[int] = MISSING
    aux_weight: float = MISSING
    warmup_epochs: int = MISSING
    fair_sampling: bool = MISSING
    few_shot: FewShot = _section(FewShot)
    checkpoint_every: int = MISSING
    keep_checkpoints: int = MISSING
    log_every: int = MISSING
    max_nonfinite: int = MISSING
    surrogate: Surrogate = _section(Surrogate)
    optim: Optim = _section(Optim)


@dataclass
class Accel:
    """conf/accel/*.yaml: the GPU speed options (enas/accel.py)."""
    amp: Optional[str] = MISSING
    tf32: bool = MISSING
    channels_last: bool = MISSING
    cudnn_benchmark: bool = MISSING
    static_graph: bool = MISSING
    sync_free: bool = MISSING
    cuda_graphs: bool = MISSING
    compile: bool = MISSING
    eval_batch_size: Optional[int] = MISSING
    strategy_device: Optional[str] = MISSING


@dataclass
class DeriveSection:
    num_samples: int = MISSING
    valid_batches: Optional[int] = MISSING
    seed: int = MISSING
    estimator: str = MISSING
    steps: Optional[int] = MISSING
    lr: Optional[float] = MISSING
    workers: Optional[int] = MISSING
    recalibrate_bn: Optional[int] = MISSING
    rank_by: str = MISSING
    finalists: int = MISSING
    finalist_epochs: int = MISSING


# --- primary configs ---------------------------------------------------------------------------------
@dataclass
class Groups:
    """The config groups every command composes, so that every experiment= preset composes everywhere."""
    data: Any = MISSING             # TextData | ImageData, named by the data option
    space: Space = _section(Space)
    controller: Controller = _section(Controller)
    strategy: Any = MISSING         # *Strategy, named by the strategy option
    evaluator: Any = MISSING        # OneShotEvaluator | StandaloneEvaluator
    trainer: Trainer = _section(Trainer)


@dataclass
class SearchConfig(Groups):
    """conf/search.yaml (enas-search)."""
    seed: int = MISSING
    device: str = MISSING
    threads: Any = MISSING          # auto or a number of threads (checked by enas.utils.set_threads)
    resume: bool = MISSING
    search: SearchSection = _section(SearchSection)
    derive: DeriveSection = _section(DeriveSection)
    accel: Accel = _section(Accel)


@dataclass
class TrainConfig(SearchConfig):
    """conf/train.yaml (enas-train): the search config plus the architecture file."""
    arch: str = MISSING


@dataclass
class CompareConfig(SearchConfig):
    """conf/compare.yaml (enas-compare): the search config plus the comparison's own keys."""
    strategies: List[str] = MISSING
    seeds: List[int] = MISSING
    out_dir: str = MISSING
    overrides: List[str] = MISSING
    derive_top: int = MISSING


@dataclass
class ReadsASearch(Groups):
    """Commands that read a finished search (derive, rank-check): the groups and a preset's search
    sections compose, but the search's own config in its checkpoint decides, so they stay untyped."""
    search: Optional[Dict[str, Any]] = None
    derive: Optional[Dict[str, Any]] = None


@dataclass
class DeriveConfig(ReadsASearch):
    """conf/derive.yaml (enas-derive); null = the search's own derive setting."""
    run_dir: str = MISSING
    device: str = MISSING
    threads: Any = MISSING
    num_samples: Optional[int] = MISSING
    valid_batches: Optional[int] = MISSING
    seed: Optional[int] = MISSING
    estimator: Optional[str] = MISSING
    steps: Optional[int] = MISSING
    lr: Optional[float] = MISSING
    workers: Optional[int] = MISSING
    recalibrate_bn: Optional[int] = MISSING
    rank_by: Optional[str] = MISSING
    finalists: Optional[int] = MISSING
    finalist_epochs: Optional[int] = MISSING
    top: int = MISSING


@dataclass
class OneShotScoring:
    """rank_check.one_shot: how the supernet scores each architecture."""
    valid_images: Optional[int] = MISSING
    valid_batches: Optional[int] = MISSING
    bn: str = MISSING
    bn_batches: int = MISSING


@dataclass
class RankEstimator:
    """rank_check.estimator: what scores each architecture (one-shot, or trained for a few steps)."""
    name: str = MISSING
    steps: int = MISSING
    lr: Optional[float] = MISSING
    repeats: int = MISSING
    recalibrate_bn: int = MISSING
    rank_by: str = MISSING


@dataclass
class GroundTruth:
    """rank_check.ground_truth: every architecture trained from scratch once per seed."""
    seeds: List[int] = MISSING
    average: int = MISSING
    split: str = MISSING
    overrides: List[str] = MISSING
    workers: int = MISSING
    engine: str = MISSING


@dataclass
class RankStats:
    """rank_check.stats: the agreement figures and their bootstrap intervals."""
    top_fraction: float = MISSING
    bootstrap: int = MISSING
    level: float = MISSING
    noise_floor: float = MISSING


@dataclass
class RankCheckConfig(ReadsASearch):
    """conf/rank_check.yaml (enas-rank-check)."""
    run_dir: str = MISSING
    device: str = MISSING
    threads: Any = MISSING
    num_archs: int = MISSING
    seed: int = MISSING
    report: str = MISSING
    one_shot: OneShotScoring = _section(OneShotScoring)
    estimator: RankEstimator = _section(RankEstimator)
    ground_truth: GroundTruth = _section(GroundTruth)
    stats: RankStats = _section(RankStats)


@dataclass
class BeatsRandomConfig(CompareConfig):
    """conf/beats_random.yaml (enas-beats-random): enas-compare's keys plus the random pool's."""
    num_random: int = MISSING
    random_seed: int = MISSING
    train_seeds: List[int] = MISSING
    average: int = MISSING
    split: str = MISSING
    workers: int = MISSING
    engine: str = MISSING


@dataclass
class NamedTarget:
    """A custom space named again on the command line (null: not named)."""
    target: Optional[str] = None


@dataclass
class ExportConfig:
    """conf/export.yaml (enas-export): a training run's network taken away."""
    run_dir: str = MISSING
    out_dir: Optional[str] = MISSING
    threads: Any = MISSING
    space: NamedTarget = _section(NamedTarget)


PRIMARY = {"search_schema": SearchConfig, "train_schema": TrainConfig, "compare_schema": CompareConfig,
           "derive_schema": DeriveConfig, "rank_check_schema": RankCheckConfig, "export_schema": ExportConfig,
           "beats_random_schema": BeatsRandomConfig}
GROUPS = {"data": {"text": TextData, "image": ImageData, "custom": CustomData},
          "strategy": {"reinforce": ReinforceStrategy, "random": RandomStrategy, "evolution": EvolutionStrategy,
                       "grid": GridStrategy, "optuna": OptunaStrategy},
          "evaluator": {"one_shot": OneShotEvaluator, "standalone": StandaloneEvaluator}}
# Typed sections that stay open to keys of their own (dotted paths in the primary configs).
OPEN_SECTIONS = ("search.surrogate",)
