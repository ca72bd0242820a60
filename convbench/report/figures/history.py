"""A case's time over commits, from the results database: one line per algorithm and machine.

`history_figure` returns a matplotlib Figure (no pyplot, no display: it renders with Agg), so
the HTML report can embed it and `convbench history plot` can save it as PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sqlalchemy.engine import Engine

from convbench.analysis.history import case_history


def run_label(run: pd.Series) -> str:
    """'3f2a9c1+' over '2026-11-22': the commit (+ when dirty) and the date of a run."""
    commit = (run["commit"] or "no commit")[:7] + ("+" if run["dirty"] else "")
    return f"{commit}\n{str(run['date'])[:10]}"


def figure_from_history(history: pd.DataFrame, case: str) -> Figure:
    """The plot of `case_history` rows: x = runs by date, y = median time, IQR as error bars."""
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    ok = history[history["status"] == "ok"]
    runs = history.drop_duplicates("run_id")[["run_id", "date", "commit", "dirty"]]
    position = {run_id: i for i, run_id in enumerate(runs["run_id"])}
    for (algo, backend, machine), group in ok.groupby(["algo", "backend", "machine"],
                                                      sort=False):
        x = group["run_id"].map(position)
        label = f"{algo} [{backend}] @ {machine}"
        axes.errorbar(x, group["time_median_s"] * 1e3, yerr=group["time_iqr_s"] * 500,
                      marker="o", capsize=3, label=label)
    axes.set_xticks(range(len(runs)), [run_label(r) for _, r in runs.iterrows()], fontsize=7)
    axes.set_ylabel("median time per call (ms), IQR bars")
    axes.set_title(f"{case}: time over commits (machine = fingerprint)")
    if len(ok) and ok["time_median_s"].max() > 10 * ok["time_median_s"].min():
        axes.set_yscale("log")
    if len(ok):
        axes.legend(fontsize=7)
    else:
        axes.text(0.5, 0.5, f"no timed results for {case}", ha="center",
                  transform=axes.transAxes)
    return figure


def history_figure(db: str | Engine | None, case: str, suite: str | None = None,
                   algorithms: Sequence[str] | None = None, backend: str | None = None
                   ) -> Figure:
    """The time of `case` over the stored runs, as a matplotlib Figure (for reports)."""
    return figure_from_history(case_history(db, case, suite, algorithms, backend), case)


def save_history_png(db: str | Engine | None, case: str, path: Path | str,
                     suite: str | None = None, algorithms: Sequence[str] | None = None,
                     backend: str | None = None) -> Path:
    history = case_history(db, case, suite, algorithms, backend)
    if history.empty:
        raise ValueError(f"no stored results for case {case!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure_from_history(history, case).savefig(path, dpi=110)
    return path
