"""The runs behind the commands: search, derive, train, export, each from a plain config dict.

The console scripts (enas/cli/) resolve their Hydra config and call these; so does the Python
API (enas/api.py), which composes the same config tree, so both write the same run directory:
checkpoint.pt, <command>.log, TensorBoard events under tb/, arch.json/arch.png, result.json,
export/. `user_space` / `user_data` are the Python API's objects for space=custom / data=custom
(the command lines name their code by `target` instead).
"""

from __future__ import annotations

import logging
import os

from enas.arch import load_arch_file, save_json
from enas.build import build_arch_space, build_search, build_training, restore_search
from enas.checkpoint import check_compatible, load_checkpoint
from enas.derive import format_table, rank_candidates
from enas.draw import save_png
from enas.final import perplexity_or_accuracy
from enas.logs import run_log
from enas.ranking import rank_by_recorded_rewards
from enas.tb import open_writer
from enas.user_code import CUSTOM, check_user_code
from enas.utils import UserError, pick_device, seed_everything

log = logging.getLogger(__name__)


def _name_again(config: dict) -> str:
    """The `space.target=` / `data.target=` arguments a later command needs for a custom space/data."""
    return "".join(f" {s}.target={config[s]['target']}" for s in ("space", "data")
                   if config[s].get("name") == CUSTOM and config[s].get("target"))


def user_targets(cfg: dict) -> dict:
    """The `space.target` / `data.target` a derive/export/rank-check command line names (None: not named)."""
    return {section: (cfg.get(section) or {}).get("target") for section in ("space", "data")}


# --- search -----------------------------------------------------------------------------------------
def run_search(config: dict, run_dir: str, user_space=None, user_data=None) -> dict:
    """Search into `run_dir` (resume its checkpoint when config["resume"]); the last epoch summary."""
    device = pick_device(config["device"])
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    if os.path.exists(checkpoint) and not config["resume"]:
        raise UserError(f"{checkpoint} exists: continue it with resume=true, or choose another hydra.run.dir")
    with run_log(os.path.join(run_dir, "search.log")):
        writer = open_writer(run_dir)
        loop = build_search(config, run_dir, device, writer, user_space=user_space, user_data=user_data)
        try:
            if config["resume"]:
                state = load_checkpoint(checkpoint, map_location=device, kind="search")
                check_compatible(checkpoint, state, {"space": loop.space.name, "structure": loop.space.structure(),
                                                     "sizes": loop.metadata["sizes"],
                                                     "strategy_name": loop.strategy.name})
                loop.load_state_dict(state)
                log.info(f"resumed {checkpoint} at epoch {loop.epoch + 1}, step {loop.global_step}")
            shared = (f"{sum(p.numel() for p in loop.supernet.parameters()):,} shared parameters"
                      if loop.supernet is not None else "no supernet")
            log.info(f"search: space {loop.space.name}, strategy {loop.strategy.name}, evaluator "
                     f"{loop.evaluator.name}, {shared}, device {device}")
            log.info(f"run dir: {run_dir}")
            summary = loop.run()
        finally:
            writer.close()
            loop.evaluator.close()      # worker processes of standalone evaluators
        log.info(f"done. checkpoint: {loop.checkpoint_path}")
        log.info(f"TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'tb')}")
        log.info(f"next: enas-derive run_dir={run_dir}{_name_again(config)}")
    return summary


# --- derive -----------------------------------------------------------------------------------------
def run_derive(cfg: dict, user_space=None, user_data=None) -> dict:
    """Rank the candidates of the search in cfg["run_dir"]; the arch.json content it wrote."""
    run_dir = cfg["run_dir"]
    device = pick_device(cfg["device"])
    with run_log(os.path.join(run_dir, "derive.log")):
        loop = restore_search(run_dir, device, user_targets(cfg), user_space, user_data)
        search_cfg = loop.metadata["config"]
        options = {k: cfg[k] if cfg[k] is not None else search_cfg["derive"][k]
                   for k in ("num_samples", "valid_batches", "seed")}
        seed_everything(options["seed"])
        ranked = _rank(loop, options)
        data = _write_arch(loop, ranked, options, run_dir, cfg["top"])
    return data


def _rank(loop, options: dict) -> list:
    """(architecture, metrics, score) of every candidate, best first."""
    if loop.supernet is None:
        # Standalone evaluation: no shared weights to score with; rank by the rewards the
        # children earned when they were trained during the search.
        ranked = rank_by_recorded_rewards(loop.strategy, options["num_samples"], loop.task)
        log.info(f"derive: {len(ranked)} best architectures seen by strategy {loop.strategy.name}, ranked by "
                 f"their standalone rewards ({loop.evaluator.name} evaluator)")
        if not ranked:
            raise UserError(f"{loop.checkpoint_path}: the search recorded no evaluated architecture yet")
        return ranked
    candidates = loop.strategy.proposals(options["num_samples"])
    log.info(f"derive: {len(candidates)} candidates from strategy {loop.strategy.name}, each scored on the "
             f"first {options['valid_batches']} validation batches")
    return rank_candidates(loop.task, loop.supernet, candidates, options["valid_batches"], progress=True)


def _write_arch(loop, ranked: list, options: dict, run_dir: str, top: int) -> dict:
    """arch.json and arch.png of the best candidate; the ranked table on the console."""
    best, metrics, score = ranked[0]
    space, metric = loop.space, loop.task.metric
    data = space.arch_to_dict(
        best, score=score, metrics=metrics, derived_from=os.path.abspath(run_dir),
        derive=options, search_step=loop.global_step,
        ranking=[{"score": s, metric: m[metric], "choices": a.plain_choices()} for a, m, s in ranked[:top]])
    arch_path = os.path.join(run_dir, "arch.json")
    save_json(arch_path, data)
    png_path = os.path.join(run_dir, "arch.png")
    save_png(space.graph(best), png_path, title=f"{space.name}: score {score:.4f}")
    log.info(format_table(space, ranked, metric, top))
    log.info(f"best: {space.describe(best)}")
    log.info(f"wrote {arch_path} and {png_path}")
    log.info(f"next: enas-train arch={arch_path} experiment=<the search's experiment>")
    return data


# --- train ------------------------------------------------------------------------------------------
def run_train(cfg: dict, run_dir: str, user_space=None, user_data=None) -> dict:
    """Train cfg["arch"] from scratch into `run_dir`; the result dict (also written to result.json)."""
    device = pick_device(cfg["device"])
    arch_path = cfg["arch"]
    arch_data = load_arch_file(arch_path)
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    if os.path.exists(checkpoint) and not cfg["resume"]:
        raise UserError(f"{checkpoint} exists: continue it with resume=true, or choose another hydra.run.dir")
    with run_log(os.path.join(run_dir, "train.log")):
        writer = open_writer(run_dir)
        try:
            space, arch, trainer = build_training(cfg, arch_data, arch_path, device, run_dir, writer,
                                                  user_space=user_space, user_data=user_data)
            if cfg["resume"]:
                state = load_checkpoint(checkpoint, map_location=device, kind="train")
                check_compatible(checkpoint, state, {"space": space.name, "structure": space.structure(),
                                                     "sizes": trainer.metadata["sizes"],
                                                     "arch": trainer.metadata["arch"]})
                trainer.load_state_dict(state)
                log.info(f"resumed {checkpoint} at epoch {trainer.epoch + 1}")
            params = sum(p.numel() for p in trainer.model.parameters())
            log.info(f"train: {space.name} {space.describe(arch)[:120]}")
            log.info(f"{params:,} parameters, device {device}, run dir {run_dir}")
            trainer.run()
            valid = trainer.task.evaluate(trainer.model, "valid", None, None)
            test = trainer.test()
        finally:
            writer.close()
        result = {"arch": os.path.abspath(arch_path), "epochs": trainer.epoch, "params": params,
                  "valid": valid, "test": test}
        save_json(os.path.join(run_dir, "result.json"), result)
        log.info(f"final: valid {perplexity_or_accuracy(trainer.task, valid)}  "
                 f"test {perplexity_or_accuracy(trainer.task, test)}")
        log.info(f"wrote {os.path.join(run_dir, 'result.json')}; TensorBoard: tensorboard --logdir "
                 f"{os.path.join(run_dir, 'tb')}")
        log.info(f"next: enas-export run_dir={run_dir}")
    return result


# --- export -----------------------------------------------------------------------------------------
def run_export(cfg: dict, user_space=None) -> dict:
    """Export the trained network of the enas-train run in cfg["run_dir"]; the export summary.

    Writes <out_dir>/state_dict.pt + arch.json (for enas.load_model) and model.pt2 (torch.export,
    when the network can be traced); out_dir defaults to <run_dir>/export.
    """
    from enas.deploy import export_network
    run_dir = cfg["run_dir"]
    out_dir = cfg.get("out_dir") or os.path.join(run_dir, "export")
    with run_log(os.path.join(run_dir, "export.log")):
        path = os.path.join(run_dir, "checkpoint.pt")
        state = load_checkpoint(path, map_location="cpu", kind="train")
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
