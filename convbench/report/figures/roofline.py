"""Where the time goes: the roofline (arithmetic intensity vs achieved GFLOP/s, under the
machine's measured peaks) and accuracy vs time with each case's Pareto front."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from convbench.report.figures.style import Style, decade_axis, new_figure
from convbench.report.frame import SuiteView
from convbench.report.load import Peaks

LEGEND_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)}
ROOF_COLOR = "#333333"


def _roof(ax: Axes, peaks: Peaks, intensity: np.ndarray, suffix: str) -> None:
    """The SGEMM ceiling and the bandwidth slope, each drawn where it is the lower bound."""
    sgemm, bandwidth = peaks.sgemm_gflops, peaks.copy_gbytes_per_s
    if sgemm and bandwidth:
        ridge = sgemm / bandwidth  # FLOP/byte where the two meet
        ax.plot(intensity[intensity <= ridge].tolist() + [ridge],
                (bandwidth * intensity[intensity <= ridge]).tolist() + [sgemm],
                color=ROOF_COLOR, linestyle=":", gid="bandwidth",
                label=f"copy bandwidth {bandwidth:.3g} GB/s{suffix}")
        intensity = np.concatenate([[ridge], intensity[intensity > ridge]])
    if sgemm:
        ax.plot(intensity, np.full_like(intensity, sgemm), color=ROOF_COLOR, linestyle="--",
                gid="sgemm", label=f"SGEMM peak {sgemm:.3g} GFLOP/s{suffix}")
    elif bandwidth:
        ax.plot(intensity, bandwidth * intensity, color=ROOF_COLOR, linestyle=":",
                gid="bandwidth", label=f"copy bandwidth {bandwidth:.3g} GB/s{suffix}")


def _label_suffix(peaks: Peaks, runs: list[str], several: bool) -> str:
    """' (run a, run b)' when the report has several runs, and the roof's doubt if any."""
    doubt = "suspect" if peaks.suspect else peaks.note
    named = f" ({', '.join(runs)})" if several else ""
    return named + (f" [{doubt}]" if doubt else "")


def _intensity_range(intensity: pd.Series, peaks: list[Peaks]) -> pd.Series:
    """The points' intensities, with each machine's ridge point and some room either side."""
    ridges = [p.sgemm_gflops / p.copy_gbytes_per_s for p in peaks
              if p.sgemm_gflops and p.copy_gbytes_per_s]
    return pd.concat([intensity, pd.Series([r * f for r in ridges for f in (0.25, 4.0)],
                                           dtype=float)])


def roofline(view: SuiteView, style: Style) -> Figure | None:
    ok = view.ok.dropna(subset=["intensity", "gflops"])
    ok = ok[(ok["intensity"] > 0) & (ok["gflops"] > 0)]
    if ok.empty:
        return None
    figure = new_figure(9, max(5.2, 1.0 + 0.19 * (ok["series"].nunique() + 3)))
    ax = figure.add_subplot()
    for name, rows in ok.groupby("series", sort=False):
        ax.plot(rows["intensity"], rows["gflops"], linestyle="none", markersize=6, label=name,
                alpha=0.85, **style.of(rows))
    peaks: dict[Peaks, list[str]] = {}  # distinct machines, with the runs measured on each
    for run, machine in view.peaks.items():
        if machine is not None:
            peaks.setdefault(machine, []).append(run)
    decade_axis(ax, _intensity_range(ok["intensity"], list(peaks)), "x")
    span = np.geomspace(*ax.get_xlim(), 200)  # the roof runs across the whole axis
    for machine, runs in peaks.items():
        _roof(ax, machine, span, _label_suffix(machine, runs, len(view.runs) > 1))
    if not peaks:
        ax.text(0.01, 0.98, "machine peaks not measured: no roof drawn", transform=ax.transAxes,
                va="top", fontsize=8, color="#777777")
    roof_tops = [p.sgemm_gflops for p in peaks if p.sgemm_gflops]
    decade_axis(ax, pd.concat([ok["gflops"], pd.Series(roof_tops, dtype=float)]), "y")
    ax.set_xlabel("arithmetic intensity (FLOP per byte of input, weights and output)")
    ax.set_ylabel("achieved GFLOP/s (log)")
    ax.set_title(f"{view.suite}: roofline")
    ax.legend(**LEGEND_OUTSIDE)
    return figure


def pareto_mask(times: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """True where no other point is at least as fast and as accurate, and better in one."""
    times, errors = np.asarray(times, float), np.asarray(errors, float)
    no_worse = (times[None, :] <= times[:, None]) & (errors[None, :] <= errors[:, None])
    better = (times[None, :] < times[:, None]) | (errors[None, :] < errors[:, None])
    return ~(no_worse & better).any(axis=1)


def accuracy_points(view: SuiteView) -> pd.DataFrame:
    """Ok rows with their time relative to the fastest of their case, their error as a share
    of the tolerance, and whether they are on their case's Pareto front."""
    ok = view.ok.dropna(subset=["time_median_s", "norm_err", "tolerance"])
    ok = ok[(ok["tolerance"] > 0) & (ok["time_median_s"] > 0)]
    fastest = ok.groupby(["run", "case_label"])["time_median_s"].transform("min")
    ok = ok.assign(relative_time=ok["time_median_s"] / fastest,
                   error_share=ok["norm_err"] / ok["tolerance"], pareto=False)
    for _, rows in ok.groupby(["run", "case_label"], sort=False):
        ok.loc[rows.index, "pareto"] = pareto_mask(rows["relative_time"], rows["error_share"])
    return ok


def accuracy_vs_time(view: SuiteView, style: Style) -> Figure | None:
    points = accuracy_points(view)
    if points.empty:
        return None
    figure = new_figure(9, max(5.2, 1.0 + 0.19 * (points["series"].nunique() + 5)))
    ax = figure.add_subplot()
    for _, rows in points.groupby(["run", "case_label"], sort=False):
        front = rows[rows["pareto"]].sort_values("relative_time")
        ax.plot(front["relative_time"], front["error_share"], color="#999999", linewidth=0.7,
                alpha=0.7, drawstyle="steps-post", gid="pareto", zorder=1)
    handles = []
    for name, rows in points.groupby("series", sort=False):
        look = style.of(rows)
        ax.scatter(rows["relative_time"], rows["error_share"], marker=look["marker"], s=36,
                   edgecolors=look["color"], linewidths=1.2, label=name, zorder=2,
                   facecolors=[look["color"] if p else "none" for p in rows["pareto"]])
        handles.append(Line2D([], [], linestyle="none", label=name, **look))
    ax.axhline(1.0, color="#d62728", linewidth=0.8, linestyle="--", gid="tolerance")
    decade_axis(ax, pd.concat([points["relative_time"], pd.Series([1.0, 10.0])]), "x",
                lambda v: f"{v:g}x")
    ax.set_xlim(0.85, ax.get_xlim()[1])  # room for the fastest points at 1x
    ax.set_ylim(0, max(1.1, math.ceil(points["error_share"].max() * 10) / 10))
    ax.set_xlabel("time relative to the fastest algorithm on the same case (log; 1x is fastest)")
    ax.set_ylabel("error / tolerance (0 exact, 1 at the limit)")
    ax.set_title(f"{view.suite}: accuracy vs time")
    handles += [Line2D([], [], color="#999999", linewidth=0.8, label="Pareto front of a case"),
                Line2D([], [], color="k", marker="o", linestyle="none",
                       label="on its case's front"),
                Line2D([], [], color="k", marker="o", markerfacecolor="none", linestyle="none",
                       label="beaten on both counts"),
                Line2D([], [], color="#d62728", linestyle="--", linewidth=0.8,
                       label="tolerance")]
    ax.legend(handles=handles, **LEGEND_OUTSIDE)
    return figure
