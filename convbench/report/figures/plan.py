"""A network's time by layer per strategy: each layer's time x its count, in network order, one
line per strategy (convbench.analysis.plan)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from convbench.analysis.plan import make_plan
from convbench.report.figures.style import Style, log_time_axis, new_figure
from convbench.report.frame import SuiteView

# The strategies drawn: the reference, auto, the per-layer best; each algorithm's own line would
# crowd the figure (their totals are in the plan's table).
DRAWN = ("(reference)", "auto", "per-layer best")


def time_by_layer(view: SuiteView, style: Style) -> Figure | None:
    """Time x count per layer (log scale) for the drawn strategies; None outside networks."""
    if not view.network or view.ok.empty:
        return None
    rows = view.frame[view.frame["run"] == view.runs[0]] if view.runs else view.frame
    backend = "numpy" if "numpy" in set(rows["backend"]) else str(rows["backend"].iloc[0])
    plan = make_plan(rows, view.counts, view.reference, None, backend)
    shown = [c for c in plan.by_layer.columns if c.endswith(DRAWN[0]) or c in DRAWN[1:]]
    if not shown:
        return None
    layers = list(plan.by_layer.index)
    figure = new_figure(max(6.0, 0.32 * len(layers) + 2), 4.5)
    ax = figure.add_subplot()
    x = np.arange(len(layers))
    for name in shown:
        ax.plot(x, plan.by_layer[name].to_numpy(), marker="o", markersize=4, label=name)
    values = plan.by_layer[shown].to_numpy().ravel()
    log_time_axis(ax, values[np.isfinite(values)], axis="y")
    ax.set_xticks(x, layers, rotation=90, fontsize=6)
    ax.set_ylabel("time per call x count (log scale)")
    ax.set_title(f"{view.suite}: time by layer per strategy ({backend})")
    ax.legend(title="strategy", fontsize=7)
    return figure
