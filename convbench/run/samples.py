"""Raw timing samples beside results.csv: samples.jsonl, one JSON line per timed row.

results.csv keeps the statistics a reader wants; `convbench compare` needs the raw samples for its
significance test, so they are kept here, written (flushed and synced) just before their row of
results.csv. A run killed between the two leaves a line without a row; the resumed run times that
row again and appends a newer line, and the newest line for a key wins when reading.

    {"case": "tiny_3x3", "algo": "im2col", "backend": "numpy", "number": 11,
     "samples_s": [4.02e-05, 3.98e-05, ...]}
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SAMPLES_FILE = "samples.jsonl"
# What identifies a row; "direction" only where the results have that column.
KEY_FIELDS: tuple[str, ...] = ("case", "algo", "backend", "direction")
DEFAULT_DIRECTION = "fwd"  # convbench.problems: fwd, bwd_data, bwd_weight

SampleKey = tuple[str, str, str, str]


def sample_key(record: dict[str, Any]) -> SampleKey:
    """(case, algo, backend, direction) of a row or a samples line; no direction -> fwd."""
    direction = record.get("direction")
    if not isinstance(direction, str) or not direction:  # missing, empty, or NaN from pandas
        direction = DEFAULT_DIRECTION
    return (str(record["case"]), str(record["algo"]), str(record["backend"]), str(direction))


class SamplesFile:
    """Appends one line per timed row to <dir>/samples.jsonl, flushed and synced."""

    def __init__(self, directory: Path, resume: bool) -> None:
        self.path = directory / SAMPLES_FILE
        if self.path.exists() and not resume:
            self.path.unlink()
        elif self.path.exists():  # drop a last line cut short by a kill
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                self.path.write_bytes(data[: data.rfind(b"\n") + 1])

    def append(self, row: dict[str, Any], samples_s: Sequence[float]) -> None:
        record = {k: row[k] for k in KEY_FIELDS if k in row}
        # six significant digits: far below any timing noise, and a third of the file
        record |= {"number": row.get("calls_per_sample"),
                   "samples_s": [float(f"{t:.6g}") for t in samples_s]}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def read_samples(directory: Path | str) -> dict[SampleKey, np.ndarray]:
    """The raw samples (seconds per call) of every timed row, by key; {} if none were kept.
    A line cut short by a kill is skipped."""
    path = Path(directory) / SAMPLES_FILE
    found: dict[SampleKey, np.ndarray] = {}
    if not path.is_file():
        return found
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            found[sample_key(record)] = np.asarray(record["samples_s"], dtype=float)
        except (ValueError, KeyError, TypeError):
            continue
    return found
