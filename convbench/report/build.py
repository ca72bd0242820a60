"""Putting a report together: load, derive, draw, write."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from convbench.report import HTML_FILE, MARKDOWN_FILE
from convbench.report.exports import write_exports
from convbench.report.figures import FIGURES, RenderedFigure, Style, render, slug
from convbench.report.frame import SuiteView, report_frame, suite_views
from convbench.report.html import render_html
from convbench.report.markdown import render_markdown
from convbench.run.rundir import load_runs


def write_figures(views: Sequence[SuiteView], style: Style, out_dir: Path,
                  ) -> dict[str, list[RenderedFigure]]:
    """The PNGs beside the page; a figure left over from an earlier report is removed."""
    drawn = {}
    for view in views:
        for kind in FIGURES:
            (out_dir / f"{slug(view.suite)}-{kind.name}.png").unlink(missing_ok=True)
        drawn[view.suite] = render(view, style)
        for figure in drawn[view.suite]:
            (out_dir / figure.filename).write_bytes(figure.png)
    return drawn


def build(paths: Sequence[Path], out_dir: Path, fmt: str) -> Path:
    runs = load_runs(paths)
    frame = report_frame(runs)
    views = suite_views(runs, frame)
    out_dir.mkdir(parents=True, exist_ok=True)
    exports = write_exports(frame, out_dir)
    if fmt == "md":
        page = out_dir / MARKDOWN_FILE
        page.write_text(render_markdown(runs, views), encoding="utf-8")
        return page
    style = Style.for_frame(frame, {v.reference for v in views})
    figures = write_figures(views, style, out_dir)
    page = out_dir / HTML_FILE
    page.write_text(render_html(runs, views, figures, [p.name for p in exports]),
                    encoding="utf-8")
    return page
