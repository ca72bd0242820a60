"""What the report reads from a run beyond its rows: the machine's measured peaks, from
meta.json's "machine" entry, and whether they can be trusted. Runs themselves are read by
convbench.run.rundir.

A peak is doubted two ways. Its record may say it was measured under load, forced, expired or
never checked (convbench.measure.machine.peak_note): the report prints that beside it. And a
result may beat it: an algorithm that does every multiply-add its FLOP count assumes (not a
transform such as FFT or Winograd, which the registry marks with error_spreads and whose
effective GFLOP/s may exceed the peak honestly) cannot run faster than SGEMM. One more than
SUSPECT_MARGIN above the peak makes the peak suspect: the report says so and leaves the run's
"% SGEMM peak" empty rather than print 190%.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pandas as pd

from convbench.algorithms import registry
from convbench.backends import GPU_BACKENDS
from convbench.measure.machine import peak_note
from convbench.run.rundir import Run

SUSPECT_MARGIN = 0.10  # a result this far above the SGEMM peak makes the peak suspect


@dataclass(frozen=True)
class Peaks:
    """The machine's measured peaks, from meta.json's "machine" entry."""

    sgemm_gflops: float | None = None
    copy_gbytes_per_s: float | None = None
    note: str | None = None  # why the record may not be trusted: under load, expired...
    suspect: str | None = None  # the result that beat the SGEMM peak, as a sentence

    @property
    def usable_sgemm_gflops(self) -> float | None:
        """The SGEMM peak to divide by: None when a result made it suspect."""
        return None if self.suspect else self.sgemm_gflops

    def describe(self) -> str:
        """'SGEMM 150 GFLOP/s, copy 20 GB/s (measured 2026-11-30 under load 63%)'."""
        parts = [f"SGEMM {self.sgemm_gflops:.4g} GFLOP/s" if self.sgemm_gflops else "",
                 f"copy {self.copy_gbytes_per_s:.4g} GB/s" if self.copy_gbytes_per_s else ""]
        text = ", ".join(p for p in parts if p)
        doubts = [d for d in (self.note, self.suspect and "suspect: " + self.suspect) if d]
        return f"{text} ({'; '.join(doubts)})" if doubts else text


def _positive_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _date(meta: dict[str, Any]) -> datetime.datetime | None:
    try:
        value = datetime.datetime.fromisoformat(str(meta.get("date")))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def counts_every_flop(op: str, algo: str) -> bool:
    """Whether `algo` does every multiply-add of the FLOP count: not a transform (FFT,
    Winograd), nor an algorithm this convbench does not know."""
    try:
        return not registry.get(op, algo).error_spreads
    except ValueError:
        return False


def suspicion(frame: pd.DataFrame, sgemm_gflops: float) -> str | None:
    """The sentence saying which CPU float32 result beat the SGEMM peak by over the margin."""
    rows = frame[(frame["status"] == "ok") & (frame["dtype"] == "float32")
                 & ~frame["backend"].isin(GPU_BACKENDS)]
    ran = rows["ran_algo"].fillna("").where(rows["ran_algo"].fillna("") != "", rows["algo"])
    rows = rows[[counts_every_flop(o, a) for o, a in zip(rows["op"], ran, strict=True)]]
    if rows.empty or not rows["gflops"].max() > sgemm_gflops * (1 + SUSPECT_MARGIN):
        return None
    best = rows.loc[rows["gflops"].idxmax()]
    return (f"{best['algo']} reached {best['gflops']:.4g} GFLOP/s on {best['case']}, "
            f"{best['gflops'] / sgemm_gflops:.0%} of the SGEMM peak: measure the peak again "
            "on a quiet machine with convbench machine")


def peaks_of(run: Run) -> Peaks | None:
    """The peaks `convbench machine` measured for the run, with its doubts; None when it
    measured none."""
    machine = run.meta.get("machine")
    if not isinstance(machine, dict):
        return None
    values = {k: _positive_or_none(machine.get(k)) for k in ("sgemm_gflops", "copy_gbytes_per_s")}
    if not any(values.values()):
        return None
    sgemm = values["sgemm_gflops"]
    return Peaks(**values, note=peak_note(machine, _date(run.meta)),
                 suspect=suspicion(run.frame, sgemm) if sgemm else None)
