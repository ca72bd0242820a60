"""A comparison (convbench.analysis.compare) as a terminal table, Markdown and a standalone HTML page."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
from rich.table import Table

from convbench.analysis.compare import CHANGES, EXIT_CHANGES, CompareOptions
from convbench.analysis.speedups import format_time
from convbench.analysis.table import markdown_table

STYLE = {"regressed": "bold red", "now failing": "bold red", "improved": "green",
         "new": "cyan", "missing": "yellow", "not compared": "dim", "unchanged": "",
         "not timed": "dim"}
HTML_COLOUR = {"regressed": "#f8d0d0", "now failing": "#f8d0d0", "improved": "#d4f4d4",
               "new": "#d8eefa", "missing": "#fbf0c8", "not compared": "#eeeeee",
               "unchanged": "#ffffff", "not timed": "#f4f4f4"}


def _time(value: Any) -> str:
    return "" if value is None or pd.isna(value) else format_time(float(value))


def _ratio(row: pd.Series) -> str:
    if pd.isna(row["ratio"]):
        return ""
    return f"{row['ratio']:.3f}"


def _ci(row: pd.Series) -> str:
    return "" if pd.isna(row["ci_low"]) else f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def _p(row: pd.Series) -> str:
    return "" if pd.isna(row["p_value"]) else f"{row['p_value']:.2g}"


def cells(comparison: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and rows of text shared by every format; suite, backend and direction columns
    only when they tell the rows apart."""
    extra = [c for c in ("suite", "backend", "direction") if comparison[c].nunique() > 1]
    header = ["change", *extra, "case", "algo", "base", "new", "new/base", "95% CI", "p", "note"]
    rows = [[r["change"], *(str(r[c]) for c in extra), r["case"], r["algo"],
             _time(r["base_median_s"]), _time(r["new_median_s"]), _ratio(r), _ci(r), _p(r),
             r["note"] if isinstance(r["note"], str) else ""]
            for _, r in comparison.iterrows()]
    return header, rows


def change_counts(comparison: pd.DataFrame) -> str:
    """'1 regressed, 20 unchanged, 53 not timed'."""
    counts = comparison["change"].value_counts()
    return ", ".join(f"{int(counts[c])} {c}" for c in CHANGES if c in counts)


def summary(comparison: pd.DataFrame) -> str:
    """change_counts, and the machine factors when times were normalized."""
    text = change_counts(comparison)
    factors = comparison.attrs.get("machine_factors") or {}
    if factors and comparison.attrs.get("normalize") == "case":
        return (f"{text}. Case factors new/base (median of the case's algorithms): "
                f"{min(factors.values()):.3f} to {max(factors.values()):.3f} over "
                f"{len(factors)} cases")
    listed = "; ".join(f"{suite} [{backend}, {direction}] {factor:.3f}"
                       for (suite, backend, direction), factor in sorted(factors.items()))
    return f"{text}. Machine factor new/base, from the reference: {listed}" if listed else text


def caption(options: CompareOptions) -> str:
    basis = {"reference": "times divided by the machine factor (the reference's new/base ratio "
             "over the suite)",
             "case": "times divided by the case factor (the median new/base ratio of the case's "
             "algorithms)"}.get(options.normalize or "", "raw times")
    return (f"regressed/improved: {options.statistic} ratio beyond {options.threshold:.0%} and "
            f"Mann-Whitney p < {options.alpha:g}; ratio and {options.confidence:.0%} bootstrap CI "
            f"on {basis}; base and new are raw medians")


def rich_table(comparison: pd.DataFrame, options: CompareOptions, title: str = "") -> Table:
    """The terminal table; rows not timed in either run are left out (the summary counts
    them)."""
    header, rows = cells(comparison[comparison["change"] != "not timed"])
    table = Table(title=title or None, caption=caption(options))
    for name in header:
        table.add_column(name, justify="right" if name in ("base", "new", "p") else "left")
    for row in rows:
        style = STYLE.get(row[0], "")
        table.add_row(*row, style=style or None)
    return table


def to_markdown(comparison: pd.DataFrame, options: CompareOptions, title: str) -> str:
    header, rows = cells(comparison)
    parts = [f"# {title}", "", summary(comparison), "", caption(options), "",
             *markdown_table(header, rows)]
    return "\n".join(parts) + "\n"


def to_html(comparison: pd.DataFrame, options: CompareOptions, title: str,
            warnings: list[str] | None = None) -> str:
    header, rows = cells(comparison)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join(
        f'<tr style="background:{HTML_COLOUR.get(r[0], "#fff")}">'
        + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
    notes = "".join(f"<li>{html.escape(w)}</li>" for w in warnings or [])
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{html.escape(summary(comparison))}</p>
<p>{html.escape(caption(options))}</p><ul>{notes}</ul>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table></body></html>
"""


def decision_markdown(comparison: pd.DataFrame, verdict: str, warnings: list[str]) -> str:
    """The decision for a CI job's summary page: the verdict, the counts, the warnings, and the
    rows that decided it (regressed or newly failing)."""
    deciding = comparison[comparison["change"].isin(EXIT_CHANGES)]
    header, rows = cells(deciding)
    parts = [f"## {verdict}", "", summary(comparison), "", *(f"- warning: {w}" for w in warnings)]
    table = markdown_table(header, rows) if rows else ["No regression and no newly failing result."]
    return "\n".join([*parts, "", *table]) + "\n"
