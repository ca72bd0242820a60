"""The results table: one row per (case, algorithm, backend), appended to results.csv as it is
produced, so that an interrupted run loses nothing and can be resumed."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from convbench.run.samples import SamplesFile

COLUMNS: tuple[str, ...] = (
    "suite", "case", "descriptor", "op", "direction", "algo", "backend", "dtype", "status",
    "reason", "time_median_s", "time_iqr_s", "time_min_s", "repeats", "calls_per_sample", "noisy",
    "flops", "gflops", "max_abs_err", "rel_l2_err", "norm_err", "tolerance", "exact",
    "weights_prepared", "ran_algo", "kernels",
    "peak_mem_bytes", "workspace_model_bytes", "mem_note", "threads", "seed", "timestamp",
)
KEY: tuple[str, ...] = ("case", "algo", "backend")
STATUSES: tuple[str, ...] = ("ok", "wrong", "unsupported", "error", "oom", "skipped")
RESULTS_FILE = "results.csv"
SAMPLES_KEY = "samples_s"  # a row's raw samples: written to samples.jsonl, not to the CSV
META_FILE = "meta.json"


def _repair(path: Path) -> None:
    """Drop a last line cut short by a kill in the middle of a write."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _check_header(path: Path) -> None:
    """Rows are appended in COLUMNS order: a file written with other columns cannot be resumed."""
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), None)
    if header is not None and tuple(header) != COLUMNS:
        raise ValueError(f"--resume: {path} was written with other columns (an older convbench?); "
                         "run without --resume, or into another --out")


class ResultsFile:
    """Appends rows to <dir>/results.csv, flushed and synced one row at a time."""

    def __init__(self, directory: Path, resume: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / RESULTS_FILE
        if self.path.exists() and resume:
            _repair(self.path)
            _check_header(self.path)
        elif self.path.exists():
            self.path.unlink()
        self.samples = SamplesFile(directory, resume)

    def done(self) -> set[tuple[str, ...]]:
        """Keys of the rows already written (for --resume)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return set()
        frame = read_results(self.path)
        return {tuple(str(v) for v in key) for key in frame[list(KEY)].itertuples(index=False)}

    def done_descriptors(self) -> dict[tuple[str, ...], str]:
        """The descriptor each written row was measured on, by key."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return {}
        frame = read_results(self.path)
        keys = frame[list(KEY)].itertuples(index=False)
        return {tuple(str(v) for v in k): d for k, d in zip(keys, frame["descriptor"])}

    def append(self, row: dict[str, Any]) -> None:
        """Write one row; its raw samples (key `samples_s`, if any) go to samples.jsonl first."""
        row = dict(row)
        samples_s = row.pop(SAMPLES_KEY, None)
        if samples_s is not None:
            self.samples.append(row, samples_s)
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise ValueError(f"row has columns the results table does not know: {sorted(unknown)}")
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())


TEXT_COLUMNS = ("suite", "case", "descriptor", "op", "direction", "algo", "backend", "dtype",
                "status",
                "reason", "mem_note", "timestamp", "ran_algo", "kernels")
BOOL_COLUMNS = ("noisy", "exact", "weights_prepared")


def read_results(path: Path | str) -> pd.DataFrame:
    """A results.csv (or a directory holding one) as a DataFrame with the expected columns."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False,
                        na_values=[""])
    for column in COLUMNS:  # a results.csv written before a column existed (e.g. a baseline)
        if column not in frame.columns:
            frame[column] = None
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].fillna("")
    for column in BOOL_COLUMNS:
        frame[column] = frame[column].map({"True": True, "False": False, True: True,
                                           False: False})
    return frame


def write_meta(directory: Path, meta: dict[str, Any], resume: bool) -> None:
    """meta.json beside the results; a resumed run keeps the first meta and notes the resume."""
    path = directory / META_FILE
    if resume and path.exists():
        previous = json.loads(path.read_text())
        previous.setdefault("resumed", []).append(meta)
        meta = previous
    path.write_text(json.dumps(meta, indent=2, default=str) + "\n")


def update_meta(directory: Path, fields: dict[str, Any]) -> None:
    """Merge `fields` into meta.json at the top level (what is only known once a run ends)."""
    path = directory / META_FILE
    meta = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(meta | fields, indent=2, default=str) + "\n")
