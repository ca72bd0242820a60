"""The report's PNG figures, drawn from a SuiteView with matplotlib's Agg backend (no display).

Each figure is a function (view, style) -> Figure | None; None when the suite has nothing for
it to show (no ok results, no grid for the algorithm map)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # only here, when figures are drawn: importing convbench never does it

from matplotlib.figure import Figure

from convbench.report.figures.algorithm_map import algorithm_map
from convbench.report.figures.cases import time_per_case, workspace_per_algorithm
from convbench.report.figures.plan import time_by_layer
from convbench.report.figures.roofline import accuracy_vs_time, roofline
from convbench.report.figures.speedup import speedup_heatmap
from convbench.report.figures.style import RC, Style
from convbench.report.frame import SuiteView

Draw = Callable[[SuiteView, Style], Figure | None]


@dataclass(frozen=True)
class FigureKind:
    name: str
    title: str
    draw: Draw
    how_to_read: str


@dataclass(frozen=True)
class RenderedFigure:
    kind: FigureKind
    filename: str
    png: bytes


FIGURES: tuple[FigureKind, ...] = (
    FigureKind("time", "Time per case", time_per_case,
               "Median time per call of each algorithm on each case, log scale: left is faster. "
               "A factor of 10 is the same distance anywhere on the axis."),
    FigureKind("speedup", "Speedup heatmap", speedup_heatmap,
               "Reference time / algorithm time. Blue cells beat the reference, red ones lose to "
               "it, white is a tie. Grey cells did not run ok: the word says why."),
    FigureKind("roofline", "Roofline", roofline,
               "Each point is one algorithm on one case: FLOPs per byte moved across, achieved "
               "GFLOP/s up. Dashed: the machine's SGEMM peak; dotted: its copy bandwidth. A point "
               "near the roof uses the machine well; one far below leaves time on the table."),
    FigureKind("accuracy", "Accuracy vs time", accuracy_vs_time,
               "One point per algorithm and case: its time relative to the fastest algorithm "
               "on that case (1x is the fastest) across, its error as a share of the tolerance "
               "(0 exact, 1 at the limit) up. Filled points are on their case's Pareto front: "
               "no other algorithm is both at least as fast and at least as accurate there. "
               "The grey steps join each case's front."),
    FigureKind("algorithm_map", "Algorithm map", algorithm_map,
               "The fastest algorithm in each cell of a kernel size x input size grid, with its "
               "lead over the runner-up. Drawn for suites whose cases form such a grid "
               "(suites/sweep.toml)."),
    FigureKind("plan", "Time by layer per strategy", time_by_layer,
               "A network's layers in order across; each layer's time per call times how often "
               "it occurs up (log scale), for the reference alone, auto as it ran, and the "
               "per-layer best. The gap between the lines is what choosing per layer buys on "
               "each layer. Drawn for network suites."),
    FigureKind("workspace", "Workspace memory", workspace_per_algorithm,
               "Memory each call needs beyond its inputs and output. Filled: measured with "
               "tracemalloc; hollow: the algorithm's analytic model. The axis is linear below "
               "1 KiB, so that zero shows, and logarithmic above."),
)


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def slug(text: str) -> str:
    """A file-name-safe form of a suite name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "suite"


def draw(kind: FigureKind, view: SuiteView, style: Style) -> Figure | None:
    with matplotlib.rc_context(RC):
        return kind.draw(view, style)


def render(view: SuiteView, style: Style) -> list[RenderedFigure]:
    """Every figure the suite has data for, as PNG bytes."""
    rendered = []
    for kind in FIGURES:
        with matplotlib.rc_context(RC):
            figure = kind.draw(view, style)
            if figure is not None:
                filename = f"{slug(view.suite)}-{kind.name}.png"
                rendered.append(RenderedFigure(kind, filename, png_bytes(figure)))
    return rendered
