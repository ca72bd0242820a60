"""What the report's tables say, as plain rows of text: shared by the HTML and Markdown writers.

Numbers are formatted here once; escaping is the writers' job."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from convbench.analysis.speedups import format_time, geomean_speedups
from convbench.report.frame import SuiteView
from convbench.report.load import peaks_of
from convbench.run.rundir import Run

PROBLEM_STATUSES = ("wrong", "error", "oom")


@dataclass(frozen=True)
class Winner:
    """The fastest ok algorithm of one case in one run."""

    algo: str
    time: str
    speedup: str


@dataclass(frozen=True)
class WinnerRow:
    case: str
    descriptor: str
    winners: list[Winner | None]  # one per run of the suite


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def format_speedup(value: Any) -> str:
    """2 decimals, or 2 significant digits below 0.1x (0.0042x, not 0.00x)."""
    number = _number(value)
    if math.isnan(number):
        return ""
    return f"{number:.2f}x" if number >= 0.1 else f"{number:.2g}x"


def format_bytes(value: Any) -> str:
    number = _number(value)
    if math.isnan(number):
        return ""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if number >= scale:
            return f"{number / scale:.3g} {unit}"
    return f"{number:.0f} B"


def format_seconds(value: Any) -> str:
    number = _number(value)
    return "" if math.isnan(number) else format_time(number)


def format_float(value: Any, digits: int = 3) -> str:
    number = _number(value)
    return "" if math.isnan(number) else f"{number:.{digits}g}"


def winner_rows(view: SuiteView) -> list[WinnerRow]:
    """Per case: the fastest ok algorithm in each run, its time and its speedup."""
    rows = []
    for case, rows_of_case in view.frame.groupby("case_label", sort=False):
        winners = [_winner(rows_of_case[rows_of_case["run"] == run]) for run in view.runs]
        rows.append(WinnerRow(str(case), str(rows_of_case["descriptor"].iloc[0]), winners))
    return rows


def _winner(rows: pd.DataFrame) -> Winner | None:
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return None
    best = ok.loc[ok["time_median_s"].idxmin()]
    return Winner(str(best["algo_label"]), format_seconds(best["time_median_s"]),
                  format_speedup(best["speedup"]))


def geomean_rows(view: SuiteView) -> list[tuple[str, list[str]]]:
    """Per algorithm: geometric-mean speedup vs the reference in each run, with its case count."""
    cells: dict[str, list[str]] = {}
    for index, run in enumerate(view.runs):
        rows = view.frame[view.frame["run"] == run]
        labelled = rows.assign(case=rows["case_label"], algo=rows["algo_label"])
        counts = rows.dropna(subset=["speedup"]).groupby("algo_label").size()
        for algo, mean in geomean_speedups(labelled, view.reference).items():
            cells.setdefault(algo, [""] * len(view.runs))[index] = \
                f"{mean:.2f}x over {_cases(int(counts.get(algo, 0)))}"
    return list(cells.items())


def _cases(count: int) -> str:
    return f"{count} case" if count == 1 else f"{count} cases"


def status_counts(view: SuiteView) -> dict[str, int]:
    return {str(k): int(v) for k, v in view.frame["status"].value_counts().items()}


def noisy_count(view: SuiteView) -> int:
    return int(view.frame["noisy"].eq(True).sum()) if "noisy" in view.frame else 0


def problem_rows(view: SuiteView) -> list[dict[str, str]]:
    """Rows that failed (wrong, error, oom), with their reasons."""
    bad = view.frame[view.frame["status"].isin(PROBLEM_STATUSES)]
    return [{"case": str(r.case_label), "algo": str(r.algo_label), "run": str(r.run),
             "status": str(r.status), "reason": str(r.reason)} for r in bad.itertuples()]


def full_rows(view: SuiteView) -> list[dict[str, Any]]:
    """Every row of the suite, formatted for the full table."""
    return [_full_row(r) for r in view.frame.to_dict("records")]


def _full_row(r: dict[str, Any]) -> dict[str, Any]:
    timed = not math.isnan(_number(r.get("time_median_s")))
    time = format_seconds(r.get("time_median_s"))
    if timed and not math.isnan(_number(r.get("time_iqr_s"))):
        time += f" ± {format_seconds(r['time_iqr_s'])}"
    return {
        "case": r["case_label"], "descriptor": r["descriptor"], "algo": r["algo_label"],
        "run": r["run"], "status": r["status"],
        "reason": r.get("reason") or "", "mem_note": r.get("mem_note") or "",
        "time": time, "noisy": r.get("noisy") is True,
        "speedup": format_speedup(r.get("speedup")), "gflops": format_float(r.get("gflops")),
        "pct_peak": format_float(r.get("pct_peak"), 2),
        "error": format_float(r.get("norm_err"), 2),
        "tolerance": format_float(r.get("tolerance"), 2),
        "workspace": format_bytes(r.get("peak_mem_bytes")),
        "workspace_model": format_bytes(r.get("workspace_model_bytes")),
    }


def _blas(meta: dict[str, Any]) -> str:
    parts = []
    for lib in meta.get("blas", []):
        name = " ".join(str(lib.get(k)) for k in ("internal_api", "version", "architecture")
                        if lib.get(k))
        parts.append(f"{name}, {lib.get('num_threads')} threads")
    return "; ".join(parts)


def _engine(meta: dict[str, Any]) -> str:
    """The GEMM engine of numpy arrays' large products, and where it came from."""
    if "gemm_engine" not in meta:
        return "numpy (recorded before the engine was)"
    source = meta.get("gemm_engine_source")
    return f"{meta['gemm_engine']} ({source})" if source else str(meta["gemm_engine"])


def _cpu(meta: dict[str, Any]) -> str:
    cpu = meta.get("cpu", {})
    cores = f"{cpu.get('physical_cores')} cores, {cpu.get('logical_cores')} threads"
    return f"{cpu.get('model', '')} ({cores}), {format_bytes(cpu.get('memory_bytes'))} memory" \
        if cpu else ""


def _versions(meta: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items() if v)


def _commit(meta: dict[str, Any]) -> str:
    """convbench's version and commit; the project's commit when the run recorded one."""
    own, project = meta.get("convbench") or {}, meta.get("git") or {}
    parts = [f"convbench {own['version']}" if own.get("version") else ""]
    for label, source in (("", own), ("project ", project)):
        if source.get("commit"):
            dirty = " (uncommitted changes)" if source.get("dirty") else ""
            parts.append(f"{label}{source['commit'][:12]}{dirty}")
    return ", ".join(p for p in parts if p)


def _peaks(run: Run) -> str:
    peaks = peaks_of(run)
    return "not measured" if peaks is None else peaks.describe()


def peak_doubts(view: SuiteView) -> list[str]:
    """'run: SGEMM 52 GFLOP/s (measured ... under load 63%; suspect: ...)' for each run whose
    peak may not be trusted."""
    return [f"{run}: {peaks.describe()}" for run, peaks in view.peaks.items()
            if peaks and (peaks.note or peaks.suspect)]


def metadata_rows(runs: Sequence[Run]) -> list[tuple[str, list[str]]]:
    """What each run ran on, one row per fact, one column per run."""
    fields = [
        ("suite", lambda r: r.suite), ("directory", lambda r: str(r.directory)),
        ("date", lambda r: str(r.meta.get("date", ""))),
        ("host", lambda r: str(r.meta.get("host", ""))),
        ("CPU", lambda r: _cpu(r.meta)), ("machine peaks", _peaks),
        ("threads", lambda r: str(r.meta.get("threads", ""))),
        ("BLAS and OpenMP", lambda r: _blas(r.meta)),
        ("GEMM engine", lambda r: _engine(r.meta)),
        ("versions", lambda r: _versions(r.meta)), ("commit", lambda r: _commit(r.meta)),
        ("environment", lambda r: " ".join(f"{k}={v}" for k, v in r.meta.get("env", {}).items())
         or "none set"),
        ("platform", lambda r: str(r.meta.get("platform", ""))),
    ]
    return [(name, [get(r) for r in runs]) for name, get in fields]


def plan_rows(view: SuiteView) -> dict[str, Any] | None:
    """A network suite's plan (no workspace budget; `convbench plan` takes one): every
    strategy's end-to-end time, and per layer the fastest algorithm, its time x count and
    workspace. None outside networks."""
    from convbench.analysis.plan import make_plan

    if not view.network or view.ok.empty:
        return None
    rows = view.frame[view.frame["run"] == view.runs[0]] if view.runs else view.frame
    backend = "numpy" if "numpy" in set(rows["backend"]) else str(rows["backend"].iloc[0])
    plan = make_plan(rows, view.counts, view.reference, None, backend)
    strategies = [{"strategy": r.strategy, "total": format_seconds(r.total_s),
                   "covered": f"{r.covered}/{r.layers}", "vs": format_speedup(r.vs_reference)}
                  for r in plan.strategies.itertuples()]
    layers = [{"layer": r.layer, "count": str(r.count),
               "algo": r.algo if isinstance(r.algo, str) else "none",
               "time": format_seconds(r.time_s), "total": format_seconds(r.total_s),
               "workspace": format_bytes(r.workspace_bytes) if r.workspace_known else "unknown"}
              for r in plan.layers.itertuples()]
    return {"backend": backend, "run": view.runs[0] if view.runs else "",
            "strategies": strategies, "layers": layers}
