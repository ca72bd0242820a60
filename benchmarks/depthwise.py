"""The compiled depthwise kernels (convbench.algorithms.conv.depthwise_kernels, `direct`'s path
for layers of one input channel a group) against the array versions and torch, side by side in
one process, on MobileNetV2's 17 depthwise 3x3 layers (N=8, fp32, 2 threads), in NCHW and in
channels-last memory.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/depthwise.py

Per layer and layout, timed in interleaved rounds (one sample of each closure per round, the
order rotated):
- `kernels`: direct as it runs (the compiled kernels);
- NCHW only, `nchw_kernel` and `via_nhwc`: the NCHW kernel, and the channels-last kernel between
  two blocked transposes, whatever NCHW_MIN_WIDTH picks;
- `array`: direct's array version (per-tap channel GEMMs of k = 1, one per group);
- `im2col`: im2col as it runs (grouped: the array version);
- `torch`: torch.nn.functional.conv2d (oneDNN; channels_last tensors for channels last).
Reported: medians in ms, each over torch, and the noise (IQR / median, median and max over
the layer's closures). Every contender's output is checked against torch's first.

Options: --quick, --threads T, --layers SUBSTRING, --layout nchw|nhwc (default both), --csv
PATH.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

import auto_quality as aq  # noqa: E402  (the rounds and policies; sets the env)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from im2col_nchw import checked, timed, with_constants, write_rows  # noqa: E402

from convbench import oracle  # noqa: E402
from convbench.algorithms import registry  # noqa: E402
from convbench.algorithms.conv import depthwise_kernels  # noqa: E402
from convbench.measure.environment import keep_freed_memory  # noqa: E402
from convbench.run.processes import pinned_threads  # noqa: E402
from convbench.run.suite import load_suite  # noqa: E402


def closures(p: object) -> dict[str, object]:
    x, w, bias = oracle.make_inputs(p).arrays
    direct, im2col = (registry.get("conv2d", n).bind(p) for n in ("direct", "im2col"))
    run = lambda: direct(p, x, w, bias)  # noqa: E731
    fns = {"kernels": run}
    if not p.channels_last:
        fns["nchw_kernel"] = with_constants(run, depthwise_kernels, NCHW_MIN_WIDTH=0)
        fns["via_nhwc"] = with_constants(run, depthwise_kernels, NCHW_MIN_WIDTH=1 << 30,
                                         NHWC_MIN_CHANNELS=0)
    fns["array"] = with_constants(run, depthwise_kernels, WORTH_SCALE=0)
    fns["im2col"] = lambda: im2col(p, x, w, bias)
    memory = torch.channels_last if p.channels_last else torch.contiguous_format
    tx = torch.from_numpy(np.ascontiguousarray(x)).contiguous(memory_format=memory)
    tw = torch.from_numpy(w).contiguous(memory_format=memory)
    tb = None if bias is None else torch.from_numpy(bias)
    fns["torch"] = lambda: torch.nn.functional.conv2d(
        tx, tw, tb, stride=p.stride, padding=p.padding, dilation=p.dilation, groups=p.groups)
    return checked(p, fns)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers")
    parser.add_argument("--layout", choices=("nchw", "nhwc"))
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    keep_freed_memory()
    policy = aq.POLICIES["quick" if args.quick else "full"]
    layouts = [args.layout] if args.layout else ["nchw", "nhwc"]
    print(f"# MobileNetV2's depthwise layers, N=8, {args.threads} threads; interleaved",
          flush=True)
    rows = []
    with pinned_threads(args.threads):
        for case in load_suite("mobilenet_v2", batch=8).cases:
            grouped = getattr(case.problem, "groups", 1) > 1  # the suite holds a pooling too
            if not grouped or (args.layers and args.layers not in case.name):
                continue
            for layout in layouts:
                p = dataclasses.replace(case.problem, layout=layout)
                rows.append(timed(case.name, p, closures(p), policy))
    for layout in layouts:
        ratios = [r["kernels_ms"] / r["torch_ms"] for r in rows
                  if r["problem"].startswith("nhwc_") == (layout == "nhwc")]
        before = [r["array_ms"] / r["torch_ms"] for r in rows
                  if r["problem"].startswith("nhwc_") == (layout == "nhwc")]
        if ratios:
            print(f"{layout}: kernels / torch geomean {statistics.geometric_mean(ratios):.2f} "
                  f"(min {min(ratios):.2f}, max {max(ratios):.2f}); the array version "
                  f"{statistics.geometric_mean(before):.2f}", flush=True)
    if args.csv:
        write_rows(args.csv, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
