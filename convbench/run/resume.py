"""Resuming a run (--resume): the rows already in a run directory must have been measured as this
run would measure them, or one results.csv would mix two measurements under one meta.json.

What must match: the problem of each row (its descriptor: batch, dtype, direction, shape), and
every recorded setting that changes a measured number (SETTINGS): threads, interleaving, the
processes, the timing policy, exactness mode, the seed, prepared weights, the machine, the
libraries and the GEMM engine.
What may differ: which algorithms and backends run (each row stands alone) and the reference
(it only divides)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convbench.run.rundir import META_FILE, read_meta

# meta.json's entry (dotted) -> how a user sets it.
SETTINGS: dict[str, str] = {
    "threads": "--threads",
    "interleave": "--interleave / --no-interleave",
    "processes": "--processes",
    "suite.budget_s": "--budget",
    "suite.min_repeats": "the suite's min_repeats",
    "suite.limit_s": "the suite's limit_s",
    "suite.exact": "--exact",
    "suite.seed": "the suite's seed",
    "suite.prepare_weights": "the suite's prepare_weights",
    "cpu.model": "the machine",
    "cpu.logical_cores": "the machine",
    "cpu.usable_cores": "the CPUs this process may use (its affinity)",
    "versions.convbench": "the installed convbench",
    "versions.numpy": "the installed numpy",
    "versions.scipy": "the installed scipy",
    "versions.torch": "the installed torch",
    "versions.cupy": "the installed cupy",
    "gemm_engine": "CONVBENCH_GEMM, or the calibration of `convbench machine`",
}
ADVICE = "run without --resume, or into another --out"
# What a meta.json from before a setting was recorded was measured with.
BEFORE_RECORDED: dict[str, Any] = {"gemm_engine": "numpy"}


def recorded(meta: dict[str, Any], dotted: str) -> Any:
    """meta["suite"]["budget_s"] for "suite.budget_s"; None where meta has no such entry."""
    value: Any = meta
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def check_settings(directory: Path, planned: dict[str, Any]) -> None:
    """ValueError naming the first setting whose value in `directory`'s meta.json differs from
    `planned` (a meta of the same shape), with both values. An entry an older meta.json lacks
    is not checked, unless its value then is known (BEFORE_RECORDED: every run before the GEMM
    engine was numpy's); a directory with results and no meta.json cannot be resumed."""
    meta = read_meta(directory)
    if not meta:
        raise ValueError(f"--resume: {directory} holds results but no {META_FILE}, so the "
                         f"settings they were measured with are unknown; {ADVICE}")
    for dotted, option in SETTINGS.items():
        before, now = recorded(meta, dotted), recorded(planned, dotted)
        if before is None:
            before = BEFORE_RECORDED.get(dotted)
        if before is not None and before != now:
            raise ValueError(f"--resume: {directory / META_FILE} was measured with "
                             f"{dotted} = {before}, this run has {now} ({option}); give the "
                             f"same settings, or {ADVICE}")


def check_problems(planned: dict[tuple[str, ...], str], done: dict[tuple[str, ...], str],
                   path: Path) -> None:
    """ValueError for the first row already in `path` whose descriptor is not the one planned
    now for its (case, algorithm, backend)."""
    for key, descriptor in done.items():
        if key in planned and planned[key] != descriptor:
            raise ValueError(f"--resume: {path} holds case {key[0]!r} as {descriptor}, but this "
                             f"run plans {planned[key]}; {ADVICE}")
