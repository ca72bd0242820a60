"""The channels-last Winograd pipeline (winograd_nhwc) against torch's channels_last convolution
(oneDNN), on ResNet-50's 3x3 stride-1 layers, inference-like (filters prepared, not timed).

    .venv/bin/python benchmarks/winograd_nhwc.py            # N=8, 2 threads, 40 rounds

Every contender of a layer is timed in the same process, interleaved: each round calls each one
once (after a warm-up), so that a drift in the machine's speed falls on all of them alike. The
table gives per contender the median ms, its noise (IQR / median) and the ratio to torch's
median in the same layout; the NCHW rows (our channels-first Winograd against torch on
contiguous tensors) are for context. --stages adds the NHWC pipeline's stages (input
transform, channel GEMMs, output transform), each timed on its own, medians. --cpu-time
times the process's CPU time (time.process_time) in place of the wall clock: on a machine
that other processes load, it counts what each call itself used (with --threads 1, wall time
as a quiet machine would give it). The issue's targets: best ours <= 0.85 x torch on layers
1-3, <= 1.0 on layer4 (channels last).
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # before numpy loads OpenBLAS
    os.environ.pop(_var, None)

import convbench  # noqa: E402, F401  (first: it shortens idle threads' spinning)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from convbench import oracle  # noqa: E402
from convbench.algorithms import registry  # noqa: E402
from convbench.algorithms.conv import winograd, winograd_nhwc  # noqa: E402
from convbench.algorithms.conv import layout_kernels  # noqa: E402
from convbench.algorithms.conv import winograd_nhwc_kernels as kernels  # noqa: E402
from convbench.backends import compiled  # noqa: E402
from convbench.measure.environment import keep_freed_memory  # noqa: E402
from convbench.problems import ConvProblem  # noqa: E402
from convbench.run.processes import pinned_threads  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / \
    "resnet50_distinct_conv.csv"
OURS = ("winograd_f2x3", "winograd_f4x3", "winograd_f6x3")
TARGETS = {"layer1": 0.85, "layer2": 0.85, "layer3": 0.85, "layer4": 1.0}


def layers(n: int) -> dict[str, tuple[int, int]]:
    """{layer: (C, H)} of ResNet-50's dense 3x3 stride-1 convolutions (C = K, H = W), read from
    the reference table when it is beside the checkout."""
    if not REFERENCE.exists():
        return {"layer1": (64, 56), "layer2": (128, 28), "layer3": (256, 14), "layer4": (512, 7)}
    found = {}
    with REFERENCE.open() as f:
        for row in csv.DictReader(f):
            if (row["R"], row["S"], row["stride_h"], row["groups"]) == ("3", "3", "1", "1"):
                found[row["name"].split("_")[1]] = (int(row["C"]), int(row["H"]))
    return found


def contenders(p: ConvProblem, array: bool = False) -> dict[str, Callable[[], object]]:
    """Zero-argument calls: torch on tensors of p's layout, and ours with prepared filters;
    with `array`, ours also as the array-API version (compiled kernels switched off)."""
    x, w, _ = oracle.make_inputs(p, seed=0).arrays
    memory = torch.channels_last if p.channels_last else torch.contiguous_format
    tx = torch.from_numpy(np.ascontiguousarray(x)).contiguous(memory_format=memory)
    tw = torch.from_numpy(w).contiguous(memory_format=memory)
    calls: dict[str, Callable[[], object]] = {
        "torch": lambda: torch.nn.functional.conv2d(tx, tw, padding=p.padding)}
    expected = calls["torch"]().numpy()
    for name in OURS:
        algorithm = registry.get("conv2d", name)
        state = algorithm.prepared(p, x, w, None)
        call = (lambda a=algorithm, s=state: a.fn(p, x, w, None, prepared=s))
        error = np.abs(call() - expected).max() / np.abs(expected).max()  # type: ignore
        assert error < 1e-4, f"{name} on {p}: max error {error:.1e} of the largest output"
        calls[name] = call
    if array and compiled.enabled():
        for name in OURS:
            calls[f"{name} array"] = functools.partial(without_kernels, calls[name])
    return calls


def without_kernels(call: Callable[[], object]) -> object:
    """call() with the compiled kernels switched off (the array-API version)."""
    os.environ[compiled.SWITCH] = "0"
    try:
        return call()
    finally:
        del os.environ[compiled.SWITCH]


CLOCK = time.perf_counter  # or time.process_time (--cpu-time)


def interleaved(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call, one call of each contender per round, after two warm-up rounds."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(rounds + 2):
        for name, call in calls.items():
            start = CLOCK()
            call()
            if i >= 2:
                samples[name].append(CLOCK() - start)
    return samples


def noise(times: list[float]) -> float:
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (q3 - q1) / statistics.median(times)


def stages_ms(p: ConvProblem, name: str, repeats: int) -> dict[str, float]:
    """Median ms of the NHWC pipeline's stages, each timed on its own: the compiled kernels'
    (the fused arrangement as one stage where it is the one that runs), else the array
    version's."""
    alpha = dict(zip(OURS, (4, 6, 8)))[name]
    x, w, _ = oracle.make_inputs(p, seed=0).arrays
    if kernels.modelled(p):
        return compiled_stages_ms(p, x, w, alpha, repeats)
    at, g, bt = winograd._nhwc_transforms(p, x, alpha)
    u = winograd_nhwc.filter_transform(p, w, alpha, g)
    v = winograd_nhwc.input_transform(p, x, alpha, bt)
    m = winograd_nhwc.channel_gemms(p, v, u)
    parts = {"input": lambda: winograd_nhwc.input_transform(p, x, alpha, bt),
             "gemms": lambda: winograd_nhwc.channel_gemms(p, v, u),
             "output": lambda: winograd_nhwc.output_transform(p, m, alpha, at)}
    return {k: 1e3 * statistics.median(t) for k, t in interleaved(parts, repeats).items()}


def compiled_stages_ms(p: ConvProblem, x: np.ndarray, w: np.ndarray, alpha: int,
                       repeats: int) -> dict[str, float]:
    u = winograd_nhwc.filter_transform(p, w, alpha, winograd._nhwc_transforms(p, x, alpha)[1])
    bias, threads = np.zeros(p.k, x.dtype), compiled.threads()
    x = layout_kernels.channels_last(x, threads)
    if kernels.fused(p, alpha, threads):
        parts = {"fused": lambda: kernels.fused_stages(p, x, u, bias, alpha, threads)}
    else:
        workers = min(threads, kernels.tile_count(p, alpha))
        v = kernels.input_stage(p, x, alpha, workers)
        m = winograd_nhwc.channel_gemms(p, v, u)
        parts = {"input": lambda: kernels.input_stage(p, x, alpha, workers),
                 "gemms": lambda: winograd_nhwc.channel_gemms(p, v, u),
                 "output": lambda: kernels.output_stage(p, m, bias, alpha, workers)}
    return {k: 1e3 * statistics.median(t) for k, t in interleaved(parts, repeats).items()}


def report(layer: str, p: ConvProblem, samples: dict[str, list[float]]) -> str:
    torch_s = statistics.median(samples["torch"])
    cells = []
    for name, times in samples.items():
        median = statistics.median(times)
        cells.append(f"{name} {1e3 * median:.2f} ms ({noise(times):.0%}, "
                     f"{median / torch_s:.2f})")
    best = min(statistics.median(samples[n]) for n in OURS) / torch_s  # compiled where on
    target = TARGETS.get(layer) if p.channels_last else None
    verdict = "" if target is None else f" target {target}: {'met' if best <= target else 'no'}"
    return f"| {layer} | {p.layout} | {' | '.join(cells)} | {best:.2f}{verdict} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--layers", default="layer1,layer2,layer3,layer4")
    parser.add_argument("--layouts", default="nhwc,nchw")
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--cpu-time", action="store_true")
    parser.add_argument("--array", action="store_true",
                        help="also time the array-API version of ours (no compiled kernels)")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    keep_freed_memory()
    clock = "CPU time" if args.cpu_time else "wall time"
    print(f"N={args.n}, {args.threads} threads, fp32, {args.rounds} interleaved rounds, {clock}, "
          f"load {os.getloadavg()[0]:.1f}; cell: median (IQR/median, ratio to torch in the same "
          "layout)")
    names = ("torch", *OURS, *(f"{n} array" for n in OURS if args.array and compiled.enabled()))
    print(f"compiled kernels: {'numba ' + str(compiled.version()) if compiled.enabled() else 'off'}")
    print("| layer | layout | " + " | ".join(names) + " | best ours / torch |")
    print("|---|---|" + "---|" * (len(names) + 1))
    with pinned_threads(args.threads):
        for layer in args.layers.split(","):
            c, h = layers(args.n)[layer]
            for layout in args.layouts.split(","):
                p = ConvProblem(args.n, c, h, h, c, 3, 3, padding=1, layout=layout)
                calls = contenders(p, args.array)
                print(report(layer, p, interleaved(calls, args.rounds)), flush=True)
        if args.stages:
            for layer in args.layers.split(","):
                c, h = layers(args.n)[layer]
                p = ConvProblem(args.n, c, h, h, c, 3, 3, padding=1, layout="nhwc")
                for name in OURS:
                    parts = stages_ms(p, name, max(10, args.rounds // 2))
                    print(f"stages {layer} {name} (ms): "
                          + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()), flush=True)


if __name__ == "__main__":
    main()
