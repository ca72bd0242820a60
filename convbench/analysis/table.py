"""The comparison table printed at the end of a run: cases x algorithms, median time and speedup
against the reference, the best in each row marked; the same as Markdown (a CI job's summary);
and the lines after it: geometric means, failures, and what did not run and why."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from convbench.analysis.speedups import format_time, geomean_speedups, speedups
from convbench.run.progress import NOT_RUN

STATUS_STYLE = {"wrong": "bold red", "error": "red", "oom": "magenta", "unsupported": "dim",
                "skipped": "dim"}
FAILED = ("wrong", "error", "oom")  # listed one by one after the table, with their reasons

Cell = tuple[str, str]  # (text, rich style)


def _cell(row: pd.Series, best: bool) -> Cell:
    if row["status"] != "ok":
        return str(row["status"]), STATUS_STYLE.get(row["status"], "")
    text = format_time(row["time_median_s"])
    if not math.isnan(row.get("speedup", math.nan)):
        text += f" {row['speedup']:.2f}x"
    if row.get("noisy") in (True, "True"):
        text += " ~"
    return (f"*{text}", "bold green") if best else (text, "")


def caption(reference: str) -> str:
    return f"median time, speedup vs {reference}; * fastest in row; ~ noisy (IQR > 10% of median)"


def table_cells(frame: pd.DataFrame, reference: str) -> tuple[list[str], list[list[Cell]]]:
    """Header and rows of (text, style), shared by the terminal table and the Markdown one."""
    algos = list(dict.fromkeys(frame["algo"]))
    directions = _directions(frame)
    header = ["case", *([] if directions is None else ["direction"]), *algos]
    timed = frame.merge(speedups(frame, reference)[["case", "algo", "backend", "speedup"]],
                        on=["case", "algo", "backend"], how="left")
    rows = []
    for (case, backend), group in timed.groupby(["case", "backend"], sort=False):
        ok = group[group["status"] == "ok"]
        best = ok.loc[ok["time_median_s"].idxmin(), "algo"] if len(ok) else None
        cells = {r["algo"]: _cell(r, r["algo"] == best) for _, r in group.iterrows()}
        label = case if backend == "numpy" else f"{case} [{backend}]"
        labels = [label] + ([] if directions is None else [directions[case]])
        rows.append([(text, "") for text in labels] + [cells.get(a, ("", "")) for a in algos])
    return header, rows


def comparison_table(frame: pd.DataFrame, reference: str, title: str = "") -> Table:
    header, rows = table_cells(frame, reference)
    table = Table(title=title or None, caption=caption(reference))
    labels = 2 if header[1:2] == ["direction"] else 1  # then one column per algorithm
    for index, name in enumerate(header):
        table.add_column(escape(name), justify="left" if index < labels else "right")
    for row in rows:
        table.add_row(*(f"[{style}]{escape(text)}[/]" if style else escape(text)
                        for text, style in row))
    return table


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """GitHub Markdown table lines, pipes in cells escaped."""
    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def _markdown_cell(text: str, style: str) -> str:
    text = text.replace("*", "\\*").replace("~", "\\~")  # the marks, not emphasis or strikeout
    return f"**{text}**" if style == "bold green" else text


def comparison_markdown(frame: pd.DataFrame, reference: str, title: str) -> str:
    """The table as GitHub Markdown (the fastest in bold), the geometric means and failures
    under it."""
    header, rows = table_cells(frame, reference)
    body = [[_markdown_cell(text, style) for text, style in row] for row in rows]
    notes = [f"- {text}" for text in [*geomean_lines(frame, reference), *failure_lines(frame)]]
    return "\n".join([f"### {title}", "", *markdown_table(header, body), "",
                      f"_{caption(reference)}_", "", *notes]) + "\n"


def _directions(frame: pd.DataFrame) -> dict[str, str] | None:
    """Each case's direction (fwd, bwd_data, bwd_weight), when some case is not forward; None
    for an all-forward table (which then has no direction column)."""
    if "direction" not in frame.columns:
        return None
    by_case = frame.groupby("case", sort=False)["direction"].first().replace("", "fwd")
    return None if (by_case == "fwd").all() else by_case.to_dict()


def geomean_lines(frame: pd.DataFrame, reference: str) -> list[str]:
    means = geomean_speedups(frame, reference)
    listed = ", ".join(f"{algo} {value:.2f}x" for algo, value in means.items())
    return [f"geometric-mean speedup vs {reference}: {listed}"] if means else []


def failure_lines(frame: pd.DataFrame) -> list[str]:
    """'wrong: tiny_3x3 t_bad: normalised error ...', one per wrong, failing or oom result."""
    bad = frame[frame["status"].isin(FAILED)]
    return [f"{row['status']}: {row['case']} {row['algo']}: {row['reason']}"
            for _, row in bad.iterrows()]


def not_run_lines(frame: pd.DataFrame) -> list[str]:
    """The unsupported and skipped results, one line per status and reason: the algorithms that
    gave it, on which cases ("on every case" when on all of them), and the reason."""
    refused = frame[frame["status"].isin(NOT_RUN)]
    every_case = set(frame["case"])
    return [f"{status}: {_where(rows, every_case)}: {reason}"
            for (status, reason), rows in refused.groupby(["status", "reason"], sort=False)]


def _where(rows: pd.DataFrame, every_case: set[str]) -> str:
    """'a, b on every case; c on tiny_1x1': the algorithms grouped by the cases they share."""
    by_algo = rows.groupby("algo", sort=False)["case"].agg(lambda c: tuple(dict.fromkeys(c)))
    groups: dict[tuple[str, ...], list[str]] = {}
    for algo, cases in by_algo.items():
        groups.setdefault(cases, []).append(str(algo))
    return "; ".join(f"{', '.join(algos)} on "
                     f"{'every case' if set(cases) == every_case else ', '.join(cases)}"
                     for cases, algos in groups.items())


def render(frame: pd.DataFrame, reference: str, console: Console, title: str = "",
           reasons: bool = False) -> None:
    """The table, the geometric means and the failures; with `reasons`, the results that did
    not run too (a log, where no progress line showed them)."""
    console.print(comparison_table(frame, reference, title))
    for text in geomean_lines(frame, reference):
        console.print(escape(text))
    for _, row in frame[frame["status"].isin(FAILED)].iterrows():
        where = escape(f"{row['case']} {row['algo']}: {row['reason']}")
        console.print(f"[red]{row['status']}[/]: {where}", highlight=False)
    if reasons:
        print_not_run(frame, console)


def print_not_run(frame: pd.DataFrame, console: Console) -> None:
    lines = not_run_lines(frame)
    if lines:
        console.print(f"not run ({int(frame['status'].isin(NOT_RUN).sum())} results):")
        for text in lines:
            console.print(f"  {escape(text)}")
