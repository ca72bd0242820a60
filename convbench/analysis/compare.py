"""Two runs side by side: which results regressed, improved, stayed, appeared, vanished or broke.

Rows are matched by (suite, case, algorithm, backend, direction). A timed pair is a regression
only when all three hold:

- the ratio new/base of a statistic of the samples (by default the minimum, "min"; or the
  10th percentile, "q10", or the median) exceeds 1 + threshold,
- the raw samples differ significantly: two-sided Mann-Whitney U, p < alpha (as asv does), and
- the change clears the spread between processes in both runs: where a run took its samples
  from several processes (convbench.run.processes), the statistic of every process of NEW is
  beyond that of every process of BASE. A process's luck (its memory layout, its libraries'
  set-up) holds for all its samples, so the test on pooled samples alone takes it for a change.

The bootstrap confidence interval of that ratio is reported beside it.

With ``normalize="reference"``, times are taken relative to the suite's reference algorithm
measured in the same run: NEW's samples are divided by the machine factor, the geometric mean
over the suite's cases of the reference's new/base ratio. A machine uniformly slower today then
raises no alarm. The factor is taken over the whole suite, not case by case, because the
reference's own scatter from one process to the next on a single small case (about 10% for
torch at tens of microseconds) would otherwise pass to every algorithm of that case.

With ``normalize="case"`` (the default), NEW's samples are divided by the case's factor: the median,
over the algorithms of the case timed in both runs (at least CASE_MIN_ALGORITHMS of them), of
their new/base ratios. On a shared machine the other tenants' load comes and goes in episodes;
in an interleaved run an episode slows every algorithm of the cases it overlaps alike, by 40%
and more, and a suite-wide factor cannot follow it. A change to one or two algorithms of five
or more does not move the median; a change that slows half the algorithms of a case or more
alike (a shared helper) is what this normalization cannot see. Selectors (`auto`) are left out
of the median: they time the algorithm they pick a second time. A case with fewer algorithms
falls back to the reference's machine factor.

Why min or q10 on a noisy machine: other processes only ever add time, so they fatten the upper
part of a run's samples, and the median with it, by a different amount in every run; the
fastest samples are the code's own speed.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from convbench.algorithms.registry import DEFAULT_REFERENCE
from convbench.measure.environment import machine_fingerprint
from convbench.units import format_time
from convbench.run.rundir import Run

KEY = ("suite", "case", "algo", "backend", "direction")
FAILING = ("wrong", "error")
STATISTICS = {"median": 0.5, "q10": 0.10, "min": 0.0}  # the quantile each one is
# "not compared": another change of status (ok -> skipped); "not timed": the same status other
# than ok in both runs (unsupported in both, wrong in both...), nothing to compare and no change.
CHANGES = ("regressed", "now failing", "improved", "new", "missing", "not compared", "unchanged",
           "not timed")
EXIT_CHANGES = ("regressed", "now failing")

Samples = dict[tuple[str, ...], np.ndarray]  # one side's raw samples, by KEY


@dataclass(frozen=True)
class CompareOptions:
    """The defaults are the CI gate's (README, "Catching regressions"), measured by
    benchmarks/false_alarms.py."""

    threshold: float = 0.07  # relative change of the statistic that matters
    alpha: float = 0.002  # significance level of the Mann-Whitney U test
    normalize: str | None = "case"  # None, "reference" or "case" (else the reference)
    statistic: str = "min"  # a key of STATISTICS
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0


# Each side of a comparison is the runs under one directory (one run per suite), as
# convbench.run.rundir.read_runs gives them.


def per_machine(runs: Sequence[Run]) -> list[Run]:
    """Where one side holds a suite from several machines (a --cluster run, read as one run per
    machine, labelled LABEL@HOST), each machine's rows go by SUITE@HOST, so that they are
    compared with the same machine's on the other side and never with another machine's."""
    shared = Counter(run.suite for run in runs)

    def machine(run: Run) -> str:
        return run.label.split("@", 1)[1] if "@" in run.label else str(run.meta.get("host"))

    return [replace(run, frame=run.frame.assign(suite=f"{run.suite}@{machine(run)}"))
            if shared[run.suite] > 1 else run for run in runs]


def _rows(runs: Sequence[Run]) -> pd.DataFrame:
    """One side's rows, one per KEY (where two directories hold the same, the later one's)."""
    if not runs:
        raise ValueError("nothing to compare: no runs on one side")
    return pd.concat([r.frame for r in runs], ignore_index=True) \
        .drop_duplicates(list(KEY), keep="last")


def _samples(runs: Sequence[Run]) -> Samples:
    """One side's raw samples, by KEY."""
    return {(run.suite, *key): values for run in runs for key, values in run.samples.items()}


def _process_of(runs: Sequence[Run]) -> Samples:
    """One side's process of each sample, by KEY, for the rows several processes timed."""
    return {(run.suite, *key): values for run in runs for key, values in run.processes.items()}


def _where(runs: Sequence[Run]) -> str:
    """The directory that holds one side's runs, to name it in a message."""
    return os.path.commonpath([str(r.directory) for r in runs]) if runs else "(no runs)"


def bootstrap_ratio_ci(base: np.ndarray, new: np.ndarray, confidence: float = 0.95,
                       resamples: int = 2000, seed: int = 0, quantile: float = 0.5
                       ) -> tuple[float, float]:
    """Percentile bootstrap interval of q(new) / q(base) for the `quantile` q (the median by
    default), resampling both sides."""
    rng = np.random.default_rng(seed)
    base_q = np.quantile(rng.choice(base, (resamples, len(base))), quantile, axis=1)
    new_q = np.quantile(rng.choice(new, (resamples, len(new))), quantile, axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(new_q / base_q, [tail, 1 - tail])
    return float(low), float(high)


def mann_whitney_p(base: np.ndarray, new: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 where it is undefined (too few or all equal)."""
    if min(len(base), len(new)) < 2 or np.ptp(np.concatenate([base, new])) == 0:
        return 1.0
    return float(mannwhitneyu(base, new, alternative="two-sided").pvalue)


def smallest_p(n_base: int, n_new: int) -> float:
    """The smallest two-sided p-value Mann-Whitney U can give for these sample counts."""
    return 2.0 / math.comb(n_base + n_new, n_base) if n_base and n_new else 1.0


def machine_factors(base: Sequence[Run], new: Sequence[Run], quantile: float
                    ) -> dict[tuple[str, str, str], float]:
    """How much slower the machine was in NEW than in BASE, per (suite, backend, direction):
    the geometric mean, over the cases where the suite's reference algorithm is ok in both runs,
    of the ratio new/base of the reference's statistic."""
    references = {run.suite: run.reference for run in base}
    logs: dict[tuple[str, str, str], list[float]] = {}
    for key, (b, n) in _timed_in_both(base, new).items():
        if key[2] == references.get(key[0], DEFAULT_REFERENCE):
            logs.setdefault(_suite_group(key), []).append(math.log(_ratio(b, n, quantile)))
    return {group: math.exp(sum(v) / len(v)) for group, v in logs.items()}


CASE_MIN_ALGORITHMS = 5


def case_factors(base: Sequence[Run], new: Sequence[Run], quantile: float
                 ) -> dict[tuple[str, str, str, str], float]:
    """How much slower the machine was in NEW than in BASE while each case ran, per (suite,
    case, backend, direction): the median over the case's algorithms timed in both runs of
    their ratio new/base, where at least CASE_MIN_ALGORITHMS were. Selectors (`auto`: rows
    that ran another algorithm) are left out, as they time the same function twice."""
    selectors = _selectors(base) | _selectors(new)
    ratios: dict[tuple[str, str, str, str], list[float]] = {}
    for key, (b, n) in _timed_in_both(base, new).items():
        if key not in selectors:
            ratios.setdefault(_case_group(key), []).append(_ratio(b, n, quantile))
    return {group: float(np.median(v)) for group, v in ratios.items()
            if len(v) >= CASE_MIN_ALGORITHMS}


def _suite_group(key: tuple[str, ...]) -> tuple[str, str, str]:
    suite, _, _, backend, direction = key
    return suite, backend, direction


def _case_group(key: tuple[str, ...]) -> tuple[str, str, str, str]:
    suite, case, _, backend, direction = key
    return suite, case, backend, direction


# Each --normalize: its factors, the group of a key that a factor belongs to, and the note of a
# row whose group has none.
NORMALIZATIONS: dict[str, tuple[Callable[..., dict], Callable[[tuple[str, ...]], tuple], str]] = {
    "reference": (machine_factors, _suite_group,
                  "reference not timed in both runs: not normalized"),
    "case": (case_factors, _case_group,
             f"fewer than {CASE_MIN_ALGORITHMS} algorithms timed in both runs and the reference "
             "not timed in both: not normalized"),
}
CASE_FALLBACK_NOTE = (f"fewer than {CASE_MIN_ALGORITHMS} algorithms timed in both runs: "
                      "normalized by the reference")


def process_statistics(samples: np.ndarray, process_of: np.ndarray | None, quantile: float
                       ) -> np.ndarray:
    """The statistic (at `quantile`) of each process's samples; one value for a row that one
    process timed."""
    if process_of is None or len(process_of) != len(samples):
        return np.array([np.quantile(samples, quantile)])
    return np.array([np.quantile(samples[process_of == i], quantile)
                     for i in np.unique(process_of)])


def beyond_process_spread(b_stats: np.ndarray, n_stats: np.ndarray, slower: bool) -> bool:
    """Whether a change clears the spread between processes in both runs: every process of NEW
    slower than every process of BASE (or, for `slower=False`, faster). With one process on
    each side this is the ratio's own direction."""
    return bool(n_stats.min() > b_stats.max()) if slower else bool(n_stats.max() < b_stats.min())


def _ratio(base: np.ndarray, new: np.ndarray, quantile: float) -> float:
    """new/base of the statistic at `quantile` of one key's samples."""
    return float(np.quantile(new, quantile) / np.quantile(base, quantile))


def _selectors(runs: Sequence[Run]) -> set[tuple[str, ...]]:
    """Rows whose ran_algo names another algorithm than their own."""
    frame = _rows(runs)
    if "ran_algo" not in frame:
        return set()
    ran = frame["ran_algo"].fillna("").astype(str)
    picked = (ran != "") & (ran != frame["algo"].astype(str))
    return set(_keys(frame[picked]))


def _ok_keys(frame: pd.DataFrame) -> set[tuple[str, ...]]:
    return {k for k, status in zip(_keys(frame), frame["status"]) if status == "ok"}


def _timed_in_both(base: Sequence[Run], new: Sequence[Run]
                   ) -> dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]]:
    """Keys ok in both runs, with raw samples in both: (base samples, new samples) by key."""
    b_samples, n_samples = _samples(base), _samples(new)
    ok = _ok_keys(_rows(base)) & _ok_keys(_rows(new))
    return {k: (b_samples[k], n_samples[k]) for k in ok if k in b_samples and k in n_samples}


def _keys(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    return list(frame[list(KEY)].itertuples(index=False, name=None))


def _timed_samples(samples: tuple[Samples, Samples], key: tuple[str, ...], factors: dict | None,
                   normalize: str | None) -> tuple[np.ndarray | None, np.ndarray | None, bool, str]:
    """(base samples, new samples divided by the machine or case factor, normalized?, note). A
    case with too few algorithms falls back to the reference's factor (`factors` holds both)."""
    b, n = samples[0].get(key), samples[1].get(key)
    if factors is None or normalize is None or b is None or n is None:
        return b, n, False, ""
    _, group_of, missing = NORMALIZATIONS[normalize]
    group = group_of(key)
    if group in factors:
        return b, n / factors[group], True, ""
    if normalize == "case" and _suite_group(key) in factors:
        return b, n / factors[_suite_group(key)], True, CASE_FALLBACK_NOTE
    return b, n, False, missing


def _classify_timed(b: np.ndarray, n: np.ndarray, options: CompareOptions,
                    processes: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
                    ) -> dict[str, Any]:
    """The change of one timed pair: beyond the threshold, significant, and beyond the spread
    between processes in both runs (`processes`: the process of each sample, where known)."""
    quantile = STATISTICS[options.statistic]
    ratio = float(np.quantile(n, quantile) / np.quantile(b, quantile))
    low, high = bootstrap_ratio_ci(b, n, options.confidence, options.resamples, options.seed,
                                   quantile)
    p = mann_whitney_p(b, n)
    significant = p < options.alpha
    b_stats = process_statistics(b, processes[0], quantile)
    n_stats = process_statistics(n, processes[1], quantile)
    slower = ratio > 1 + options.threshold
    change, note = "unchanged", ""
    if significant and (slower or ratio < 1 / (1 + options.threshold)):
        if beyond_process_spread(b_stats, n_stats, slower):
            change = "regressed" if slower else "improved"
        else:
            note = (f"within the spread between processes ({options.statistic} per process: "
                    f"base {_span(b_stats)}, new {_span(n_stats)})")
    if smallest_p(len(b), len(n)) >= options.alpha:
        note = f"too few samples ({len(b)}, {len(n)}) to reach p < {options.alpha:g}"
    return {"change": change, "ratio": ratio, "ci_low": low, "ci_high": high, "p_value": p,
            "note": note}


def _span(values: np.ndarray) -> str:
    return "/".join(format_time(float(v)) for v in sorted(values))


def _classify_pair(samples: tuple[Samples, Samples], key: tuple[str, ...], b_row: pd.Series,
                   n_row: pd.Series, options: CompareOptions, factors: dict | None,
                   processes: tuple[Samples, Samples] = ({}, {})) -> dict[str, Any]:
    b_status, n_status = b_row["status"], n_row["status"]
    if n_status in FAILING and b_status not in FAILING:
        return {"change": "now failing", "note": f"{n_status}: {n_row['reason']}"}
    if b_status != "ok" or n_status != "ok":
        same = b_status == n_status
        return {"change": "not timed" if same else "not compared",
                "note": f"{n_status} in both runs" if same else f"{b_status} -> {n_status}"}
    b, n, normalized, note = _timed_samples(samples, key, factors, options.normalize)
    if b is None or n is None:
        return {"change": "unchanged", "ratio": n_row["time_median_s"] / b_row["time_median_s"],
                "note": "no raw samples: significance not tested"}
    found = _classify_timed(b, n, options, (processes[0].get(key), processes[1].get(key)))
    found["note"] = "; ".join(x for x in (note, found["note"]) if x)
    return found | {"normalized": normalized}


def compare(base: Sequence[Run], new: Sequence[Run], options: CompareOptions = CompareOptions()
            ) -> pd.DataFrame:
    """One row per key of either side: its change, the ratio, its CI and p-value, and a note.
    Each side is the runs of a directory (`read_runs`). With normalization,
    ``.attrs["machine_factors"]`` holds the factor of each (suite, backend, direction), or with
    normalize="case" of each (suite, case, backend, direction); then the reference's factors,
    which cases with too few algorithms fall back to, are in ``.attrs["reference_factors"]``."""
    base, new = per_machine(base), per_machine(new)
    b_rows, n_rows = _rows(base).set_index(list(KEY)), _rows(new).set_index(list(KEY))
    common = b_rows.index.intersection(n_rows.index)
    if len(common) == 0:
        raise ValueError(f"{_where(base)} and {_where(new)} have no (suite, case, algorithm, "
                         "backend, direction) in common")
    quantile = STATISTICS[options.statistic]
    factors = NORMALIZATIONS[options.normalize][0](base, new, quantile) \
        if options.normalize else None
    fallback = machine_factors(base, new, quantile) if options.normalize == "case" else {}
    samples = _samples(base), _samples(new)
    processes = _process_of(base), _process_of(new)
    out = []
    for key in b_rows.index.union(n_rows.index, sort=False):
        b_row = b_rows.loc[key] if key in b_rows.index else None
        n_row = n_rows.loc[key] if key in n_rows.index else None
        if b_row is None:
            found = {"change": "new", "note": str(n_row["status"])}
        elif n_row is None:
            found = {"change": "missing", "note": f"was {b_row['status']}"}
        else:
            found = _classify_pair(samples, key, b_row, n_row, options,
                                   None if factors is None else fallback | factors, processes)
        out.append(dict(zip(KEY, key)) | _statuses(b_row, n_row) | found)
    table = _ordered(pd.DataFrame(out))
    table.attrs["machine_factors"] = factors or {}
    table.attrs["reference_factors"] = fallback
    table.attrs["normalize"] = options.normalize
    return table


def _statuses(b_row: pd.Series | None, n_row: pd.Series | None) -> dict[str, Any]:
    def get(row: pd.Series | None, column: str) -> Any:
        return None if row is None else row[column]

    return {"base_status": get(b_row, "status"), "new_status": get(n_row, "status"),
            "base_median_s": get(b_row, "time_median_s"),
            "new_median_s": get(n_row, "time_median_s")}


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("ratio", "ci_low", "ci_high", "p_value"):
        if column not in frame:
            frame[column] = math.nan
    frame["normalized"] = frame.get("normalized", pd.Series(False, index=frame.index)) \
        .eq(True)
    rank = frame["change"].map(CHANGES.index)
    return frame.assign(_rank=rank).sort_values("_rank", kind="stable").drop(columns="_rank") \
        .reset_index(drop=True)


def gate_failed(comparison: pd.DataFrame) -> bool:
    """Whether a comparison holds a regression or a newly failing result (exit 1)."""
    return bool(comparison["change"].isin(EXIT_CHANGES).any())


def confirmed(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """The rows of `second` that regressed or newly failed in both comparisons. A real regression
    shows in the same rows twice; a noisy machine's false alarms seldom do (README, "Catching
    regressions")."""
    def keys(table: pd.DataFrame) -> list[tuple[str, ...]]:  # as text, as compare.csv holds them
        return list(table[list(KEY)].fillna("").astype(str).itertuples(index=False, name=None))

    def failing(table: pd.DataFrame) -> set[tuple[str, ...]]:
        return set(keys(table[table["change"].isin(EXIT_CHANGES)]))

    both = failing(first) & failing(second)
    return second[[key in both for key in keys(second)]]


def _by_suite(runs: Sequence[Run]) -> dict[str, Run]:
    """One side's runs by suite (where two directories hold the same suite, the later one)."""
    return {run.suite: run for run in runs}


def warnings_for(base: Sequence[Run], new: Sequence[Run]) -> list[str]:
    """What a reader should know before trusting the comparison."""
    found = []
    base_runs, new_runs = _by_suite(base), _by_suite(new)
    for label, runs in (("base", base_runs), ("new", new_runs)):
        found += [f"{label} run of {suite}: {run.noise_warning}"
                  for suite, run in runs.items() if run.noise_warning]
    for suite in [s for s in base_runs if s in new_runs]:
        if machine_fingerprint(base_runs[suite].meta) != machine_fingerprint(new_runs[suite].meta):
            found.append(f"{suite}: the two runs come from different machines or BLAS "
                         "set-ups; absolute times do not carry over (--normalize reference helps)")
    return found
