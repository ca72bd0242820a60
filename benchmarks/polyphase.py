"""Polyphase Winograd on ResNet-50's strided layers, against our im2col and torch (oneDNN, NCHW).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/polyphase.py

Options: --n N (8), --threads T (2), --rounds R (interleaved rounds, 25), --gap-ms G (pause
before each timed call, 20), --layers a,b (names from the reference CSV; default every strided
layer with a kernel over 1x1: the 7x7 stem and the three 3x3 stride-2 layers), --out CSV (every
timed call: layer, call, round, seconds), --array (the array-API version: compiled kernels
off, as CONVBENCH_COMPILED=0).

In one process, call by call in alternation round after round (a drift in the machine's speed
falls on all alike): torch, im2col, and each polyphase_winograd_a* twice, training-style (the
filter transform in the timed call) and inference-style (filters prepared once, outside it).
Each cell is the median in ms with the run's noise, IQR/median, and the ratio to torch's median.
Then the stages of each polyphase call (median ms, timed apart). The compiled kernels (the
default, where numba is installed): filter (phase weights and their compiled transform),
to_nhwc (the input's blocked transpose), phases (the space-to-depth copy), then input (tile
transform), gemm (the alpha^2 channel GEMMs) and otrans (output transform) where the pipeline
is staged, or fused (all three per block of tiles), and to_nchw (the result's transpose). The
array version: filter (transform), input (pad, gather of every phase's tiles, transform), gemm
(the alpha^2 fused channel GEMMs), otrans (output transform), scatter (into NCHW, crop).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # before numpy loads OpenBLAS
    os.environ.pop(_var, None)

import convbench  # noqa: E402, F401  (first: it shortens idle threads' spinning)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from convbench import oracle  # noqa: E402
from convbench.algorithms import registry  # noqa: E402
from convbench.algorithms.conv import layout_kernels  # noqa: E402
from convbench.algorithms.conv import polyphase as P  # noqa: E402
from convbench.algorithms.conv import winograd_nhwc_kernels as kernels  # noqa: E402
from convbench.algorithms.conv.winograd_nhwc import channel_gemms  # noqa: E402
from convbench.backends import compiled  # noqa: E402
from convbench.measure.environment import keep_freed_memory  # noqa: E402
from convbench.measure.noise import LoadMonitor  # noqa: E402
from convbench.problems import ConvProblem  # noqa: E402

LAYERS_CSV = Path(__file__).resolve().parents[2] / "shared" / "reference" / \
    "resnet50_distinct_conv.csv"
POLYPHASE = list(P.FAMILY)


def strided_layers(n: int, path: Path = LAYERS_CSV) -> dict[str, ConvProblem]:
    """ResNet-50's strided layers with a kernel over 1x1, at batch n."""
    layers = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            v = {k: int(x) for k, x in row.items() if k != "name"}
            if v["stride_h"] > 1 and v["R"] > 1:
                layers[row["name"]] = ConvProblem(
                    n, v["C"], v["H"], v["W"], v["K"], v["R"], v["S"],
                    stride=(v["stride_h"], v["stride_w"]), padding=(v["pad_h"], v["pad_w"]),
                    groups=v["groups"])
    return layers


def time_s(fn, repeats: int = 9) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def compiled_stages_ms(p: ConvProblem, x: np.ndarray, w: np.ndarray, alpha: int
                       ) -> dict[str, float]:
    """Each stage of the compiled path, timed on its own (median ms)."""
    q, pl, threads = P.phase_problem(p, alpha), P.plan(p, alpha), compiled.threads()
    u = P._compiled_filters(p, w, alpha)
    xn = layout_kernels.channels_last(x, threads)
    x2 = layout_kernels.phases(xn, p.stride, pl.phases, p.padding, q.size, threads)
    bias = np.zeros(p.k, x.dtype)
    y = np.empty((p.n, p.out_h, p.out_w, p.k), x.dtype)
    timed = {"filter": lambda: P._compiled_filters(p, w, alpha),
             "to_nhwc": lambda: layout_kernels.channels_last(x, threads),
             "phases": lambda: layout_kernels.phases(xn, p.stride, pl.phases, p.padding, q.size,
                                                     threads)}
    if kernels.fused(q, alpha, threads):
        timed["fused"] = lambda: kernels.fused_stages(q, x2, u, bias, alpha, threads)
    else:
        v = kernels.input_stage(q, x2, alpha, threads)
        m = channel_gemms(q, v, u)
        timed |= {"input": lambda: kernels.input_stage(q, x2, alpha, threads),
                  "gemm": lambda: channel_gemms(q, v, u),
                  "otrans": lambda: kernels.output_stage(q, m, bias, alpha, threads)}
    timed["to_nchw"] = lambda: layout_kernels.channels_first(y, threads)
    return {k: time_s(fn) * 1e3 for k, fn in timed.items()}


def stages_ms(p: ConvProblem, x: np.ndarray, w: np.ndarray, alpha: int) -> dict[str, float]:
    """Each stage of polyphase_winograd, timed on its own (median ms)."""
    if P.compiled_path(p):
        return compiled_stages_ms(p, x, w, alpha)
    pl = P.plan(p, alpha)
    (mh, mw), (th, tw) = pl.tile, pl.tiles
    at = P.transforms_like(alpha, *pl.sub_kernel, x)[0]
    u, v = P.filter_transform(p, w, alpha), P.input_transform(p, x, alpha)
    m = np.matmul(u, v)
    y = at @ m.reshape(alpha * alpha, -1)

    def scatter() -> np.ndarray:
        z = y.reshape(mh, mw, p.k, p.n, th, tw).transpose(3, 2, 4, 0, 5, 1)
        z = z.reshape(p.n, p.k, th * mh, tw * mw)
        return np.ascontiguousarray(z[:, :, : p.out_h, : p.out_w])

    timed = {"filter": lambda: P.filter_transform(p, w, alpha),
             "input": lambda: P.input_transform(p, x, alpha), "gemm": lambda: np.matmul(u, v),
             "otrans": lambda: at @ m.reshape(alpha * alpha, -1), "scatter": scatter}
    return {k: time_s(fn) * 1e3 for k, fn in timed.items()}


def calls(p: ConvProblem, x: np.ndarray, w: np.ndarray) -> dict[str, object]:
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    out = {"torch": lambda: torch.nn.functional.conv2d(tx, tw, None, p.stride, p.padding)}
    im2col = registry.get("conv2d", "im2col")
    out["im2col"] = lambda: im2col.fn(p, x, w, None)
    for name in POLYPHASE:
        algo = registry.get("conv2d", name)
        if algo.why_not(p):
            continue
        state = algo.prepare(p, x, w, None)
        out[f"{name} train"] = lambda a=algo: a.fn(p, x, w, None)
        out[f"{name} infer"] = lambda a=algo, s=state: a.fn(p, x, w, None, prepared=s)
    return out


def interleaved(fns: dict[str, object], rounds: int, gap_s: float) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    with torch.no_grad():
        for fn in fns.values():
            fn()
        for _ in range(rounds):
            for k, fn in fns.items():
                time.sleep(gap_s)  # the other library's idle threads go to sleep
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
    return times


def summary(ts: list[float]) -> tuple[float, float]:
    """(median s, IQR / median)."""
    q1, med, q3 = statistics.quantiles(ts, n=4)
    return med, (q3 - q1) / med


def report_layer(name: str, p: ConvProblem, times: dict[str, list[float]],
                 other_load: float) -> None:
    ref = summary(times["torch"])[0]
    print(f"\n{name} ({p}), {2 * p.macs / 1e9:.2f} GFLOP direct; other processes took "
          f"{other_load:.0%} of the CPUs meanwhile")
    for k, ts in times.items():
        med, noise = summary(ts)
        flag = "  noisy" if noise > 0.10 else ""
        print(f"  {k:30s} {med * 1e3:7.2f} ms  IQR/med {noise:5.1%}  {med / ref:5.2f}x torch"
              f"{flag}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--layers", default="")
    parser.add_argument("--out", type=Path, help="write every timed call here (CSV)")
    parser.add_argument("--array", action="store_true",
                        help="the array-API version (compiled kernels off)")
    args = parser.parse_args()
    if args.array:
        os.environ[compiled.SWITCH] = "0"
    compiled.set_threads(args.threads)
    rows: list[tuple[str, str, int, float]] = []
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    layers = strided_layers(args.n)
    if args.layers:
        unknown = [k for k in args.layers.split(",") if k not in layers]
        if unknown:
            parser.error(f"--layers: no strided layer named {', '.join(unknown)}; the layers: "
                         f"{', '.join(layers)}")
        layers = {k: layers[k] for k in args.layers.split(",")}
    with threadpool_limits(args.threads):
        blas = [(i["internal_api"], i.get("version"), i.get("architecture"), i["num_threads"])
                for i in threadpool_info()]
        kernels_used = (f"compiled kernels: numba {compiled.version()}" if compiled.enabled()
                        else "the array-API version")
        print(f"threads {args.threads}, torch {torch.__version__} ({torch.get_num_threads()} "
              f"threads), BLAS {blas}; {kernels_used}")
        for name, p in layers.items():
            x, w = oracle.make_inputs(p).arrays[:2]
            monitor = LoadMonitor()
            times = interleaved(calls(p, x, w), args.rounds, args.gap_ms / 1e3)
            report_layer(name, p, times, monitor.stop().other_load)
            rows += [(name, k, i, t) for k, ts in times.items() for i, t in enumerate(ts)]
            for algo in POLYPHASE:
                if registry.get("conv2d", algo).why_not(p):
                    continue
                s = stages_ms(p, x, w, P.FAMILY[algo])
                print(f"  stages {algo}: " + " ".join(f"{k}={v:.2f}" for k, v in s.items())
                      + f" sum={sum(s.values()):.2f} ms")
    if args.out:
        with open(args.out, "w", newline="") as f:
            csv.writer(f).writerows([("layer", "call", "round", "seconds"), *rows])


if __name__ == "__main__":
    main()
