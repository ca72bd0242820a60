"""index.html: one self-contained page (inline CSS, figures embedded as data URIs, no
JavaScript), rendered with jinja2 from the report's tables. Every string is escaped."""

from __future__ import annotations

import base64
import datetime
import importlib.metadata
import importlib.resources
import re
from collections.abc import Sequence
from typing import Any

import jinja2

from convbench.report import summary
from convbench.report.figures import RenderedFigure
from convbench.report.frame import SuiteView
from convbench.run.rundir import Run

TEMPLATE = "index.html.j2"


def environment() -> jinja2.Environment:
    """Autoescaping on for every template, undefined names an error."""
    folder = importlib.resources.files("convbench.report") / "templates"
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def anchor(suite: str, index: int) -> str:
    """An id for a suite's section: letters, digits and dashes only, unique by its index."""
    return f"suite-{index}-{re.sub(r'[^A-Za-z0-9]+', '-', suite).strip('-').lower()}"


def _figure(figure: RenderedFigure) -> dict[str, str]:
    return {"name": figure.kind.name, "title": figure.kind.title,
            "how_to_read": figure.kind.how_to_read, "filename": figure.filename,
            "data": base64.b64encode(figure.png).decode("ascii")}


def section(view: SuiteView, index: int, figures: Sequence[RenderedFigure]) -> dict[str, Any]:
    return {
        "suite": view.suite, "anchor": anchor(view.suite, index), "runs": view.runs,
        "description": view.description, "reference": view.reference,
        "counts": summary.status_counts(view), "noisy": summary.noisy_count(view),
        "problems": summary.problem_rows(view), "winners": summary.winner_rows(view),
        "geomeans": summary.geomean_rows(view), "rows": summary.full_rows(view),
        "figures": [_figure(f) for f in figures],
        "has_peaks": any(p and p.usable_sgemm_gflops for p in view.peaks.values()),
        "plan": summary.plan_rows(view),
        "peak_doubts": summary.peak_doubts(view),
    }


def render_html(runs: Sequence[Run], views: Sequence[SuiteView],
                figures: dict[str, list[RenderedFigure]], exports: Sequence[str]) -> str:
    suites = ", ".join(v.suite for v in views)
    return environment().get_template(TEMPLATE).render(
        title=f"convbench report: {suites}" if suites else "convbench report",
        generated=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=importlib.metadata.version("convbench"),
        runs=[r.label for r in runs], metadata=summary.metadata_rows(runs),
        sections=[section(v, i, figures.get(v.suite, [])) for i, v in enumerate(views)],
        exports=list(exports))
