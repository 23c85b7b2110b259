"""Is a search worth anything? Ground-truth training and the beats-random protocol.

Ground truth: architectures trained from scratch with one recipe (the `enas-train` code path,
`enas.runs.train_job`, given to `train_architectures` as a module-level function), once per
training seed, on an engine of `enas.parallel` (process pool, Ray, inline). A job's config is
the plain `enas-train` config (built by the caller): this module stores it as the job's
`job.json` and sets its seed, arch file and resume flag, and reads nothing else of it. Each
training is a run directory `<out_dir>/arch<i>-<hash>/seed<s>/` holding `job.json`, the
checkpoint, TensorBoard events, `train.log` and `result.json`; a finished run is reused and an
interrupted one resumed when the harness is started again with the same config.

Beats random: the architecture a search derives, trained with the same recipe, is placed
among N uniformly drawn architectures by its percentile (scipy's `percentileofscore`, ties
counted half): 100 = better than every random one, 50 = the median. Training the random
pool with two seeds gives its noise ceiling (see `enas.ranking`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import statistics
from typing import Callable, Sequence

import numpy as np

from enas.arch import Architecture, save_json
from enas.checkpoint import checkpoint_exists
from enas.logs import Eta
from enas.ranking import (NOISE_FLOOR, ceiling_verdict, format_split_ceilings, measurements, oriented,
                          split_ceilings)

log = logging.getLogger(__name__)

#: The percentile the issue's target asks of a derived architecture.
TARGET_PERCENTILE = 80.0


# --- ground-truth training ------------------------------------------------------------------------
# What a training from scratch reads of its config (enas-train): two jobs that agree on these
# train the same network the same way, whatever the search sections (search, controller,
# strategy, evaluator, derive) of the configs they came from. So a rank check and a
# beats-random run, or several search settings, share one trained pool.
TRAINING_KEYS = ("data", "trainer", "accel", "device", "seed", "arch")


def training_part(config: dict) -> dict:
    """The parts of `config` that decide a training from scratch (as JSON would store them): the
    sections enas-train reads, with the space reduced to its name, structure and the sizes of the
    trained network (space.sizes updated by trainer.sizes, as the build layer does)."""
    space, trainer = config.get("space") or {}, config.get("trainer") or {}
    part = {key: config.get(key) for key in TRAINING_KEYS}
    part["trainer"] = {k: v for k, v in trainer.items() if k != "sizes"}     # its sizes are in part["space"]
    part["space"] = {"name": space.get("name"), "structure": space.get("structure"), "target": space.get("target"),
                     "sizes": {**(space.get("sizes") or {}), **(trainer.get("sizes") or {})}}
    return json.loads(json.dumps(part))


def _same_config(path: str, config: dict) -> bool | None:
    """Does the job.json at `path` train as `config` does? None when there is no job.json."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return training_part(json.load(f)) == training_part(config)


def ground_truth_jobs(config: dict, space, archs: Sequence[Architecture], seeds: Sequence[int], out_dir: str,
                      prefix: str = "arch") -> list[dict]:
    """One training job per (architecture, seed): {"index", "seed", "run_dir", "config", "done"}.

    `config` is the plain config `enas-train` reads (data, space, trainer, device); each job's
    copy gets its seed, the path of the architecture's arch.json (written here) and `resume`
    set when an interrupted run of the same config is found. A finished run ("done": its
    result.json) of the same training (`training_part`) is not trained again; a run directory
    holding another training is an error.
    """
    jobs = []
    for i, arch in enumerate(archs):
        # the folder names the architecture, so another draw never reuses these trainings
        digest = hashlib.sha256(arch.key().encode()).hexdigest()[:8]
        arch_dir = os.path.join(out_dir, f"{prefix}{i:03d}-{digest}")
        arch_path = os.path.realpath(os.path.join(arch_dir, "arch.json"))   # one path through a linked pool
        save_json(arch_path, space.arch_to_dict(arch))
        for seed in seeds:
            run_dir = os.path.join(arch_dir, f"seed{seed}")
            job_config = {**config, "seed": int(seed), "arch": os.path.abspath(arch_path), "resume": False}
            same = _same_config(os.path.join(run_dir, "job.json"), job_config)
            if same is False:
                raise ValueError(f"{run_dir} holds a training with another config (job.json); remove it or "
                                 f"choose another output directory")
            done = same is True and os.path.exists(os.path.join(run_dir, "result.json"))
            if same is None:
                save_json(os.path.join(run_dir, "job.json"), job_config)
            elif not done and checkpoint_exists(os.path.join(run_dir, "checkpoint.pt")):
                job_config = {**job_config, "resume": True}       # interrupted: continue it
            jobs.append({"index": i, "seed": int(seed), "run_dir": run_dir, "config": job_config, "done": done})
    return jobs


def _read_result(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "result.json")) as f:
        result = json.load(f)
    return {"valid": result["valid"], "test": result["test"], "params": result.get("params"),
            "seconds": result.get("seconds"), "cpu_seconds": result.get("cpu_seconds")}


def train_architectures(train_fn: Callable[[dict], dict], jobs: Sequence[dict], engine,
                        retries: int = 1) -> list[dict]:
    """Run every job not done yet on `engine`; one result per job, in job order.

    `train_fn(job)` trains one network and returns {"valid", "test", "params", "seconds"}
    (metric dicts). A job whose worker process died is run again (`retries` times, resuming
    its checkpoint); a job that fails otherwise gets {"error": <one line>} and the others go on.
    Progress (one line per finished training, with the time left) goes to the log.
    """
    results: list[dict | None] = [None] * len(jobs)
    crashes = [0] * len(jobs)
    pending = {}                                # handle -> (job position, engine generation)
    for k, job in enumerate(jobs):
        if job["done"]:
            results[k] = {**_read_result(job["run_dir"]), "reused": True}
        else:
            pending[engine.submit(train_fn, job)] = (k, engine.generation)
    total, finished = len(pending), 0
    eta = Eta(total)
    if total:
        log.info(f"training {total} networks from scratch ({len(jobs) - total} reused) on {engine.name} "
                 f"with {engine.workers} worker(s)")
    try:
        while pending:
            for handle in engine.wait_any(list(pending)):
                k, generation = pending.pop(handle)
                where = f"arch {jobs[k]['index']} seed {jobs[k]['seed']}"
                try:
                    results[k] = engine.result(handle)
                except Exception as e:          # noqa: BLE001  (recorded or retried; the others go on)
                    if engine.is_crash(e) and crashes[k] < retries:
                        crashes[k] += 1
                        if generation == engine.generation:
                            engine.restart()    # one new pool per broken one, however many jobs it lost
                        log.warning(f"{where}: worker process died; retry {crashes[k]}/{retries}")
                        pending[engine.submit(train_fn, _resumed(jobs[k]))] = (k, engine.generation)
                        continue
                    results[k] = {"error": _one_line(e)}
                finished += 1
                eta.update(finished)
                log.info(f"[{finished}/{total}] {where}: {_describe(results[k])} ({eta.text()})")
    except BaseException:
        engine.restart()                        # drop what is still queued; finished runs are on disk
        raise
    return [{"index": job["index"], "seed": job["seed"], "run_dir": job["run_dir"], **result}
            for job, result in zip(jobs, results)]


def _resumed(job: dict) -> dict:
    """The job again, continuing its checkpoint when the lost run had written one."""
    started = checkpoint_exists(os.path.join(job["run_dir"], "checkpoint.pt"))
    return {**job, "config": {**job["config"], "resume": started}}


def _one_line(error: Exception) -> str:
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first}"


def _describe(result: dict) -> str:
    if "error" in result:
        return f"FAILED: {result['error']}"
    return f"valid {_short(result['valid'])} test {_short(result['test'])} ({_seconds(result)})"


def _seconds(result: dict) -> str:
    cpu = result.get("cpu_seconds")
    return f"{result['seconds']:.0f} s" + (f", {cpu:.0f} s CPU" if cpu is not None else "")


def _short(metrics: dict) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k != "loss")


def values_by_seed(results: Sequence[dict], seeds: Sequence[int], num_archs: int, split: str,
                   metric: str) -> list[list[float]]:
    """The trained metric per seed, per architecture ([seed][arch]; nan where a training failed)."""
    table = [[math.nan] * num_archs for _ in seeds]
    row = {seed: r for r, seed in enumerate(seeds)}
    for result in results:
        if "error" not in result:
            table[row[result["seed"]]][result["index"]] = float(result[split][metric])
    return table


def cost_summary(results: Sequence[dict]) -> dict:
    """Mean wall and CPU seconds per trained network (None when no timing is known)."""
    def mean(key):
        values = [r[key] for r in results if r.get(key) is not None]
        return statistics.fmean(values) if values else None
    return {"networks": sum("error" not in r for r in results), "failed": sum("error" in r for r in results),
            "seconds_mean": mean("seconds"), "cpu_seconds_mean": mean("cpu_seconds")}


def format_cost(cost: dict) -> str:
    """"N networks, X s each (Y s CPU)"."""
    text = f"{cost['networks']} networks trained"
    if cost["seconds_mean"] is not None:
        text += f", {cost['seconds_mean']:.0f} s wall each"
    if cost["cpu_seconds_mean"] is not None:
        text += f" ({cost['cpu_seconds_mean']:.0f} s CPU)"
    return text + (f", {cost['failed']} failed" if cost["failed"] else "")


def metric_of(results: Sequence[dict], split: str) -> str:
    """The task metric the trainings report ("acc" or "ppl"; "acc" when every training failed)."""
    finished = [r[split] for r in results if "error" not in r]
    return "ppl" if finished and "ppl" in finished[0] else "acc"


# --- beats random ------------------------------------------------------------------------------------
def percentile(value: float, population: Sequence[float], higher_is_better: bool = True) -> float:
    """Percentile of `value` among `population` (0-100; ties count half; nan entries ignored)."""
    from scipy.stats import percentileofscore
    pool = [float(v) for v in population if not math.isnan(float(v))]
    if not pool or value is None or math.isnan(float(value)):
        return math.nan
    pool, value = oriented(pool, higher_is_better), oriented([value], higher_is_better)[0]
    return float(percentileofscore(pool, value, kind="mean"))


def placement(value: float, measured: Sequence[Sequence[float]], higher_is_better: bool = True
              ) -> tuple[list[float], float]:
    """A derived architecture's percentile among each of the pool's measurements, and their mean
    (nan when none is finite): a measurement compared with measurements of the same size."""
    per_measurement = [percentile(value, row, higher_is_better) for row in measured]
    finite = [p for p in per_measurement if math.isfinite(p)]
    return per_measurement, statistics.fmean(finite) if finite else math.nan


def noise_ceiling(table: Sequence[Sequence[float]]) -> float | None:
    """Mean Kendall tau over pairs of seeds (architectures trained under every seed only)."""
    pairs = split_ceilings(table, 1)
    return pairs["mean"] if pairs else None


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def beats_random_report(derived: Sequence[dict], random_table: Sequence[Sequence[float]],
                        random_seeds: Sequence[int], metric: str, higher_is_better: bool,
                        floor: float = NOISE_FLOOR, average: int = 1) -> dict:
    """Percentiles of derived architectures among the random pool, per run and per strategy.

    derived: one dict per search run {"strategy", "seed", "status", "value" (the trained
    metric: the mean of `average` trainings), "error"}. random_table: the pool's metric
    [train seed][arch], grouped into measurements of `average` seeds (`enas.ranking.measurements`).
    The percentile of a run is the mean over the pool's measurements of its percentile among
    that measurement's values (a measurement compared with measurements of the same size).
    """
    measured, names = measurements(random_table, average)
    runs = []
    for d in derived:
        per_seed, mean = placement(d.get("value", math.nan), measured, higher_is_better)
        runs.append({**d, "percentiles": per_seed, "percentile": mean})
    strategies = []
    for name in dict.fromkeys(r["strategy"] for r in runs):
        mine = [r["percentile"] for r in runs if r["strategy"] == name and math.isfinite(r["percentile"])]
        mean, std = _mean_std(mine)
        strategies.append({"strategy": name, "runs": sum(r["strategy"] == name for r in runs), "ok": len(mine),
                           "percentile_mean": mean, "percentile_std": std,
                           "percentile_min": min(mine) if mine else None, "percentile_max": max(mine) if mine else None,
                           "at_target": sum(p >= TARGET_PERCENTILE for p in mine)})
    pool = [v for row in measured for v in row if math.isfinite(v)]
    noise = noise_ceiling(measured) if len(measured) > 1 else None
    splits = split_ceilings(random_table, average)          # architectures trained under every seed only
    return {"metric": metric, "higher_is_better": higher_is_better, "runs": runs, "strategies": strategies,
            "average": average,
            "random": {"seeds": list(random_seeds), "num_archs": len(random_table[0]) if random_table else 0,
                       "values": [list(row) for row in random_table], "measurement_names": names,
                       "measurements": measured,
                       "median": float(np.median(pool)) if pool else None,
                       "p80": float(np.percentile(oriented(pool, higher_is_better), TARGET_PERCENTILE)
                                    * (1 if higher_is_better else -1)) if pool else None,
                       "best": (max(pool) if higher_is_better else min(pool)) if pool else None},
            "noise_ceiling_tau": noise, "noise_ceiling_splits": splits,
            "verdict": ceiling_verdict(noise, splits, None, floor, judged="the search")}


def _fmt(value, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def format_beats_random(report: dict, title: str, recipe: str = "") -> str:
    """The beats-random report as markdown."""
    metric, pool = report["metric"], report["random"]
    lines = [f"# {title}", "", f"**{report['verdict']}**", ""]
    if recipe:
        lines += [f"Training recipe (every network, from scratch): {recipe}", ""]
    per = "" if report.get("average", 1) == 1 else f" (a measurement is the mean of {report['average']} trainings)"
    lines += [f"Random pool: {pool['num_archs']} uniformly drawn architectures, trained with seeds "
              f"{pool['seeds']}{per}; noise-ceiling tau {_fmt(report['noise_ceiling_tau'], 3)}"
              f"{format_split_ceilings(report.get('noise_ceiling_splits'))}; {metric} median "
              f"{_fmt(pool['median'], 4)}, 80th percentile {_fmt(pool['p80'], 4)}, best {_fmt(pool['best'], 4)}"
              + (f"; {format_cost(pool['cost'])}." if pool.get("cost") else "."), "",
              f"Percentile of the derived architecture among the random ones (100: better than all; the "
              f"target is >= {TARGET_PERCENTILE:.0f} on average).", "",
              "| strategy | runs ok | percentile mean ± std | min | max | runs >= 80th |", "|---|---|---|---|---|---|"]
    for s in report["strategies"]:
        spread = "" if s["percentile_std"] is None else f" ± {_fmt(s['percentile_std'])}"
        lines.append(f"| {s['strategy']} | {s['ok']}/{s['runs']} | {_fmt(s['percentile_mean'])}{spread} | "
                     f"{_fmt(s['percentile_min'])} | {_fmt(s['percentile_max'])} | {s['at_target']}/{s['ok']} |")
    lines += ["", "## Runs", "", f"| strategy | search seed | status | derived {metric} | percentile | "
              f"per pool measurement | error |", "|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        per_seed = " / ".join(_fmt(p) for p in r["percentiles"])
        lines.append(f"| {r['strategy']} | {r['seed']} | {r['status']} | {_fmt(r.get('value'), 4)} | "
                     f"{_fmt(r['percentile'])} | {per_seed} | {(r.get('error') or '').replace('|', '/')} |")
    lines += ["", "![percentiles](beats_random.png)"]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("kind", "strategy", "search_seed", "arch", "train_seed", "status", "metric", "value", "percentile",
               "seconds", "cpu_seconds", "run_dir", "error")


def beats_random_csv(report: dict, random_results: Sequence[dict], split: str) -> str:
    """Every trained network as a CSV row: the random pool's, then each derived architecture's."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    metric = report["metric"]
    for r in random_results:
        writer.writerow({"kind": "random", "arch": r["index"], "train_seed": r["seed"],
                         "status": "failed" if "error" in r else "ok", "metric": metric,
                         "value": "" if "error" in r else r[split][metric], "seconds": r.get("seconds") or "",
                         "cpu_seconds": r.get("cpu_seconds") or "",
                         "run_dir": r["run_dir"], "error": r.get("error", "")})
    for r in report["runs"]:
        writer.writerow({"kind": "derived", "strategy": r["strategy"], "search_seed": r["seed"],
                         "train_seed": " ".join(str(t) for t in r.get("train_seeds") or []),
                         "status": r["status"], "metric": metric,
                         "value": "" if r.get("value") is None else r["value"],
                         "percentile": "" if not math.isfinite(r["percentile"]) else r["percentile"],
                         "seconds": r.get("seconds") or "", "run_dir": r.get("run_dir") or "",
                         "error": r.get("error") or ""})
    return buffer.getvalue()


def beats_random_plot(report: dict, split: str):
    """A strip plot: the random pool per training seed (grey) and the derived architectures."""
    from enas.plots import COLORS, GREY, strip_plot
    metric = report["metric"]
    rows = [(f"random, {name}", values, GREY)
            for name, values in zip(report["random"]["measurement_names"], report["random"]["measurements"])]
    for k, s in enumerate(report["strategies"]):
        mine = [r for r in report["runs"] if r["strategy"] == s["strategy"] and r["status"] == "ok"]
        rows.append((f"{s['strategy']} (derived, {len(mine)} seeds)", [r.get("value") for r in mine],
                     COLORS[k % len(COLORS)], [f"s{r['seed']}" for r in mine]))
    marks = [(report["random"]["median"], "random median"), (report["random"]["p80"], "80th pct")]
    marks = [(v, label) for v, label in marks if v is not None]
    return strip_plot(rows, f"{split} {metric}", "Derived architectures among random ones", marks)


# --- output ----------------------------------------------------------------------------------------
def log_image(run_dir: str, tag: str, image, step: int = 0) -> None:
    """Put a PIL image into TensorBoard (`<run_dir>/tb`)."""
    from enas.plots import to_array
    from enas.tb import open_writer
    writer = open_writer(run_dir)
    try:
        writer.add_image(tag, to_array(image), step, dataformats="HWC")
    finally:
        writer.close()
