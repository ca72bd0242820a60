"""Finding and reading result directories: each holds one suite's results.csv and meta.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from convbench.run.rundir import BOOL_COLUMNS, META_FILE, RESULTS_FILE, TEXT_COLUMNS, read_results

REQUIRED_COLUMNS = ("suite", "case", "descriptor", "algo", "backend", "status", "time_median_s")


@dataclass(frozen=True)
class Peaks:
    """The machine's measured peaks, from meta.json's "machine" entry."""

    sgemm_gflops: float | None = None
    copy_gbytes_per_s: float | None = None


@dataclass(frozen=True)
class Run:
    """One result directory: one suite, as run once on one machine."""

    label: str
    directory: Path
    frame: pd.DataFrame = field(repr=False)
    meta: dict[str, Any] = field(repr=False)

    @property
    def suite(self) -> str:
        names = self.frame["suite"].unique()
        return str(names[0]) if len(names) else self.meta.get("suite", {}).get("name", "")

    @property
    def reference(self) -> str:
        return str(self.meta.get("suite", {}).get("reference", "torch"))

    @property
    def peaks(self) -> Peaks | None:
        machine = self.meta.get("machine")
        if not isinstance(machine, dict):
            return None
        values = {k: _positive_or_none(machine.get(k))
                  for k in ("sgemm_gflops", "copy_gbytes_per_s")}
        return Peaks(**values) if any(values.values()) else None


def _positive_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def result_directories(path: Path) -> list[Path]:
    """`path` itself when it holds results.csv, else its subdirectories that do."""
    if not path.is_dir():
        raise ValueError(f"{path}: not a directory")
    if (path / RESULTS_FILE).is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / RESULTS_FILE).is_file())
    if not found:
        raise ValueError(f"{path}: no {RESULTS_FILE} in it or in its subdirectories")
    return found


def read_meta(directory: Path) -> dict[str, Any]:
    """meta.json, or {} when the run wrote none."""
    path = directory / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read it: {error}") from None
    if isinstance(meta, dict):
        return meta
    raise ValueError(f"{path}: expected a JSON object")  # bad input, like a bad CSV


def read_frame(directory: Path) -> pd.DataFrame:
    path = directory / RESULTS_FILE
    try:
        try:
            frame = read_results(path)
        except KeyError:  # written before a column was added: read the columns it has
            frame = _read_older(path)
    except (OSError, ValueError) as error:  # pandas' parse errors are ValueErrors
        raise ValueError(f"{path}: cannot read it: {error}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    return frame


def _read_older(path: Path) -> pd.DataFrame:
    """read_results' typing, applied only to the columns the file has."""
    frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=False,
                        na_values=[""])
    for column in [c for c in TEXT_COLUMNS if c in frame.columns]:
        frame[column] = frame[column].fillna("")
    for column in [c for c in BOOL_COLUMNS if c in frame.columns]:
        frame[column] = frame[column].map({"True": True, "False": False, True: True,
                                           False: False})
    return frame


def labels(directories: Sequence[Path]) -> list[str]:
    """Names for the directories: the fewest trailing path parts that tell them apart."""
    parts = [d.resolve().parts for d in directories]
    for count in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-count:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(d) for d in directories]


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Every result directory under `paths`, read; ValueError naming the first bad one."""
    directories = list(dict.fromkeys(d.resolve() for p in paths for d in result_directories(p)))
    return [Run(label, d, read_frame(d), read_meta(d))
            for label, d in zip(labels(directories), directories, strict=True)]
