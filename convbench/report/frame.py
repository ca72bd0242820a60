"""The report's DataFrame: every run's rows stacked, plus what the tables and figures derive
from them (labels, arithmetic intensity, speedup against the reference, share of machine peak)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from convbench.algorithms.registry import DEFAULT_REFERENCE
from convbench.analysis.speedups import speedups
from convbench.backends import GPU_BACKENDS
from convbench.problems import Problem
from convbench.problems.descriptor import parse
from convbench.report.load import Peaks, peaks_of
from convbench.run.rundir import Run

# Columns the report adds to results.csv's.
DERIVED: tuple[str, ...] = ("run", "case_label", "algo_label", "series", "intensity",
                            "speedup", "pct_peak")
DEFAULT_BACKEND = "numpy"
DEFAULT_DIRECTION = "fwd"


@dataclass(frozen=True)
class SuiteView:
    """One suite's rows across the runs that ran it: what a report section shows."""

    suite: str
    frame: pd.DataFrame = field(repr=False)
    reference: str
    description: str
    peaks: dict[str, Peaks | None]  # by run label
    counts: dict[str, int] = field(default_factory=dict)  # how often each layer occurs
    network: bool = False  # the cases are one network's layers: the report adds its plan

    @property
    def runs(self) -> list[str]:
        return list(self.peaks)

    @property
    def ok(self) -> pd.DataFrame:
        return self.frame[self.frame["status"] == "ok"]


@functools.lru_cache(maxsize=4096)
def problem_of(descriptor: str) -> Problem | None:
    """The problem a descriptor names, or None for one this convbench cannot read."""
    try:
        return parse(descriptor)
    except ValueError:
        return None


def _intensity(descriptor: str, flops: float) -> float:
    problem = problem_of(descriptor)
    return flops / problem.bytes_moved if problem and problem.bytes_moved else np.nan


def case_labels(frame: pd.DataFrame) -> pd.Series:
    """The case name, with its direction (fwd, bwd_data, bwd_weight) when the results have one
    other than the forward pass: a suite of forward cases only keeps its plain names."""
    cases = frame["case"].astype(str)
    if "direction" not in frame.columns:
        return cases
    direction = frame["direction"].fillna("").astype(str)
    if direction.isin(["", DEFAULT_DIRECTION]).all():
        return cases
    return cases.where(direction == "", cases + " [" + direction + "]")


def algo_labels(frame: pd.DataFrame) -> pd.Series:
    """The algorithm name, with the backend when it is not numpy."""
    backend = frame["backend"].astype(str)
    plain = backend.isin(["", DEFAULT_BACKEND])
    return frame["algo"].astype(str).where(plain, frame["algo"] + " [" + backend + "]")


def _speedups(frame: pd.DataFrame, reference: str) -> pd.Series:
    """table.speedups, keyed by case label so that directions do not mix."""
    table = speedups(frame.assign(case=frame["case_label"]), reference)
    return table["speedup"].reindex(frame.index)


def _pct_peak(frame: pd.DataFrame, peaks: Peaks | None) -> pd.Series:
    """GFLOP/s as a percentage of the CPU's SGEMM peak, for float32 rows on the CPU only;
    empty when the peak is unknown or a result made it suspect (load.suspicion)."""
    peak = peaks.usable_sgemm_gflops if peaks else None
    if not peak:
        return pd.Series(np.nan, index=frame.index)
    share = frame["gflops"] / peak * 100
    return share.where((frame["dtype"] == "float32") & ~frame["backend"].isin(GPU_BACKENDS))


def derive(run: Run) -> pd.DataFrame:
    """One run's rows with the derived columns (series is set once all runs are known)."""
    frame = run.frame.reset_index(drop=True).copy()
    frame["run"] = run.label
    frame["case_label"] = case_labels(frame)
    frame["algo_label"] = algo_labels(frame)
    frame["intensity"] = [_intensity(d, f) for d, f in zip(frame["descriptor"], frame["flops"],
                                                           strict=True)]
    frame["speedup"] = _speedups(frame, run.reference)
    frame["pct_peak"] = _pct_peak(frame, peaks_of(run))
    return frame


def report_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """All runs stacked. `series` names the algorithm, and the run when its suite has several."""
    frame = pd.concat([derive(r) for r in runs], ignore_index=True)
    runs_per_suite = frame.groupby("suite")["run"].transform("nunique")
    frame["series"] = frame["algo_label"].where(runs_per_suite == 1,
                                                frame["algo_label"] + " · " + frame["run"])
    return frame


def suite_views(runs: Sequence[Run], frame: pd.DataFrame) -> list[SuiteView]:
    """One view per suite, in the order the suites first appear."""
    views = []
    for suite in dict.fromkeys(frame["suite"]):
        ran = [r for r in runs if r.suite == suite]
        first = ran[0].meta.get("suite", {}) if ran else {}
        views.append(SuiteView(
            suite=suite, frame=frame[frame["suite"] == suite],
            reference=ran[0].reference if ran else DEFAULT_REFERENCE,
            description=str(first.get("description", "")),
            peaks={r.label: peaks_of(r) for r in ran},
            counts=ran[0].counts if ran else {}, network=bool(ran and ran[0].network)))
    return views
