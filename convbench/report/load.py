"""What the report reads from a run beyond its rows: the machine's measured peaks, from
meta.json's "machine" entry. Runs themselves are read by convbench.run.rundir."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convbench.run.rundir import Run


@dataclass(frozen=True)
class Peaks:
    """The machine's measured peaks, from meta.json's "machine" entry."""

    sgemm_gflops: float | None = None
    copy_gbytes_per_s: float | None = None


def _positive_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def peaks_of(run: Run) -> Peaks | None:
    """The peaks `convbench machine` measured for the run, or None when it measured none."""
    machine = run.meta.get("machine")
    if not isinstance(machine, dict):
        return None
    values = {k: _positive_or_none(machine.get(k)) for k in ("sgemm_gflops", "copy_gbytes_per_s")}
    return Peaks(**values) if any(values.values()) else None
