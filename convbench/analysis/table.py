"""The comparison table printed at the end of a run: cases x algorithms, median time and speedup
against the reference, the best in each row marked."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from convbench.analysis.speedups import format_time, geomean_speedups, speedups

STATUS_STYLE = {"wrong": "bold red", "error": "red", "oom": "magenta", "unsupported": "dim",
                "skipped": "dim"}


def _cell(row: pd.Series, best: bool) -> str:
    if row["status"] != "ok":
        style = STATUS_STYLE.get(row["status"], "")
        return f"[{style}]{row['status']}[/]" if style else str(row["status"])
    text = format_time(row["time_median_s"])
    if not math.isnan(row.get("speedup", math.nan)):
        text += f" {row['speedup']:.2f}x"
    if row.get("noisy") in (True, "True"):
        text += " ~"
    return f"[bold green]*{text}[/]" if best else text


def comparison_table(frame: pd.DataFrame, reference: str, title: str = "") -> Table:
    algos = list(dict.fromkeys(frame["algo"]))
    table = Table(title=title or None, caption=f"median time, speedup vs {reference}; "
                  "* fastest in row; ~ noisy (IQR > 10% of median)")
    table.add_column("case")
    directions = _directions(frame)
    if directions is not None:
        table.add_column("direction")
    for algo in algos:
        table.add_column(algo, justify="right")
    timed = frame.merge(speedups(frame, reference)[["case", "algo", "backend", "speedup"]],
                        on=["case", "algo", "backend"], how="left")
    for (case, backend), rows in timed.groupby(["case", "backend"], sort=False):
        ok = rows[rows["status"] == "ok"]
        best = ok.loc[ok["time_median_s"].idxmin(), "algo"] if len(ok) else None
        cells = {r["algo"]: _cell(r, r["algo"] == best) for _, r in rows.iterrows()}
        label = case if backend == "numpy" else f"{case} [{backend}]"
        labels = [escape(label)] + ([] if directions is None else [directions[case]])
        table.add_row(*labels, *(cells.get(a, "") for a in algos))
    return table


def _directions(frame: pd.DataFrame) -> dict[str, str] | None:
    """Each case's direction (fwd, bwd_data, bwd_weight), when some case is not forward; None
    for an all-forward table (which then has no direction column)."""
    if "direction" not in frame.columns:
        return None
    by_case = frame.groupby("case", sort=False)["direction"].first().replace("", "fwd")
    return None if (by_case == "fwd").all() else by_case.to_dict()


def render(frame: pd.DataFrame, reference: str, console: Console, title: str = "") -> None:
    console.print(comparison_table(frame, reference, title))
    means = geomean_speedups(frame, reference)
    if means:
        listed = ", ".join(f"{algo} {value:.2f}x" for algo, value in means.items())
        console.print(f"geometric-mean speedup vs {reference}: {listed}")
    bad = frame[frame["status"].isin(["wrong", "error", "oom"])]
    for _, row in bad.iterrows():
        where = escape(f"{row['case']} {row['algo']}: {row['reason']}")
        console.print(f"[red]{row['status']}[/]: {where}", highlight=False)
