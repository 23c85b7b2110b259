"""The runs behind the commands: search, derive, train, export, and the search-quality harness
(rank check, beats random), each from a plain config dict.

The console scripts (enas/cli/) resolve their Hydra config and call these; so does the Python
API (enas/api.py), which composes the same config tree, so both write the same run directory:
checkpoint.pt, <command>.log, TensorBoard events under tb/, arch.json/arch.png, result.json,
export/. `user_space` / `user_data` are the Python API's objects for space=custom / data=custom
(the command lines name their code by `target` instead).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence

import numpy as np
import torch

from enas.arch import load_arch_file, save_json
from enas.build import (build_arch_space, build_evaluator, build_search, build_space, build_training, clamp_batches,
                        recipe_description, restore_search, start_process, train_overrides, with_changes)
from enas.checkpoint import check_compatible, checkpoint_exists, load_latest_checkpoint
from enas.derive import best_first, format_table, lowest_loss_first, rank_candidates
from enas.distributed import init_from_env
from enas.draw import save_png
from enas.fileio import write_text
from enas.final import perplexity_or_accuracy
from enas.logs import Eta, format_duration, run_log
from enas.parallel import build_engine
from enas.plots import save_image
from enas.quality import (beats_random_csv, beats_random_plot, beats_random_report, cost_summary, format_beats_random,
                          format_cost, ground_truth_jobs, log_image, metric_of, train_architectures, values_by_seed)
from enas.ranking import (bn_mode, format_rank_report, one_shot_batches, one_shot_scores, rank_by_recorded_rewards,
                          rank_check_plot, rank_check_rows, rank_report, sample_architectures)
from enas.runlock import locks_run_dir, run_dir_lock
from enas.tb import open_writer
from enas.user_code import CUSTOM, check_user_code
from enas.utils import UserError, seed_everything

log = logging.getLogger(__name__)


def _name_again(config: dict) -> str:
    """The `space.target=` / `data.target=` arguments a later command needs for a custom space/data."""
    return "".join(f" {s}.target={config[s]['target']}" for s in ("space", "data")
                   if config[s].get("name") == CUSTOM and config[s].get("target"))


def user_targets(cfg: dict) -> dict:
    """The `space.target` / `data.target` a derive/export/rank-check command line names (None: not named)."""
    return {section: (cfg.get(section) or {}).get("target") for section in ("space", "data")}


# --- several processes ------------------------------------------------------------------------------
@contextlib.contextmanager
def _processes(device_name: str, run_dir: str):
    """(dist, device, run_dir) of this process for the block; rank 0 alone holds the run dir's lock.

    Under torchrun (or a submitit job of several tasks) every rank runs the command; one process
    gets `SINGLE` and the lock, as before (enas.distributed).
    """
    dist, device = init_from_env(device_name)
    try:
        run_dir = _agreed_run_dir(dist, run_dir)
        with run_dir_lock(run_dir) if dist.is_main else contextlib.nullcontext():
            yield dist, device, run_dir
    finally:
        dist.close()


def _agreed_run_dir(dist, run_dir: str) -> str:
    """Rank 0's run directory, on every rank.

    Hydra's default run dir carries the start time (${now:...}) and the ranks may start a
    second apart; a rank whose own directory differs removes it when it holds nothing but the
    `.hydra/` that Hydra wrote there a moment ago.
    """
    main_dir = dist.broadcast_object(run_dir)
    if os.path.abspath(main_dir) != os.path.abspath(run_dir) and os.path.isdir(run_dir):
        if set(os.listdir(run_dir)) <= {".hydra"}:
            shutil.rmtree(run_dir, ignore_errors=True)
    return main_dir


# --- search -----------------------------------------------------------------------------------------
def run_search(config: dict, run_dir: str, overrides: list[str] | tuple = (), hints: bool = True,
               user_space=None, user_data=None) -> dict:
    """Search into `run_dir` (resume its checkpoint when config["resume"]); the last epoch summary.

    `overrides`: the command line that composed `config` (kept in the checkpoint, so enas-derive
    can print the matching enas-train command); `hints`: print what to run next.
    Under torchrun (several processes) every rank trains the shared weights on its shard of
    each batch; rank 0 alone locks and writes the run directory (enas.distributed).
    """
    with _processes(config.get("device", "auto"), run_dir) as (dist, device, run_dir):
        return _search(config, run_dir, overrides, hints, user_space, user_data, dist, device)


def check_resume(checkpoint: str, resume: bool) -> None:
    """A new run never overwrites a checkpoint; `resume=true` needs one."""
    if checkpoint_exists(checkpoint) and not resume:
        raise UserError(f"{checkpoint} exists: continue it with resume=true, or choose another hydra.run.dir")
    if resume and not checkpoint_exists(checkpoint):
        raise UserError(f"resume=true, but {checkpoint} does not exist (check hydra.run.dir)")


@contextlib.contextmanager
def interruption_hint(checkpoint: str, run_dir: str, command: str):
    """On Ctrl-C: log what is kept and the command line that continues, then let it go up
    (the error wrapper turns it into one line and exit status 130)."""
    try:
        yield
    except KeyboardInterrupt:
        if checkpoint_exists(checkpoint):
            log.info(f"interrupted: the last checkpoint {checkpoint} is kept; continue with the same {command} "
                     f"command line plus resume=true hydra.run.dir={run_dir}")
        else:
            log.info(f"interrupted before the first checkpoint of {run_dir}: nothing to resume; run the "
                     f"{command} command again")
        raise


def _search(config: dict, run_dir: str, overrides, hints: bool, user_space, user_data, dist, device) -> dict:
    device, threads = start_process(config, device)
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    main = dist.is_main                   # the one process that reads and writes the run dir
    if main:
        check_resume(checkpoint, config["resume"])
    with run_log(os.path.join(run_dir, "search.log")) if main else contextlib.nullcontext():
        writer = open_writer(run_dir) if main else None
        loop = build_search(config, run_dir, device, writer, user_space=user_space, user_data=user_data, dist=dist)
        loop.metadata["overrides"] = list(overrides)
        try:
            if config["resume"]:
                _resume(loop, checkpoint, device, dist)
                if loop.epoch >= loop.s.epochs:
                    log.info(f"{run_dir}: the search is finished ({loop.epoch}/{loop.s.epochs} epochs); extend it "
                             f"with resume=true search.epochs=<more than {loop.s.epochs}>, or derive it: "
                             f"enas-derive run_dir={run_dir}")
                    return dict(loop.history[-1]) if loop.history else {}
            shared = (f"{sum(p.numel() for p in loop.supernet.parameters()):,} shared parameters"
                      if loop.supernet is not None else "no supernet")
            log.info(f"search: space {loop.space.name}, strategy {loop.strategy.name}, evaluator "
                     f"{loop.evaluator.name}, {shared}, device {device}, {threads} CPU threads")
            log.info(f"run dir: {run_dir}")
            with interruption_hint(checkpoint, run_dir, "enas-search") if main else contextlib.nullcontext():
                summary = loop.run()
        finally:
            if writer is not None:
                writer.close()
            loop.evaluator.close()      # worker processes of standalone evaluators
        log.info(f"done in {format_duration(summary['search_seconds'])}. checkpoint: {loop.checkpoint_path}")
        if hints:
            log.info(f"TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'tb')}")
            log.info(f"next: enas-derive run_dir={run_dir}{_name_again(config)}")
    return summary


def _resume(loop, checkpoint: str, device, dist) -> None:
    """Load the run's checkpoint into `loop`, refusing one written by another space or size.

    Several processes: rank 0 (holding the lock) reads it and sends it to the others, so every
    rank continues from the same file whatever the fallback chose."""
    state = dist.broadcast_object(load_latest_checkpoint(checkpoint, map_location=device, set_aside=True,
                                                         kind="search") if dist.is_main else None)
    check_compatible(checkpoint, state, {"space": loop.space.name, "structure": loop.space.structure(),
                                         "sizes": loop.metadata["sizes"], "strategy_name": loop.strategy.name})
    overrides = loop.metadata["overrides"]
    loop.load_state_dict(state)
    loop.metadata["overrides"] = state.get("overrides") or overrides
    log.info(f"resumed {checkpoint} at epoch {loop.epoch + 1}, step {loop.global_step}")


# --- derive -----------------------------------------------------------------------------------------
@locks_run_dir(lambda cfg, *args, **kwargs: cfg["run_dir"], create=False)
def run_derive(cfg: dict, user_space=None, user_data=None) -> dict:
    """Rank the candidates of the search in cfg["run_dir"]; the arch.json content it wrote."""
    run_dir = cfg["run_dir"]
    device, _ = start_process(cfg)
    with run_log(os.path.join(run_dir, "derive.log")):
        loop = restore_search(run_dir, device, user_targets(cfg), user_space, user_data)
        searched = {**DERIVE_ADDED, **loop.metadata["config"]["derive"]}    # older runs lack the added keys
        options = {k: cfg[k] if cfg.get(k) is not None else searched[k]
                   for k in ("num_samples", "valid_batches", "seed", *DERIVE_ADDED)}
        check_derive_options(options)
        if loop.supernet is not None:
            options["valid_batches"] = clamp_batches("derive.valid_batches", options["valid_batches"],
                                                     loop.task.num_batches("valid"))
        seed_everything(options["seed"])
        eta = Eta(1)
        ranked, options["scored_by"] = _rank(loop, options, cfg["device"], device)
        if options["finalists"]:
            ranked, options["scored_by"] = _final_round(loop, ranked, options, cfg["device"], device)
        data = _write_arch(loop, ranked, options, run_dir, cfg["top"], cfg.get("hints", True))
        log.info(f"derive done: {eta.text()}")
    return data


#: Derive options added after the first release, with their values for a search that predates them.
DERIVE_ADDED = {"estimator": "search", "steps": None, "lr": None, "workers": None, "recalibrate_bn": None,
                "rank_by": "score", "finalists": 0, "finalist_epochs": 1}
#: What derive.estimator may name: the search's own estimator, or one of the supernet's.
DERIVE_ESTIMATORS = ("search", "one_shot", "inherit")
#: What derive.rank_by and rank_check.estimator.rank_by may name: the estimator's score (the search's
#: reward), or the validation loss.
RANK_BY = ("score", "loss")


def _rank(loop, options: dict, device_option: str, device) -> tuple[list, str]:
    """(architecture, metrics, score) of every candidate, best first (by score, or by validation
    loss with rank_by=loss); and how they were scored."""
    ranked, text = _scored_candidates(loop, options, device_option, device)
    if options["rank_by"] == "score":
        return ranked, text
    lacking = [arch for arch, metrics, score in ranked if "loss" not in metrics and not np.isnan(score)]
    if lacking:
        raise UserError(f"derive.rank_by=loss: {len(lacking)} of {len(ranked)} candidates have no validation loss "
                        f"(ranked by {text}); use derive.rank_by=score")
    log.info("derive: candidates ranked by their validation loss, lowest first (derive.rank_by=loss)")
    return lowest_loss_first(ranked), text + ", ranked by the validation loss (lowest first)"


def check_derive_options(options: dict) -> None:
    """A known derive.rank_by, derive.finalists >= 0 and derive.finalist_epochs >= 1, or a
    UserError naming the bad value (the estimator is checked where it is resolved)."""
    if options["rank_by"] not in RANK_BY:
        raise UserError(f"derive.rank_by={options['rank_by']!r}: choose one of {', '.join(RANK_BY)}")
    if options["finalists"] < 0:
        raise UserError(f"derive.finalists={options['finalists']}: the number of best candidates trained from "
                        f"scratch before the pick, >= 0 (0: none)")
    if options["finalist_epochs"] < 1:
        raise UserError(f"derive.finalist_epochs={options['finalist_epochs']}: each finalist trains at least "
                        f"1 epoch of the trainer recipe")


def _final_round(loop, ranked: list, options: dict, device_option: str, device) -> tuple[list, str]:
    """The first derive.finalists candidates of `ranked` trained from scratch (the standalone
    evaluator: derive.finalist_epochs passes of the trainer recipe, BN recalibrated as in the first
    round, scored on derive's validation subset) and ranked again by score or loss (rank_by); the
    other candidates follow in their first-round order. A short training from scratch ranks
    differently from the shared weights (experiments/search_quality section 2c); here it only
    chooses among the few candidates the cheap first round put on top.
    Each finalist's metrics keep its first-round score as `first_round_score`."""
    k, epochs = min(options["finalists"], len(ranked)), options["finalist_epochs"]
    config = {**loop.metadata["config"], "device": device_option}
    evaluator_options = {"epochs": epochs, "steps_per_epoch": None, "valid_batches": options["valid_batches"],
                         "workers": options["workers"] or 2, "mode": "sync", "failure_reward": float("nan"),
                         "seed": options["seed"], "journal": None, "recalibrate_bn": options["recalibrate_bn"] or 0}
    recalibrated = evaluator_options["recalibrate_bn"]
    text = (f"; then the first {k} trained from scratch for {epochs} epoch{'s' if epochs > 1 else ''} of the "
            f"trainer recipe (standalone"
            + (f", BN statistics re-estimated on {recalibrated} training batches" if recalibrated else "")
            + f") and ranked again by their {'validation loss' if options['rank_by'] == 'loss' else 'score'}")
    log.info(f"derive: final round: the first {k} candidates, each trained from scratch for {epochs} "
             f"epoch{'s' if epochs > 1 else ''} (derive.finalists={options['finalists']})")
    finalists = [arch for arch, _, _ in ranked[:k]]
    scored = trained_scores(config, loop, "standalone", finalists, evaluator_options, device)
    entries = _trained_entries(loop, finalists, scored, "finalist", f"derive.finalists={options['finalists']}")
    rescored = [(arch, {**metrics, "first_round_score": first}, score)
                for (arch, metrics, score), (_, _, first) in zip(entries, ranked[:k])]
    rescored = (lowest_loss_first if options["rank_by"] == "loss" else best_first)(rescored)
    log.info("derive: finalists\n" + format_table(loop.space, rescored, loop.task.metric, k))
    return rescored + ranked[k:], options["scored_by"] + text


def _scored_candidates(loop, options: dict, device_option: str, device) -> tuple[list, str]:
    """(architecture, metrics, score) of every candidate, best score first; and how they were scored."""
    name = derive_estimator(loop, options["estimator"])
    if name == "recorded":
        # Standalone evaluation: no shared weights to score with; rank by the rewards the
        # children earned when they were trained during the search.
        ranked = rank_by_recorded_rewards(loop.strategy, options["num_samples"], loop.task)
        text = f"their standalone rewards in the search ({loop.evaluator.name} evaluator)"
        log.info(f"derive: {len(ranked)} best architectures seen by strategy {loop.strategy.name}, ranked by {text}")
        if not ranked:
            raise UserError(f"{loop.checkpoint_path}: the search recorded no evaluated architecture yet")
        return ranked, text
    candidates = loop.strategy.proposals(options["num_samples"])
    shown = f"the first {options['valid_batches']} validation batches"
    if name == "one_shot":
        text = f"the shared weights (one-shot) on {shown}"
        log.info(f"derive: {len(candidates)} candidates from strategy {loop.strategy.name}, each scored by {text}")
        return rank_candidates(loop.task, loop.supernet, candidates, options["valid_batches"], progress=True), text
    config = {**loop.metadata["config"], "device": device_option}
    evaluator_options = derive_inherit_options(config, options)
    lr = evaluator_options["lr"] if evaluator_options["lr"] is not None else config["trainer"]["optim"]["lr"]
    steps = evaluator_options["steps_per_epoch"]
    recalibrated = evaluator_options["recalibrate_bn"]
    text = (f"{f'{steps} training steps' if steps else 'a pass over the training data'} from the supernet's "
            f"weights (inherit; lr {lr:g}, {config['trainer']['optim'].get('schedule', 'constant')}), then "
            + (f"BN statistics re-estimated on {recalibrated} training batches, then " if recalibrated else "") + shown)
    log.info(f"derive: {len(candidates)} candidates from strategy {loop.strategy.name}, each scored by {text}")
    scored = trained_scores(config, loop, "inherit", candidates, evaluator_options, device)
    return best_first(_trained_entries(loop, candidates, scored, "candidate", "derive.estimator=inherit")), text


def _trained_entries(loop, archs: list, scored: list[tuple[float, dict | None]], what: str, option: str) -> list:
    """(architecture, metrics, score) of each trained architecture, in order; a failed training
    scores nan with a nan metric; a UserError when every training failed (`what` names them,
    `option` the setting that asked for them)."""
    if not any(np.isfinite(reward) for reward, _ in scored):
        raise UserError(f"derive: the training of every {what} failed ({option}); see "
                        f"{os.path.join(os.path.dirname(loop.checkpoint_path), 'derive.log')}")
    failed = {loop.task.metric: float("nan")}
    return [(arch, metrics or failed, float(reward)) for arch, (reward, metrics) in zip(archs, scored)]


def derive_estimator(loop, asked: str) -> str:
    """What scores derive's candidates: "one_shot", "inherit" or "recorded" (the rewards the
    search recorded, for a search without a supernet); `asked` is derive.estimator."""
    if asked not in DERIVE_ESTIMATORS:
        raise UserError(f"derive.estimator={asked!r}: choose one of {', '.join(DERIVE_ESTIMATORS)} (search: the "
                        f"search's own evaluator)")
    searched = loop.evaluator.name
    if loop.supernet is None:
        if asked != "search":
            raise UserError(f"derive.estimator={asked}: the search used evaluator={searched}, which has no supernet; "
                            f"its candidates are ranked by the rewards they earned (derive.estimator=search)")
        return "recorded"
    if asked == "search":
        return "inherit" if searched == "inherit" else "one_shot"
    return asked


def derive_inherit_options(config: dict, options: dict) -> dict:
    """The inherit evaluator's options that score derive's candidates: the search's own inherit
    options where it had them, derive.steps / lr / workers / recalibrate_bn where given, derive's
    validation batches and seed; a failed child scores nan (it ranks last) and nothing is journaled."""
    searched = config["evaluator"]
    base = dict(searched.get("options") or {}) if searched["name"] == "inherit" else {}
    steps = options["steps"] if options["steps"] is not None else base.get("steps_per_epoch")
    if steps is None and not base:
        raise UserError(f"derive.estimator=inherit: give derive.steps=<training steps per candidate>; the search "
                        f"(evaluator={searched['name']}) has no inherit setting to take them from")
    if steps is not None and steps < 1:
        raise UserError(f"derive.steps={steps}: needs at least 1 training step per candidate")
    kept = {k: base[k] for k in ("epochs", "train_limit", "batch_size", "engine", "retries") if k in base}
    given = {k: options[k] if options[k] is not None else base.get(k, default)
             for k, default in (("lr", None), ("recalibrate_bn", 0))}
    return {**kept, **given, "steps_per_epoch": steps, "valid_batches": options["valid_batches"],
            "workers": options["workers"] or base.get("workers") or 2, "mode": "sync", "failure_reward": float("nan"),
            "seed": options["seed"], "journal": None}


def trained_scores(config: dict, loop, name: str, archs: list, options: dict, device) -> list[tuple[float, dict]]:
    """(validation reward, metrics or None) of each architecture after training by the `name`
    evaluator (inherit: from the supernet's weights; standalone: from scratch) with `options`,
    on the recipe of `config` (data, trainer)."""
    evaluator = build_evaluator({**config, "evaluator": {"name": name}}, loop.task, loop.space, loop.supernet,
                                loop.metadata["sizes"], None, device, options)
    try:
        return evaluator.scored(archs)
    finally:
        evaluator.close()


def _write_arch(loop, ranked: list, options: dict, run_dir: str, top: int, hints: bool) -> dict:
    """arch.json and arch.png of the best candidate; the ranked table on the console."""
    best, metrics, score = ranked[0]
    space, metric = loop.space, loop.task.metric
    search_cfg = loop.metadata["config"]
    data = space.arch_to_dict(
        best, score=score, metrics=metrics, derived_from=os.path.abspath(run_dir),
        derive=options, search_step=loop.global_step, search_data=search_cfg["data"],
        ranking=[{"score": s, metric: m[metric], **{k: m[k] for k in ("loss", "first_round_score") if k in m},
                  "choices": a.plain_choices()} for a, m, s in ranked[:top]])
    arch_path = os.path.join(run_dir, "arch.json")
    save_json(arch_path, data)
    png_path = os.path.join(run_dir, "arch.png")
    save_png(space.graph(best), png_path, title=f"{space.name}: score {score:.4f}")
    log.info(format_table(space, ranked, metric, top))
    log.info(f"best: {space.describe(best)}")
    log.info(f"wrote {arch_path} and {png_path}")
    if hints:
        command = " ".join(["enas-train", f"arch={arch_path}", *train_overrides(loop.metadata.get("overrides", []))])
        log.info(f"next: {command}")
    return data


# --- train ------------------------------------------------------------------------------------------
def run_train(cfg: dict, run_dir: str, user_space=None, user_data=None) -> dict:
    """Train cfg["arch"] from scratch into `run_dir`; the result dict (also written to result.json).

    Under torchrun (several processes) every rank trains on its shard of each batch; rank 0
    alone locks and writes the run directory (enas.distributed).
    """
    with _processes(cfg.get("device", "auto"), run_dir) as (dist, device, run_dir):
        return _train(cfg, run_dir, user_space, user_data, dist, device)


def _train(cfg: dict, run_dir: str, user_space, user_data, dist, device) -> dict:
    arch_path = arch_file(cfg["arch"])
    arch_data = load_arch_file(arch_path)
    device, threads = start_process(cfg, device)
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    main = dist.is_main                   # the one process that reads and writes the run dir
    if main:
        check_resume(checkpoint, cfg["resume"])
    eta = Eta(1)
    with run_log(os.path.join(run_dir, "train.log")) if main else contextlib.nullcontext():
        warn_if_other_data(arch_path, arch_data, cfg["data"])
        writer = open_writer(run_dir) if main else None
        try:
            space, arch, trainer = build_training(cfg, arch_data, arch_path, device, run_dir, writer,
                                                  user_space=user_space, user_data=user_data, dist=dist)
            if cfg["resume"]:                 # rank 0 reads the file (and its fallbacks) for every rank
                state = dist.broadcast_object(load_latest_checkpoint(
                    checkpoint, map_location=device, set_aside=True, kind="train") if main else None)
                check_compatible(checkpoint, state, {"space": space.name, "structure": space.structure(),
                                                     "sizes": trainer.metadata["sizes"],
                                                     "arch": trainer.metadata["arch"]})
                trainer.load_state_dict(state)
                log.info(f"resumed {checkpoint} at epoch {trainer.epoch + 1}")
            params = sum(p.numel() for p in trainer.model.parameters())
            log.info(f"train: {space.name} {space.describe(arch)[:120]}")
            log.info(f"{params:,} parameters, device {device}, {threads} CPU threads, run dir {run_dir}")
            with interruption_hint(checkpoint, run_dir, "enas-train") if main else contextlib.nullcontext():
                trainer.run()
            valid = _timed("valid", lambda: trainer.evaluate("valid"), trainer.task)
            test = _timed("test", trainer.test, trainer.task)
        finally:
            if writer is not None:
                writer.close()
        result = {"arch": os.path.abspath(arch_path), "epochs": trainer.epoch, "params": params,
                  "valid": valid, "test": test}
        if main:
            save_json(os.path.join(run_dir, "result.json"), result)
        log.info(f"final: valid {perplexity_or_accuracy(trainer.task, valid)}  "
                 f"test {perplexity_or_accuracy(trainer.task, test)}")
        log.info(f"wrote {os.path.join(run_dir, 'result.json')}; TensorBoard: tensorboard --logdir "
                 f"{os.path.join(run_dir, 'tb')} ({eta.text()})")
        target = f" space.target={cfg['space']['target']}" if cfg["space"]["name"] == CUSTOM else ""
        log.info(f"take the model away: enas-export run_dir={run_dir}{target}")
    return result


def arch_file(path: str) -> str:
    """The arch.json to train: `path` itself, or `<path>/arch.json` when `path` is a run directory."""
    if os.path.isdir(path):
        inside = os.path.join(path, "arch.json")
        if not os.path.isfile(inside):
            raise UserError(f"arch={path} is a directory without arch.json (run enas-derive run_dir={path} first)")
        return inside
    return path


def warn_if_other_data(arch_path: str, arch_data: dict, data: dict) -> None:
    """Warn when the architecture was searched on other data than this training uses."""
    searched = arch_data.get("search_data")
    if not isinstance(searched, dict):
        return
    differ = [key for key in ("name", "path") if searched.get(key) != data.get(key)]
    if differ:
        what = ", ".join(f"data.{k}={data.get(k)!r} (search: {searched.get(k)!r})" for k in differ)
        log.warning(f"{arch_path} was searched on other data than this training uses: {what}; "
                    f"give the search's data settings (e.g. its experiment= and data.path=)")


def _timed(split: str, evaluate, task) -> dict:
    """The final evaluation of one split, with a line before (it can take minutes) and after."""
    log.info(f"evaluating the {split} split ({task.num_batches(split)} batches) ...")
    eta = Eta(1)
    metrics = evaluate()
    log.info(f"{split} done ({eta.text()})")
    return metrics


# --- export -----------------------------------------------------------------------------------------
@locks_run_dir(lambda cfg, *args, **kwargs: cfg["run_dir"], create=False)
def run_export(cfg: dict, user_space=None) -> dict:
    """Export the trained network of the enas-train run in cfg["run_dir"]; the export summary.

    Writes <out_dir>/state_dict.pt + arch.json (for enas.load_model) and model.pt2 (torch.export,
    when the network can be traced); out_dir defaults to <run_dir>/export.
    """
    from enas.deploy import export_network
    run_dir = cfg["run_dir"]
    out_dir = cfg.get("out_dir") or os.path.join(run_dir, "export")
    start_process({**cfg, "device": "cpu"})        # the export traces on the CPU; threads as configured
    with run_log(os.path.join(run_dir, "export.log")):
        path = os.path.join(run_dir, "checkpoint.pt")
        state = load_latest_checkpoint(path, map_location="cpu", kind="train")
        config = check_user_code(state["config"], user_targets(cfg), path, {"space": user_space}, sections=("space",))
        sizes = state["sizes"]
        space, arch = build_arch_space(config["space"], state["arch"], path, sizes, user_space)
        network = space.build_network(arch, **sizes)
        network.load_state_dict(state["model"])
        summary = export_network(network, space, arch, sizes, out_dir, seq_len=config["data"].get("bptt"))
        log.info(f"wrote {out_dir}: {', '.join(summary['files'])}")
        load = f"enas.load_model({out_dir!r}{', space=<your module class>' if config['space']['name'] == CUSTOM else ''})"
        if summary["pt2"] is None:
            log.warning(f"no model.pt2: torch.export cannot trace {space.name} ({summary['note']}); "
                        f"the state_dict path works: {load}")
            return summary
        if summary["note"]:
            log.warning(f"model.pt2: {summary['note']}")
        log.info(f"load it without enas: torch.export.load({summary['pt2']!r}).module(); with enas: {load}")
    return summary


# --- the search-quality harness: enas-rank-check, enas-beats-random ---------------------------------
def train_job(job: dict) -> dict:
    """One ground-truth training (a job of `enas.quality.ground_truth_jobs`), exactly as enas-train
    runs it (`run_train`); returns {"valid", "test", "params", "seconds", "cpu_seconds"}.

    A module-level function: the engine's worker processes run it. The log of the training is
    <run_dir>/train.log; result.json gets the times too, so a reused run reports them.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    # the worker's threads (an engine's workers share the cores) rather than the recipe's `threads`
    result = run_train({**job["config"], "threads": torch.get_num_threads()}, job["run_dir"])
    # Wall time depends on what else runs on the machine; CPU time is the cost on the worker's
    # cores. Both stay with the result.
    times = {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start}
    save_json(os.path.join(job["run_dir"], "result.json"), {**result, **times})
    return {"valid": result["valid"], "test": result["test"], "params": result["params"], **times}


@contextlib.contextmanager
def _engine(name: str, workers: int):
    """An engine of `enas.parallel` (process | ray | inline) for the block; its workers end after it."""
    engine = build_engine(name, workers)
    try:
        yield engine
    finally:
        engine.shutdown()


@locks_run_dir(lambda cfg, *args, **kwargs: cfg["run_dir"], create=False)
def run_rank_check(cfg: dict, changes: dict | None = None) -> dict:
    """Does the supernet of the search in cfg["run_dir"] rank architectures as training them from
    scratch does? The report dict (also <report>.json, .md, .png in the run dir; cfg["report"],
    default rank_check).

    `changes`: nested values put into the search's config for the ground-truth trainings (the
    command line's ground_truth.overrides, parsed). Arguments are checked by the caller.
    """
    run_dir, one, truth, stats = cfg["run_dir"], cfg["one_shot"], cfg["ground_truth"], cfg["stats"]
    device, _ = start_process(cfg)
    eta = Eta(1)
    stem = os.path.join(run_dir, cfg["report"])
    with run_log(stem + ".log"):
        loop = restore_search(run_dir, device, user_targets(cfg))
        search_cfg = loop.metadata["config"]
        if loop.supernet is None:
            raise UserError(f"{loop.checkpoint_path}: the search used evaluator={search_cfg['evaluator']['name']!r}, "
                            f"which has no supernet; the rank check compares one-shot scores with training from "
                            f"scratch")
        task, space = loop.task, loop.space
        archs = sample_architectures(space, cfg["num_archs"], cfg["seed"])
        batches = one_shot_batches(task, one["valid_images"], one["valid_batches"])
        if batches is not None:
            batches = clamp_batches("one_shot.valid_batches", batches, task.num_batches("valid"))
        mode = bn_mode(loop.supernet, one["bn"])
        config = with_changes({**search_cfg, "device": cfg["device"]}, changes)
        started = time.time()
        scores, estimator, one_shot_text = _estimate(cfg, loop, config, archs, batches, mode, device)
        scoring_seconds = time.time() - started
        label = estimator_label(estimator)
        log.info(f"ground truth: {recipe_description(config)}")
        jobs = ground_truth_jobs(config, space, archs, truth["seeds"], os.path.join(run_dir, "rank_check_runs"))
        with _engine(truth["engine"], truth["workers"]) as engine:
            results = train_architectures(train_job, jobs, engine)
        split, metric = truth["split"], task.metric
        table = values_by_seed(results, truth["seeds"], len(archs), split, metric)
        ranking = _ranking(scores, estimator["rank_by"])
        report = rank_report(ranking, table, task.higher_is_better, stats["top_fraction"], stats["bootstrap"],
                             stats["level"], cfg["seed"], stats["noise_floor"], truth["average"], label)
        cost = cost_summary(results)
        report.update(
            num_archs=len(archs), metric=metric, higher_is_better=task.higher_is_better,
            rows=rank_check_rows(space, archs, scores, table, metric), run_dir=os.path.abspath(run_dir),
            seed=cfg["seed"], search_step=loop.global_step, stats=stats,
            one_shot={**one, "batches": batches, "bn_mode": mode, "description": one_shot_text,
                      "seconds": scoring_seconds},
            estimator={**estimator, "label": label},
            ground_truth={**truth, "cost": cost,
                          "description": f"{split} {metric} after training from scratch with seeds "
                          f"{truth['seeds']}: {recipe_description(config)}; {format_cost(cost)}"})
        title = f"Rank check: {space.name}, search step {loop.global_step}"
        write_text(stem + ".md", format_rank_report(report, title, cfg["report"] + ".png"))
        save_json(stem + ".json", report)
        image = rank_check_plot(report)
        save_image(image, stem + ".png")
        log_image(run_dir, f"quality/{cfg['report']}", image, loop.global_step)
        log.info("\n" + format_rank_report(report, title))
        log.info(f"wrote {stem}.json, .md and .png ({eta.text()})")
    return report


def _estimate(cfg: dict, loop, config: dict, archs: list, batches: int | None, mode: str,
              device) -> tuple[list[tuple[float, dict]], dict, str]:
    """(score and metrics per architecture, the estimator as run, its description) of a rank check:
    the shared weights as they are, or a few training steps (cfg["estimator"])."""
    estimator, one = cfg["estimator"], cfg["one_shot"]
    shown = "the whole validation split" if batches is None else f"the first {batches} validation batches"
    if estimator["name"] == "one_shot":
        text = f"one-shot (the shared weights as they are), {shown}, eval mode, BatchNorm: {mode}"
        log.info(f"rank check: {len(archs)} architectures scored {text}")
        return one_shot_scores(loop.task, loop.supernet, archs, batches, mode, one["bn_batches"]), estimator, text
    estimator = {**estimator, "steps": _one_pass(estimator["steps"], config, loop.task)}
    text = f"{estimator_description(estimator, config)}, scored on {shown}, eval mode"
    log.info(f"rank check: {len(archs)} architectures scored by {text}")
    return _trained_estimates(estimator, config, loop, archs, batches, cfg["ground_truth"], device), estimator, text


def _ranking(scores: Sequence[tuple[float, dict]], rank_by: str) -> list[float]:
    """What orders a rank check's architectures, higher first: the estimator's scores, or (rank_by=loss)
    their negated validation losses; a failed estimate stays nan."""
    if rank_by == "score":
        return [score for score, _ in scores]
    lacking = sum("loss" not in (metrics or {}) and not math.isnan(score) for score, metrics in scores)
    if lacking:
        raise UserError(f"estimator.rank_by=loss: {lacking} of {len(scores)} estimates have no validation loss; "
                        f"use estimator.rank_by=score")
    return [-metrics["loss"] if "loss" in (metrics or {}) else math.nan for _, metrics in scores]


def estimator_label(estimator: dict) -> str:
    """A short name of a rank check's estimator: "one-shot", "inherit, 78 steps", "standalone, 78 steps",
    "inherit, 20 steps, mean of 2", "one-shot, ranked by loss"."""
    by_loss = ", ranked by loss" if estimator.get("rank_by", "score") == "loss" else ""
    if estimator["name"] == "one_shot":
        return "one-shot" + by_loss
    repeats, recalibrated = estimator.get("repeats", 1), estimator.get("recalibrate_bn", 0)
    return (f"{estimator['name']}, {estimator['steps']} steps" + (", BN recalibrated" if recalibrated else "")
            + (f", mean of {repeats}" if repeats > 1 else "") + by_loss)


def estimator_description(estimator: dict, config: dict) -> str:
    """What a trained estimator does, in words (the ground truth's recipe names the rest)."""
    start = "the supernet's weights" if estimator["name"] == "inherit" else "a fresh initialisation"
    lr = config["trainer"]["optim"]["lr"] if estimator["lr"] is None else estimator["lr"]
    repeats, recalibrated = estimator.get("repeats", 1), estimator.get("recalibrate_bn", 0)
    return (f"{estimator['name']}: {start}, then {estimator['steps']} training steps of the ground-truth recipe "
            f"(lr {lr:g}, {config['trainer']['optim'].get('schedule', 'constant')})"
            + (f", BN statistics re-estimated on {recalibrated} training batches" if recalibrated else "")
            + (f", the mean of {repeats} such trainings with other seeds" if repeats > 1 else ""))


def _one_pass(steps: int, config: dict, task) -> int:
    """`steps`, or one pass over the training data when that is shorter (a child trains one epoch).
    The pass is the search task's, which the children share unless the recipe's trainer sets
    another batch size (then the child cuts `steps` itself, without this warning)."""
    batch = config["trainer"].get("batch_size")
    if batch and batch != config["data"].get("batch_size"):
        return steps
    if steps > task.num_train_batches:
        log.warning(f"estimator.steps={steps}: one pass over the training data is {task.num_train_batches} "
                    f"batches; each architecture trains {task.num_train_batches} steps")
        return task.num_train_batches
    return steps


def _trained_estimates(estimator: dict, config: dict, loop, archs: list, batches: int | None, truth: dict,
                       device) -> list[tuple[float, dict]]:
    """(validation score, validation metrics) of each architecture after `estimator["steps"]`
    training steps, starting from the supernet's weights (inherit) or from scratch (standalone):
    the search evaluators of the same names, with the ground-truth recipe's data and trainer; a
    failed child scores nan (and has no metrics).
    With `repeats` k > 1 the score and each metric are the means of k trainings seeded search
    seed + 0 .. k-1 (the children's batch order and initialisation differ; nan when one of them failed)."""
    by_repeat = []
    for repeat in range(estimator.get("repeats", 1)):
        options = {"epochs": 1, "steps_per_epoch": estimator["steps"], "lr": estimator["lr"], "valid_batches": batches,
                   "workers": truth["workers"], "engine": truth["engine"], "failure_reward": float("nan"),
                   "seed": config["seed"] + repeat, "journal": None,
                   "recalibrate_bn": estimator.get("recalibrate_bn", 0)}
        repeat_config = reseeded(config, config["seed"] + repeat)
        by_repeat.append(trained_scores(repeat_config, loop, estimator["name"], archs, options, device))
    return [_mean_estimate(trainings) for trainings in zip(*by_repeat)]


def _mean_estimate(trainings: Sequence[tuple[float, dict | None]]) -> tuple[float, dict]:
    """(mean reward, mean of each metric) of one architecture's repeated trainings; the metrics
    only when every training has them."""
    metrics = [m for _, m in trainings if m]
    keys = set.intersection(*(set(m) for m in metrics)) if len(metrics) == len(trainings) else set()
    return (float(np.mean([reward for reward, _ in trainings])),
            {k: float(np.mean([m[k] for m in metrics])) for k in sorted(keys)})


def reseeded(config: dict, seed: int) -> dict:
    """`config` with another run seed and the same data split.

    A child's batch order comes from its recipe's data seed (the run seed; `child_recipe`), not
    from the child's own seed, so children of one recipe train on the same batches (an inherited
    child then trains identically whatever its seed). A training repeated to average out that
    noise needs another data seed; an image split drawn from the run seed (`split_seed: null`)
    is pinned to the old seed so every repeat holds out the same images."""
    data = dict(config["data"])
    if "split_seed" in data and data["split_seed"] is None:
        data["split_seed"] = config["seed"]
    return {**config, "seed": seed, "data": data}


def run_beats_random(options: dict, config: dict, out_dir: str, overrides: list[str], search_runs) -> dict:
    """Does the searched architecture beat architectures drawn at random? The report dict (also
    beats_random.{md,csv,json,png} in `out_dir`).

    options: the enas-beats-random options (checked by the caller); config: the plain search
    config whose `space` and `trainer` recipe every network is built and trained with, composed
    from `overrides` (the command line's, forwarded to every search run);
    search_runs(): runs enas-compare's search + derive + train for every strategy and seed
    (the command line composes each run's config) and returns its rows, each with the path of
    its derived "arch" file.
    """
    with (run_dir_lock(out_dir), run_log(os.path.join(out_dir, "beats_random.log")),
          _engine(options["engine"], options["workers"]) as engine):      # one pool for all the trainings
        eta = Eta(1)
        random_results, num = _train_random_pool(config, options, out_dir, engine)
        metric = metric_of(random_results, options["split"])
        table = values_by_seed(random_results, options["train_seeds"], num, options["split"], metric)
        rows = search_runs() if options["seeds"] else []
        derived = _train_derived(config, rows, options, out_dir, metric, engine)
        report = beats_random_report(derived, table, options["train_seeds"], metric, higher_is_better=metric != "ppl",
                                     average=options["average"])
        report["random"]["cost"] = cost_summary(random_results)
        report.update(split=options["split"], recipe=recipe_description(config), overrides=list(overrides),
                      random_seed=options["random_seed"])
        _write_beats_random(report, random_results, out_dir, f"Beats random: {' '.join(overrides) or 'defaults'}")
        log.info(f"beats random done ({eta.text()})")
    return report


def _train_random_pool(config: dict, options: dict, out_dir: str, engine) -> tuple[list[dict], int]:
    """Train the uniformly drawn architectures once per train seed; (results, number of architectures)."""
    space = build_space(config["space"])
    archs = sample_architectures(space, options["num_random"], options["random_seed"])
    log.info(f"random pool: {len(archs)} architectures x seeds {options['train_seeds']}, recipe: "
             f"{recipe_description(config)}")
    jobs = ground_truth_jobs(config, space, archs, options["train_seeds"], os.path.join(out_dir, "random"))
    return train_architectures(train_job, jobs, engine), len(archs)


def _train_derived(config: dict, rows: list[dict], options: dict, out_dir: str, metric: str, engine) -> list[dict]:
    """Each derived architecture trained as one pool measurement is (its first `average` seeds),
    into <out_dir>/derived/<strategy>-seed<n>/; the entries of the beats-random report."""
    space, split = build_space(config["space"]), options["split"]
    seeds = options["train_seeds"][:options["average"]]
    jobs, owner = [], []
    for k, row in enumerate(rows):
        if row["status"] != "ok":
            continue
        arch = space.arch_from_dict(load_arch_file(row["arch"]), source=row["arch"])
        where = os.path.join(out_dir, "derived", f"{row['strategy']}-seed{row['seed']}")
        new = ground_truth_jobs(config, space, [arch], seeds, where)
        jobs, owner = jobs + new, owner + [k] * len(new)
    results = train_architectures(train_job, jobs, engine) if jobs else []
    entries = []
    for k, row in enumerate(rows):
        mine = [r for r, o in zip(results, owner) if o == k]
        failed = [r["error"] for r in mine if "error" in r]
        value = float(np.mean([r[split][metric] for r in mine])) if mine and not failed else None
        entries.append({"strategy": row["strategy"], "seed": row["seed"], "error": row["error"] or
                        (failed[0] if failed else None), "status": "ok" if value is not None else "failed",
                        "value": value, "train_seeds": seeds if mine else [],
                        "seconds": sum(r.get("seconds") or 0 for r in mine) or None,
                        "run_dir": os.path.dirname(mine[0]["run_dir"]) if mine else None})
    return entries


def _write_beats_random(report: dict, random_results: list[dict], out_dir: str, title: str) -> None:
    """beats_random.{md,csv,json,png} in out_dir, the plot also in TensorBoard; the report logged."""
    split = report["split"]
    write_text(os.path.join(out_dir, "beats_random.md"), format_beats_random(report, title, report["recipe"]))
    write_text(os.path.join(out_dir, "beats_random.csv"), beats_random_csv(report, random_results, split))
    save_json(os.path.join(out_dir, "beats_random.json"), report)
    image = beats_random_plot(report, split)
    save_image(image, os.path.join(out_dir, "beats_random.png"))
    log_image(out_dir, "quality/beats_random", image)
    log.info("\n" + format_beats_random(report, title))
    log.info(f"wrote {out_dir}/beats_random.md, .csv, .json, .png")
