"""report.md: the summary to paste into a pull request (GitHub-flavoured Markdown tables).

User strings go into code spans, where nothing is interpreted; only `|` must be escaped there,
and backticks are replaced. Free text (reasons) has its Markdown and HTML characters escaped."""

from __future__ import annotations

import re
from collections.abc import Sequence

from convbench.report import summary
from convbench.report.frame import SuiteView
from convbench.run.rundir import Run


def code(text: object) -> str:
    value = str(text).replace("`", "'").replace("|", "\\|").replace("\n", " ")
    return f"`{value}`" if value else ""


def plain(text: object) -> str:
    value = re.sub(r"([\\`*_{}\[\]<>#|!~])", r"\\\1", str(text))
    return value.replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _runs(runs: Sequence[Run]) -> list[str]:
    facts = dict(summary.metadata_rows(runs))
    rows = [[code(r.label), plain(facts["CPU"][i]), plain(facts["threads"][i]),
             plain(facts["BLAS and OpenMP"][i]), plain(facts["machine peaks"][i]),
             code(facts["commit"][i])] for i, r in enumerate(runs)]
    return table(["run", "CPU", "threads", "BLAS", "peaks", "commit"], rows)


def _winners(view: SuiteView) -> list[str]:
    header = ["case"] + [f"fastest ({plain(run)})" if len(view.runs) > 1 else "fastest"
                         for run in view.runs]
    rows = [[code(row.case)] + [f"{code(w.algo)} {w.time} ({w.speedup or 'n/a'})" if w
                                else "none ok" for w in row.winners]
            for row in summary.winner_rows(view)]
    return table(header, rows)


def _section(view: SuiteView) -> list[str]:
    lines = [f"## {plain(view.suite)}", ""]
    counts = ", ".join(f"{n} {s}" for s, n in summary.status_counts(view).items())
    noisy = summary.noisy_count(view)
    lines += [f"{counts}; {noisy} noisy. Speedups vs {code(view.reference)} in brackets.", ""]
    lines += _winners(view) + [""]
    geomeans = summary.geomean_rows(view)
    if geomeans:
        lines += [f"Geometric-mean speedup vs {code(view.reference)}:", ""]
        runs = [plain(r) for r in view.runs] if len(view.runs) > 1 else ["speedup"]
        lines += table(["algorithm", *runs],
                       [[code(a), *values] for a, values in geomeans]) + [""]
    for p in summary.problem_rows(view):
        lines.append(f"- **{p['status']}** {code(p['case'])} {code(p['algo'])}: "
                     f"{plain(p['reason'])}")
    return lines + [""]


def render_markdown(runs: Sequence[Run], views: Sequence[SuiteView]) -> str:
    lines = ["# convbench report", ""] + _runs(runs) + [""]
    for view in views:
        lines += _section(view)
    return "\n".join(lines)
