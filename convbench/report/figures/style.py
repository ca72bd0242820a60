"""What every figure shares: one colour per algorithm and one marker per run across the whole
report, figure sizes, axis formatters, and the rc settings they are drawn under."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from convbench.algorithms.registry import DEFAULT_REFERENCE
from convbench.report.summary import format_bytes
from convbench.analysis.speedups import format_time

DPI = 110
# Case and algorithm names are user text: never read them as mathtext ("$x$").
RC = {
    "text.parse_math": False, "font.size": 9, "axes.titlesize": 11, "axes.titleweight": "bold",
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "legend.fontsize": 8, "legend.frameon": False, "savefig.dpi": DPI,
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5")
REFERENCE_COLOR = "#555555"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


@dataclass(frozen=True)
class Style:
    """Colours by algorithm label, markers by run: the same in every figure of a report."""

    colors: dict[str, str]
    markers: dict[str, str]

    @classmethod
    def for_frame(cls, frame: pd.DataFrame, references: Collection[str] = (DEFAULT_REFERENCE,)) -> Style:
        """References in grey, every other algorithm its own colour, in order of appearance."""
        algos = [a for a in dict.fromkeys(frame["algo_label"]) if a not in references]
        colors = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(algos)}
        colors |= {r: REFERENCE_COLOR for r in references}
        runs = dict.fromkeys(frame["run"])
        return cls(colors, {r: MARKERS[i % len(MARKERS)] for i, r in enumerate(runs)})

    def of(self, rows: pd.DataFrame) -> dict[str, str]:
        """Colour and marker of one series' rows (one algorithm label, one run)."""
        first = rows.iloc[0]
        return {"color": self.colors.get(first["algo_label"], REFERENCE_COLOR),
                "marker": self.markers.get(first["run"], "o")}


def new_figure(width_in: float, height_in: float) -> Figure:
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def height_for(rows: int, per_row_in: float = 0.32, minimum_in: float = 3.0,
               legend_entries: int = 0) -> float:
    """Inches for `rows` rows of data, and tall enough for a legend of so many entries."""
    return max(minimum_in, 1.6 + per_row_in * rows, 1.0 + 0.19 * legend_entries)


def ordered(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def series_offsets(names: list[str], spread: float = 0.7) -> dict[str, float]:
    """Vertical offsets that keep the series of one case row from hiding each other."""
    count = len(names)
    return {n: (i - (count - 1) / 2) * spread / max(count, 1) for i, n in enumerate(names)}


def case_axis(ax: Axes, cases: list[str]) -> dict[str, int]:
    """Cases down the y axis, first at the top; returns each case's row."""
    ax.set_yticks(range(len(cases)), cases)
    ax.set_ylim(len(cases) - 0.5, -0.5)
    ax.grid(False, axis="y")
    for row in range(len(cases)):
        ax.axhline(row, color="#dddddd", linewidth=0.6, zorder=0)
    return {c: i for i, c in enumerate(cases)}


def decade_axis(ax: Axes, values: pd.Series, axis: str = "x",
                label: Callable[[float], str] = lambda v: f"{v:g}") -> None:
    """A log axis snapped to whole decades (so that at least two ticks are labelled), labels in
    plain text: the rc settings turn mathtext, and so matplotlib's 10^k labels, off."""
    low, high = float(values.min()), float(values.max())
    limits = (10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high)))
    if limits[0] == limits[1]:
        limits = (limits[0], limits[1] * 10)
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    (ax.set_xlim if axis == "x" else ax.set_ylim)(*limits)
    target.set_major_formatter(FuncFormatter(lambda v, _: label(v)))
    target.set_minor_formatter(NullFormatter())


def log_time_axis(ax: Axes, seconds: pd.Series, axis: str = "x") -> None:
    """A decade log axis in s, ms, us or ns."""
    decade_axis(ax, seconds, axis, format_time)


def bytes_axis(ax: Axes, largest_bytes: float) -> None:
    """A symlog x axis in bytes: linear below 1 KiB so that zero shows, powers of 2 above."""
    top = max(10, math.ceil(math.log2(max(largest_bytes, 1024))))
    step = max(1, math.ceil((top - 10) / 7))
    ticks = [0.0] + [2.0**e for e in range(10, top + step, step)]
    ax.set_xscale("symlog", base=2, linthresh=1024, linscale=0.5)
    ax.set_xlim(0, ticks[-1] * 1.5)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_bytes(v) if v else "0"))
    ax.xaxis.set_minor_formatter(NullFormatter())
