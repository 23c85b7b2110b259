"""The journal of finished standalone evaluations (`<run_dir>/evaluations.jsonl`).

One JSON line per finished child, appended and fsynced as it finishes, so a resumed search
takes the rewards of children that already finished instead of training them again. Entries
count only for the same fidelity (a hash of the training knobs).
"""

from __future__ import annotations

import json
import logging
import os

from enas.arch import Architecture
from enas.fileio import append_line

log = logging.getLogger(__name__)


class Journal:
    """Finished evaluations keyed by (phase, index, architecture, fidelity); `path` None keeps
    them in memory only."""

    def __init__(self, path: str | None, fidelity: str):
        self.path = path
        self.fidelity = fidelity
        self._entries = self._read()

    def _read(self) -> dict:
        done = {}
        if not self.path or not os.path.exists(self.path):
            return done
        with open(self.path) as f:
            for number, line in enumerate(f, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    e = json.loads(line)
                except json.JSONDecodeError:
                    # a line cut by a crash mid-write: that evaluation is simply run again
                    log.warning("%s:%d: unreadable line skipped", self.path, number)
                    continue
                done[(e["phase"], e["index"], e["key"], e.get("fidelity"))] = e
        return done

    def result(self, phase: int, index: int, arch: Architecture) -> tuple[float, dict | None] | None:
        """(reward, metrics) recorded for child `index` of `phase`, if it finished at this fidelity."""
        entry = self._entries.get((phase, index, arch.key(), self.fidelity))
        return None if entry is None else (float(entry["reward"]), entry.get("metrics"))

    def record(self, phase: int, index: int, arch: Architecture, reward: float, seconds: float | None,
               attempts: int, metrics: dict | None = None, error: str | None = None) -> None:
        """Append one finished evaluation (durably: flushed and fsynced)."""
        entry = {"phase": phase, "index": index, "key": arch.key(), "choices": arch.plain_choices(),
                 "reward": reward, "seconds": seconds, "attempts": attempts, "failed": error is not None,
                 "error": error, "metrics": metrics, "fidelity": self.fidelity}
        self._entries[(phase, index, entry["key"], self.fidelity)] = entry
        if self.path:
            append_line(self.path, json.dumps(entry))
