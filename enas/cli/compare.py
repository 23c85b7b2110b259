"""enas-compare: several strategies and seeds at an equal search budget, side by side.

    enas-compare experiment=smoke_micro strategies=[random,evolution,tpe,reinforce] seeds=[0,1] \
        out_dir=runs/compare/smoke search.epochs=3 trainer.epochs=1

For each (strategy, seed): search into <out_dir>/<strategy>-seed<seed>/search (the search config
composed from the same overrides, only strategy= and seed= differ), derive, train the derived
architecture into .../train. Writes <out_dir>/comparison.md and comparison.csv.

`resume=true` continues an interrupted comparison in the same out_dir: a finished run (its
row.json) is kept, the others continue their search and training checkpoints; each run's
run.json holds the overrides it was started with, and a different command line is refused.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from enas.arch import save_json
from enas.checkpoint import checkpoint_exists, load_checkpoint
from enas.cli.common import enas_main, plain, user_errors
from enas.compare import failed_row, format_csv, format_markdown, run_row
from enas.fileio import write_text
from enas.logs import Eta, run_log
from enas.runs import run_derive, run_search, run_train
from enas.utils import UserError

log = logging.getLogger(__name__)

# Keys of compare.yaml that are not forwarded to the runs; strategy/seed are set per run.
OWN_KEYS = ("strategies", "seeds", "out_dir", "overrides", "derive_top", "resume")
PER_RUN_KEYS = ("strategy", "seed")
RUN_FILE, ROW_FILE = "run.json", "row.json"     # in each run's folder: how it was started; its finished row


def override_key(override: str) -> str:
    """The config key of a command-line override ("+a.b=1" -> "a.b", "~x" -> "x")."""
    return override.split("=", 1)[0].lstrip("+~")


def forwarded_overrides(task_overrides: list[str], extra: list[str]) -> list[str]:
    """The command line's overrides that every run gets (minus compare's own keys), then `extra`."""
    kept = []
    for override in task_overrides:
        key = override_key(override)
        if key in OWN_KEYS:
            continue
        if key in PER_RUN_KEYS:
            log.info(f"note: {override} ignored: every run sets strategy= and seed= from strategies/seeds")
            continue
        kept.append(override)
    return kept + list(extra)


def check_lists(strategies, seeds) -> None:
    """Clear errors for a bad `strategies` or `seeds` value."""
    if not isinstance(strategies, list) or not strategies or not all(isinstance(s, str) for s in strategies):
        raise UserError(f"strategies={strategies!r}: give a non-empty list of strategy names, "
                        f"e.g. strategies=[random,evolution]")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in seeds):
        raise UserError(f"seeds={seeds!r}: give a non-empty list of integers, e.g. seeds=[0,1]")
    duplicates = sorted({s for s in strategies if strategies.count(s) > 1})
    if duplicates or len(set(seeds)) != len(seeds):
        raise UserError(f"strategies={strategies} seeds={seeds}: remove the duplicates")
    from enas.strategies import STRATEGIES
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise UserError(f"strategies={strategies}: unknown {', '.join(unknown)}; known: {', '.join(sorted(STRATEGIES))}")


def run_root(out_dir: str, strategy: str, seed: int) -> str:
    """The folder of one run: <out_dir>/<strategy>-seed<seed>."""
    return os.path.join(out_dir, f"{strategy}-seed{seed}")


def run_dirs(out_dir: str, strategy: str, seed: int) -> tuple[str, str]:
    """(search dir, train dir) of one run."""
    root = run_root(out_dir, strategy, seed)
    return os.path.join(root, "search"), os.path.join(root, "train")


def run_overrides(overrides: list[str], strategy: str, seed: int) -> list[str]:
    """The command line of one run: the comparison's overrides, then its strategy and seed."""
    return [*overrides, f"strategy={strategy}", f"seed={seed}"]


def check_fresh(out_dir: str, strategies: list[str], seeds: list[int]) -> None:
    """Refuse to mix with the runs of an earlier comparison in the same out_dir."""
    roots = [run_root(out_dir, s, n) for s in strategies for n in seeds]
    taken = [os.path.basename(root) for root in roots if os.path.exists(root)]
    if taken:
        raise UserError(f"out_dir={out_dir} already holds {', '.join(taken)}: continue that comparison with "
                        f"resume=true (the same command line), or choose another out_dir")


def check_out_dir(out_dir: str, strategies: list[str], seeds: list[int], overrides: list[str], resume: bool) -> None:
    """A new comparison needs an out_dir without these runs; resume=true, runs of this command line."""
    if resume:
        check_resumable(out_dir, strategies, seeds, overrides)
    else:
        check_fresh(out_dir, strategies, seeds)


def check_resumable(out_dir: str, strategies: list[str], seeds: list[int], overrides: list[str]) -> None:
    """resume=true: every run already in out_dir was started by this command line (its run.json)."""
    for strategy in strategies:
        for seed in seeds:
            root = run_root(out_dir, strategy, seed)
            if not os.path.exists(root):
                continue
            wanted = run_overrides(overrides, strategy, seed)
            started = _read_json(os.path.join(root, RUN_FILE), root).get("overrides")
            if started != wanted:
                raise UserError(f"resume=true: {root} was started with the overrides {started}, this command "
                                f"gives {wanted}; resume with the same command line, or choose another out_dir")


def _read_json(path: str, root: str) -> dict:
    """A run's bookkeeping file (a clear error naming it when it is missing or unreadable)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UserError(f"resume=true: {root} has no {os.path.basename(path)}: it was not started by "
                        f"enas-compare/enas-beats-random (or by an older version); move it away") from None
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"resume=true: cannot read {path}: {e}") from None
    if not isinstance(data, dict):
        raise UserError(f"resume=true: {path} does not hold a JSON object")
    return data


def finished_row(out_dir: str, strategy: str, seed: int) -> dict | None:
    """The row of a run that finished in an earlier invocation (its row.json), else None."""
    path = os.path.join(run_root(out_dir, strategy, seed), ROW_FILE)
    if not os.path.exists(path):
        return None
    return run_row(**_read_json(path, os.path.dirname(path)))


def compose_run_config(overrides: list[str], strategy: str, seed: int) -> DictConfig:
    """The search config of one run, as `enas-search <overrides> strategy=.. seed=..` would see it."""
    return compose(config_name="search", overrides=run_overrides(overrides, strategy, seed))


def derive_config(run_dir: str, device: str, top: int, search_config: dict | None = None) -> dict:
    """conf/derive.yaml's defaults for one search run (naming its custom space/data targets again)."""
    cfg = OmegaConf.to_container(compose(config_name="derive"), resolve=False)
    cfg.update(run_dir=run_dir, device=device, top=top, hints=False)
    for section in ("space", "data"):
        if search_config and search_config[section].get("name") == "custom":
            cfg[section] = {**cfg.get(section, {}), "target": search_config[section].get("target")}
    return cfg


def archs_scored(state: dict, search: dict) -> int:
    """Architectures scored by the theta phases done so far (every strategy gets the same budget)."""
    phases = len(state["history"]) + (1 if state["position"]["theta_done"] else 0)
    return phases * search["strategy_steps"] * search["archs_per_step"]


def best_reward(state: dict) -> float | None:
    """The loop's best one-shot reward seen (its `best_so_far`), else the strategy's best."""
    value = state.get("best_so_far")
    if value is not None and value != float("-inf"):
        return float(value)
    return float(state["best"][0]["reward"]) if state.get("best") else None


def run_one(overrides: list[str], strategy: str, seed: int, out_dir: str, derive_top: int) -> dict:
    """Search, derive and train one (strategy, seed); a row of measurements (raises on failure).

    A search or training that an earlier invocation started continues its checkpoint (a
    finished training is read back); such a row is marked `resumed`, and its times count only
    this invocation. The row is written to the run's row.json.
    """
    search_dir, train_dir = run_dirs(out_dir, strategy, seed)
    root, command = run_root(out_dir, strategy, seed), run_overrides(overrides, strategy, seed)
    measured: dict = {}
    start = time.perf_counter()
    try:
        if not os.path.exists(os.path.join(root, RUN_FILE)):
            save_json(os.path.join(root, RUN_FILE), {"overrides": command})
        config = plain(compose_run_config(overrides, strategy, seed))
        continued = checkpoint_exists(os.path.join(search_dir, "checkpoint.pt"))
        summary = run_search({**config, "resume": continued}, search_dir, command, hints=False)
        measured["search_seconds"] = summary.get("search_seconds", 0.0)  # this invocation's search, start-up excluded
        state = load_checkpoint(os.path.join(search_dir, "checkpoint.pt"))
        measured.update(best_reward=best_reward(state), archs_scored=archs_scored(state, config["search"]))
        arch = run_derive(derive_config(search_dir, config["device"], derive_top, config))
        measured["derived_score"] = float(arch["score"])
        result, trained_before = train_derived(config, search_dir, train_dir)
        continued = continued or trained_before
    except Exception as e:  # noqa: BLE001  (a failed run is recorded; the others go on)
        measured["total_seconds"] = time.perf_counter() - start
        raise RunFailed(e, measured) from e
    metric = "acc" if "acc" in result["valid"] else "ppl" if "ppl" in result["valid"] else "loss"
    row = run_row(strategy, seed, metric=metric, final_valid=result["valid"][metric], final_test=result["test"][metric],
                  total_seconds=time.perf_counter() - start, resumed=continued, **measured)
    save_json(os.path.join(root, ROW_FILE), row)
    return row


def train_derived(config: dict, search_dir: str, train_dir: str) -> tuple[dict, bool]:
    """Train the search's arch.json from scratch into train_dir: (result, whether an earlier
    invocation had started it). A finished training (result.json) is read back, an interrupted
    one continues its checkpoint."""
    result_path = os.path.join(train_dir, "result.json")
    if os.path.exists(result_path):
        log.info(f"reusing the finished training {result_path}")
        return _read_json(result_path, train_dir), True
    started = checkpoint_exists(os.path.join(train_dir, "checkpoint.pt"))
    return run_train({**config, "arch": os.path.join(search_dir, "arch.json"), "resume": started}, train_dir), started


class RunFailed(Exception):
    """One run failed; carries what was measured before the failure."""

    def __init__(self, error: Exception, measured: dict):
        super().__init__(str(error))
        self.error, self.measured = error, measured


def one_line(error: Exception) -> str:
    """An error as one line, naming its type unless it is a user-facing error."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if isinstance(error, (UserError, ValueError, FileNotFoundError)) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def run_compare(strategies: list[str], seeds: list[int], out_dir: str, overrides: list[str],
                derive_top: int = 5, resume: bool = False) -> list[dict]:
    """Every (strategy, seed) run in turn; returns the per-run rows (failed runs included).

    resume: continue the comparison already in out_dir (finished runs are kept as they are)."""
    check_lists(strategies, seeds)
    check_out_dir(out_dir, strategies, seeds, overrides, resume)
    runs = [(s, n) for s in strategies for n in seeds]
    kept = {run: finished_row(out_dir, *run) for run in runs} if resume else {}
    total, todo = len(runs), sum(1 for run in runs if kept.get(run) is None)
    rows, eta, done = [], Eta(todo), 0
    for i, (strategy, seed) in enumerate(runs, start=1):
        if kept.get((strategy, seed)) is not None:
            log.info(f"===== [{i}/{total}] strategy {strategy}, seed {seed}: finished earlier, kept =====")
            rows.append(kept[(strategy, seed)])
            continue
        log.info(f"\n===== [{i}/{total}] strategy {strategy}, seed {seed} ({eta.text()}) =====")
        try:
            rows.append(run_one(overrides, strategy, seed, out_dir, derive_top))
        except KeyboardInterrupt:
            log.info(f"interrupted in run {strategy} seed {seed}: finished runs and checkpoints are kept in "
                     f"{out_dir}; continue with the same command line plus resume=true")
            raise
        except RunFailed as failure:
            if not isinstance(failure.error, (UserError, ValueError, FileNotFoundError)):
                traceback.print_exception(failure.error, file=sys.stderr)
            row = failed_row(strategy, seed, one_line(failure.error), **failure.measured)
            log.info(f"run {strategy} seed {seed} FAILED: {row['error']}")
            rows.append(row)
        done += 1
        eta.update(done)
    log.info(f"compare: {total} runs done ({eta.text()})")
    return rows


def write_comparison(out_dir: str, rows: list[dict], title: str) -> tuple[str, str]:
    """Write comparison.md and comparison.csv into out_dir; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    md_path, csv_path = os.path.join(out_dir, "comparison.md"), os.path.join(out_dir, "comparison.csv")
    write_text(md_path, format_markdown(rows, title))
    write_text(csv_path, format_csv(rows))
    return md_path, csv_path


@enas_main("compare")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-compare`."""
    hydra_cfg = HydraConfig.get()
    out_dir = hydra_cfg.runtime.output_dir  # ${out_dir}, resolved once by Hydra
    options = plain(cfg)
    overrides = forwarded_overrides(list(hydra_cfg.overrides.task), options["overrides"])
    strategies, seeds = options["strategies"], options["seeds"]
    with run_log(os.path.join(out_dir, "compare.log")):
        log.info(f"compare: strategies {strategies}, seeds {seeds}, overrides {overrides}, out_dir {out_dir}")
        rows = run_compare(strategies, seeds, out_dir, overrides, options["derive_top"], options["resume"])
        md_path, csv_path = write_comparison(out_dir, rows,
                                             f"Strategy comparison: {' '.join(overrides) or 'defaults'}")
        log.info("\n" + format_markdown(rows, "Strategy comparison"))
        log.info(f"wrote {md_path} and {csv_path}")
        log.info(f"TensorBoard, runs side by side: tensorboard --logdir {out_dir}")
    if all(row["status"] != "ok" for row in rows):
        raise UserError(f"all {len(rows)} runs failed (see {md_path})")


if __name__ == "__main__":
    main()
