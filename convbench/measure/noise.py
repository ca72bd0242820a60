"""Was the machine quiet while a run measured? Two witnesses, which the runner records in
meta.json["noise"] (this module only measures and summarises; it writes nothing):

- the CPU time other processes (and the hypervisor, as steal time) took during the run, from
  the system-wide CPU counters minus this process's own CPU time: psutil, no sampling thread;
- the spread of the run itself: the share of timed rows whose IQR is over 10% of their median.

Either one over its bound makes the run "noisy", and `convbench run` prints the warning.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from convbench.measure.environment import usable_cpus

OTHER_LOAD_BOUND = 0.10  # other processes' share of the machine's CPU capacity
NOISY_ROWS_BOUND = 0.25  # share of timed rows flagged noisy (IQR/median > 10%)


def _busy_s() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0) + \
        getattr(t, "steal", 0.0)


def _own_s() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class LoadReading:
    wall_s: float
    cores: int
    other_cpu_s: float  # CPU seconds spent outside this process during the run

    @property
    def other_load(self) -> float:
        """Average share of the machine's cores busy with something else, 0..1."""
        return max(0.0, self.other_cpu_s) / (self.wall_s * self.cores) if self.wall_s > 0 else 0.0


class LoadMonitor:
    """Started on creation; `stop()` gives what other processes took in between."""

    def __init__(self) -> None:
        self.start_wall, self.start_busy, self.start_own = time.monotonic(), _busy_s(), _own_s()

    def stop(self) -> LoadReading:
        busy, own = _busy_s() - self.start_busy, _own_s() - self.start_own
        return LoadReading(time.monotonic() - self.start_wall, usable_cpus(), busy - own)


def summarize(reading: LoadReading, noisy_rows: int, timed_rows: int) -> dict[str, Any]:
    """The meta.json["noise"] entry, with a warning sentence when a bound is exceeded."""
    share = noisy_rows / timed_rows if timed_rows else 0.0
    reasons = []
    if reading.other_load > OTHER_LOAD_BOUND:
        reasons.append(f"other processes used {reading.other_load:.0%} of the CPU capacity "
                       f"(bound {OTHER_LOAD_BOUND:.0%})")
    if share > NOISY_ROWS_BOUND:
        reasons.append(f"{noisy_rows} of {timed_rows} timed results had IQR over 10% of the "
                       f"median (bound {NOISY_ROWS_BOUND:.0%})")
    warning = "the machine was noisy during the run: " + "; ".join(reasons) if reasons else None
    return asdict(reading) | {"other_load": round(reading.other_load, 4),
                              "noisy_rows": noisy_rows, "timed_rows": timed_rows,
                              "noisy": bool(reasons), "warning": warning}
