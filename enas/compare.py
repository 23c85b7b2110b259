"""Side-by-side comparison tables of search strategies (used by `enas-compare`).

A comparison is a list of per-run rows (one per strategy and seed), each a plain dict with the
keys of `RUN_COLUMNS`. Failed runs are kept as rows with status "failed" and a one-line error;
`resumed` marks a run that an interrupted invocation had started (its times count only the
invocation that finished it).
The functions here are pure: they aggregate rows and format them as markdown or CSV.
"""

from __future__ import annotations

import csv
import io
import math
import statistics

# The per-run record (also the CSV header, in this order).
RUN_COLUMNS = ("strategy", "seed", "status", "metric", "best_reward", "derived_score", "final_valid",
               "final_test", "archs_scored", "search_seconds", "total_seconds", "resumed", "error")

# Numeric columns averaged over seeds: (key, markdown header; {metric} is the task's metric, digits).
NUMERIC_COLUMNS = (
    ("best_reward", "best one-shot reward", 4),
    ("derived_score", "derived arch score", 4),
    ("final_valid", "final valid {metric}", 4),
    ("final_test", "final TEST {metric}", 4),
    ("archs_scored", "archs scored", 0),
    ("search_seconds", "search time (s)", 1),
    ("total_seconds", "total time (s)", 1),
)


def run_row(strategy: str, seed: int, **values) -> dict:
    """A per-run row with every column of `RUN_COLUMNS` (missing ones None, status "ok")."""
    unknown = set(values) - set(RUN_COLUMNS)
    if unknown:
        raise ValueError(f"run_row: unknown columns {sorted(unknown)}; known: {', '.join(RUN_COLUMNS)}")
    row = {key: None for key in RUN_COLUMNS}
    row.update(strategy=strategy, seed=seed, status="ok", resumed=False)
    row.update(values)
    return row


def failed_row(strategy: str, seed: int, error: str, **values) -> dict:
    """A row for a run that failed: the first line of `error` (what was measured before stays)."""
    lines = str(error).strip().splitlines()
    return run_row(strategy, seed, **{**values, "status": "failed", "error": lines[0] if lines else "failed"})


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (std None with fewer than 2 values; both None for none)."""
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) >= 2 else None)


def aggregate(rows: list[dict]) -> list[dict]:
    """One summary per strategy (first-appearance order), over its successful runs.

    Each summary holds `strategy`, `runs`, `ok`, `failed`, `error` (the first failure's message,
    or None) and, per numeric column, `<key>_mean` and `<key>_std`. A strategy whose runs all
    failed keeps its summary, with None means.
    """
    order = list(dict.fromkeys(row["strategy"] for row in rows))
    summaries = []
    for strategy in order:
        mine = [row for row in rows if row["strategy"] == strategy]
        ok = [row for row in mine if row["status"] == "ok"]
        failures = [row for row in mine if row["status"] != "ok"]
        summary = {"strategy": strategy, "runs": len(mine), "ok": len(ok), "failed": len(failures),
                   "error": failures[0]["error"] if failures else None}
        for key, _, _ in NUMERIC_COLUMNS:
            summary[f"{key}_mean"], summary[f"{key}_std"] = mean_std([row[key] for row in ok])
        summaries.append(summary)
    return summaries


def format_value(value, digits: int) -> str:
    """A number for a table cell ("-" when missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def format_mean_std(mean, std, digits: int) -> str:
    """"mean ± std" ("mean" alone with a single run, "-" with none)."""
    if mean is None:
        return "-"
    if std is None:
        return format_value(mean, digits)
    return f"{format_value(mean, digits)} ± {format_value(std, digits)}"


def table_metric(rows: list[dict]) -> str:
    """The task metric named in the rows (acc, ppl, ...); "metric" when no run got that far."""
    names = [row["metric"] for row in rows if row.get("metric")]
    return names[0] if names else "metric"


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(cells) for cells in body)]


def format_markdown(rows: list[dict], title: str = "Strategy comparison") -> str:
    """The comparison as markdown: a per-strategy table (mean ± std over seeds), then per-run rows."""
    metric = table_metric(rows)
    numeric_headers = [header.format(metric=metric) for _, header, _ in NUMERIC_COLUMNS]
    summary_body = []
    for s in aggregate(rows):
        cells = [s["strategy"], f"{s['ok']}/{s['runs']}"]
        cells += [format_mean_std(s[f"{key}_mean"], s[f"{key}_std"], digits) for key, _, digits in NUMERIC_COLUMNS]
        summary_body.append(cells)
    run_body = []
    for row in rows:
        status = f"{row['status']} (resumed)" if row.get("resumed") else row["status"]
        cells = [row["strategy"], str(row["seed"]), status]
        cells += [format_value(row[key], digits) for key, _, digits in NUMERIC_COLUMNS]
        run_body.append(cells + [row["error"] or ""])
    lines = [f"# {title}", "", "Mean ± sample std over seeds (successful runs only).", ""]
    lines += _markdown_table(["strategy", "runs ok", *numeric_headers], summary_body)
    lines += ["", "## Runs", ""]
    lines += _markdown_table(["strategy", "seed", "status", *numeric_headers, "error"], run_body)
    if any(row.get("resumed") for row in rows):
        lines += ["", "(resumed): continued after an interruption; its times count only the command that finished it."]
    return "\n".join(lines) + "\n"


def format_csv(rows: list[dict]) -> str:
    """The per-run rows as CSV (header `RUN_COLUMNS`; missing values empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(RUN_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in RUN_COLUMNS})
    return buffer.getvalue()
