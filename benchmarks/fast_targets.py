"""Read the fast algorithms' targets off measured results (README: Fast algorithms).

    python benchmarks/fast_targets.py reports/bench/resnet50 [reports/bench/kernels]

Every ratio is between rows of the same run (measured side by side); the machine's SGEMM peak
comes from that run's meta.json.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd

from convbench.problems.descriptor import parse
from convbench.run.rundir import read_results

OURS_EXCLUDE = {"torch", "auto", "direct_naive"}


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"].copy()


def resnet_targets(directory: Path) -> None:
    frame = _ok(read_results(directory))
    peak = json.loads((directory / "meta.json").read_text())["machine"]["sgemm_gflops"]
    times = frame.pivot_table(index="case", columns="algo", values="time_median_s")
    ours = times[[c for c in times.columns if c not in OURS_EXCLUDE]]
    fastest, winner = ours.min(axis=1), ours.idxmin(axis=1)
    ratio = fastest / times["torch"]
    problems = {case: parse(d) for case, d in zip(frame["case"], frame["descriptor"])}
    print(f"machine SGEMM peak: {peak:.1f} GFLOP/s")
    print(f"{'case':40s} {'fastest':>14s} {'ours/torch':>10s}")
    for case in times.index:
        print(f"{case:40s} {winner[case]:>14s} {ratio[case]:10.2f}")
    dense3 = [c for c, p in problems.items()
              if (p.r, p.s) == (3, 3) and p.stride == (1, 1)]
    print(f"3x3 stride-1 layers at or under 1.0: {(ratio[dense3] <= 1.0).sum()} of {len(dense3)}")
    print(f"geometric mean of ours/torch over {len(ratio)} layers: "
          f"{math.exp(ratio.map(math.log).mean()):.3f}")
    gflops = frame.pivot_table(index="case", columns="algo", values="gflops")
    pointwise = [c for c, p in problems.items() if (p.r, p.s) == (1, 1)]
    share = gflops.loc[pointwise, "im2col"] / peak
    print(f"1x1 layers, im2col as % of SGEMM peak: min {100 * share.min():.0f}%, "
          f"median {100 * share.median():.0f}%")
    wide = [c for c in dense3 if problems[c].c >= 128]
    if "winograd_f4x3" in gflops:
        print("winograd_f4x3 effective GFLOP/s on 3x3 layers with C >= 128: " + ", ".join(
            f"{gflops.loc[c, 'winograd_f4x3']:.0f}" for c in wide) + f" (peak {peak:.0f})")
    if "auto" in times:
        over = times["auto"] / fastest  # auto chooses among ours: the reference is not a choice
        within = (over <= 1.05).sum()
        print(f"auto / our per-layer best: max {over.max():.3f} ({over.idxmax()}), median "
              f"{over.median():.3f}; within 5% on {within} of {len(over)} layers")
        ran = frame[frame["algo"] == "auto"].set_index("case")["ran_algo"]
        picked = (ran.reindex(winner.index) == winner).sum()
        print(f"auto ran our per-layer fastest on {picked} of {len(winner)} layers (the rest of "
              "the gap above is between two rows timing the same function)")
    model = frame.dropna(subset=["peak_mem_bytes", "workspace_model_bytes"])
    model = model[model["algo"].isin(["im2col", "fft"]) | model["algo"].str.startswith("wino")]
    model = model[model["workspace_model_bytes"] > 0]
    error = (model["peak_mem_bytes"] / model["workspace_model_bytes"] - 1).abs()
    print(f"workspace measured vs model (im2col, fft, winograd): max deviation "
          f"{100 * error.max():.1f}% over {len(error)} rows")


def kernel_crossover(directory: Path) -> None:
    frame = _ok(read_results(directory))
    times = frame.pivot_table(index="case", columns="algo", values="time_median_s")
    for size in sorted({parse(d).h for d in frame["descriptor"]}):
        rows = sorted((parse(d).r, case) for case, d in zip(frame["case"], frame["descriptor"])
                      if parse(d).h == size)
        cells = [f"k{k}: fft/im2col {times.loc[c, 'fft'] / times.loc[c, 'im2col']:.2f}"
                 for k, c in dict(rows).items()]
        print(f"{size}x{size}: " + ", ".join(cells))


if __name__ == "__main__":
    resnet_targets(Path(sys.argv[1]))
    if len(sys.argv) > 2:
        kernel_crossover(Path(sys.argv[2]))
