"""The algorithm map: which algorithm is fastest at each kernel size x input size, for suites
whose cases form such a grid (suites/sweep.toml). One panel per run (and direction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from convbench.problems import ConvProblem
from convbench.report.figures.style import Style, new_figure, ordered
from convbench.report.frame import SuiteView, problem_of

MISSING_COLOR = "#eeeeee"


def grid_axes(rows: pd.DataFrame) -> pd.DataFrame | None:
    """Each case's kernel (R, S) and input size (H, W), when the cases fill a kernel x input
    grid: at least 2 x 2, one case per cell, all else equal but padding. None otherwise."""
    cases = rows.drop_duplicates("case_label")
    problems = [problem_of(d) for d in cases["descriptor"]]
    convs = [p for p in problems if isinstance(p, ConvProblem)]
    if len(convs) != len(problems):
        return None
    kernels = [p.kernel for p in convs]
    sizes = [p.size for p in convs]
    rest = {(p.n, p.c, p.k, p.stride, p.dilation, p.groups, p.dtype, p.layout) for p in convs}
    count_k, count_s = len(set(kernels)), len(set(sizes))
    full = len(set(zip(kernels, sizes, strict=True))) == len(convs) == count_k * count_s
    if len(rest) != 1 or not full or count_k < 2 or count_s < 2:
        return None
    return pd.DataFrame({"case_label": cases["case_label"].to_numpy(), "kernel": kernels,
                         "size": sizes})


def winners(rows: pd.DataFrame) -> pd.DataFrame:
    """Per case: the fastest ok algorithm and how far ahead of the runner-up it is."""
    ok = rows[rows["status"] == "ok"].sort_values("time_median_s")
    best = ok.groupby("case_label", sort=False).head(2)
    out = []
    for case, two in best.groupby("case_label", sort=False):
        times = two["time_median_s"].to_numpy()
        margin = times[1] / times[0] if len(times) > 1 and times[0] > 0 else np.nan
        out.append({"case_label": case, "winner": two["algo_label"].iloc[0], "margin": margin})
    return pd.DataFrame(out, columns=["case_label", "winner", "margin"])


def map_cells(rows: pd.DataFrame) -> pd.DataFrame | None:
    """The grid with each cell's winner (NaN where nothing ran ok), or None without a grid."""
    grid = grid_axes(rows)
    return None if grid is None else grid.merge(winners(rows), on="case_label", how="left")


def _panels(view: SuiteView) -> list[tuple[str, pd.DataFrame]]:
    directions = view.frame.get("direction", pd.Series(dtype=str)).fillna("").nunique()
    keys = ["run"] + (["direction"] if directions > 1 else [])
    panels = []
    for key, rows in view.frame.groupby(keys, sort=False):
        cells = map_cells(rows)
        if cells is not None:
            panels.append((" · ".join(str(k) for k in key if str(k)), cells))
    return panels


def _draw_panel(ax: Axes, cells: pd.DataFrame, algos: list[str], cmap: ListedColormap) -> None:
    kernels, sizes = sorted(set(cells["kernel"])), sorted(set(cells["size"]))
    grid = np.full((len(sizes), len(kernels)), np.nan)
    for cell in cells.itertuples():
        if isinstance(cell.winner, str):
            grid[sizes.index(cell.size), kernels.index(cell.kernel)] = algos.index(cell.winner)
            ax.text(kernels.index(cell.kernel), sizes.index(cell.size),
                    f"{cell.winner}\n{cell.margin:.2f}x" if np.isfinite(cell.margin)
                    else cell.winner, ha="center", va="center", fontsize=7)
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-0.5, vmax=len(algos) - 0.5,
              origin="lower", aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(kernels)), ["×".join(map(str, k)) for k in kernels])
    ax.set_yticks(range(len(sizes)), ["×".join(map(str, s)) for s in sizes])
    ax.set_xlabel("kernel size")
    ax.set_ylabel("input size")
    ax.grid(False)


def algorithm_map(view: SuiteView, style: Style) -> Figure | None:
    panels = _panels(view)
    if not panels:
        return None
    algos = ordered(view.frame["algo_label"])
    cmap = ListedColormap([_light(style.colors.get(a, "#777777")) for a in algos])
    cmap = cmap.with_extremes(bad=MISSING_COLOR)
    figure = new_figure(min(16.0, 1.0 + 7.0 * len(panels)), 5.0)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, cells) in zip(axes, panels, strict=True):
        _draw_panel(ax, cells, algos, cmap)
        ax.set_title(title if len(panels) > 1 else "", fontsize=9)
    won = ordered(w for _, c in panels for w in c["winner"] if isinstance(w, str))
    figure.legend(handles=[Patch(color=_light(style.colors.get(a, "#777777")), label=a)
                           for a in won], loc="outside lower center", ncols=min(len(won), 6),
                  title="fastest algorithm; below its name: how many times faster than the "
                  "runner-up")
    figure.suptitle(f"{view.suite}: fastest algorithm by kernel and input size",
                    fontweight="bold")
    return figure


def _light(color: str) -> tuple[float, float, float]:
    """The colour mixed halfway to white, so that black labels stay readable on it."""
    red, green, blue = to_rgb(color)
    return 0.5 + 0.5 * red, 0.5 + 0.5 * green, 0.5 + 0.5 * blue
