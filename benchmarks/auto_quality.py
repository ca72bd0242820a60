"""How good is `algo="auto"` before and after tuning? Every candidate on ResNet-50's 23 distinct
layers, timed side by side in one process, against what auto picks untuned.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/auto_quality.py

For each layer (N=8, fp32, NCHW, 2 threads): every candidate auto may pick that supports it,
plus torch_im2col and torch for reference, timed in interleaved rounds (timing.
measure_interleaved: one sample of each closure per round, the order rotated). Candidates whose
fastest of three warm calls takes over SLOW_FACTOR times the fastest one's are left out of the
rounds (said so per layer). Reported per layer: each one's time, our best, and the picks of
untuned auto priced by the calibrated model (`convbench machine`; calibrated here, not cached,
when this machine has none) and by the defaults, each as its time over our best. "Tuned" picks each
layer's winner on the odd rounds and scores it on the even ones, as `convbench tune` then a run
would. Noise: IQR / median of every timed closure, and how far the best's median on odd and
even rounds differ. Last, im2col on the 1x1 layers as a share of the measured SGEMM peak
(`convbench machine`), of the calibration's GEMM rate, and of a 1024^3 SGEMM timed in each 1x1
layer's own rounds, numpy's and torch's (the share of the faster, measured side by side,
under the same load); beside it, the share the BLAS reaches on the layer's own GEMMs alone
(operands allocated once, any subsample or gather made beforehand; NCHW per image and as one
wide GEMM, the faster counted): what a GEMM-bound 1x1 method can reach with this engine. The
GEMM engine of our algorithms (convbench.backends.gemm) is the calibration's pick unless
--engine names one.

Everything is reported twice: by each closure's median over the rounds, and by its minimum (on
a machine other processes share, a preempted sample is slower, never faster).

Options: --quick (shorter rounds), --threads T, --layers SUBSTRING (only those layers), --csv
PATH (every layer's times and picks: PATH.median.csv and PATH.min.csv), --layout nhwc (the
same layers in channels-last memory, torch on channels_last tensors), --engine numpy|torch.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import statistics
import sys
from pathlib import Path

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # before numpy loads OpenBLAS
    os.environ.pop(_var, None)

import convbench  # noqa: E402, F401  (first: it shortens idle threads' spinning)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from convbench import oracle  # noqa: E402
from convbench.algorithms import auto, cost  # noqa: E402
from convbench.backends import compiled, gemm  # noqa: E402
from convbench.measure import calibrate, machine  # noqa: E402
from convbench.measure.environment import keep_freed_memory  # noqa: E402
from convbench.measure.timing import Measurement, TimingPolicy, _time_calls  # noqa: E402
from convbench.measure.timing import measure_interleaved  # noqa: E402
from convbench.problems import descriptor  # noqa: E402
from convbench.run.processes import pinned_threads  # noqa: E402
from convbench.run.suite import load_suite  # noqa: E402

SLOW_FACTOR = 4.0
GEMM_ALONE = ("gemm_images", "gemm_wide")  # a 1x1 layer's GEMMs alone, two ways
REFERENCES = ("torch_im2col", "torch", "sgemm", "sgemm_torch", *GEMM_ALONE)
SGEMM_SIZE = 1024  # the 1x1 layers' rounds time an SGEMM of this size beside them
POLICIES = {"full": TimingPolicy(budget_s=0.3, min_repeats=8),
            "quick": TimingPolicy(budget_s=0.1, min_repeats=6)}


def layers(batch: int, only: str | None, layout: str = "nchw") -> list[tuple[str, object]]:
    suite = load_suite("resnet50", batch=batch)
    return [(c.name, dataclasses.replace(c.problem, layout=layout)) for c in suite.cases
            if not only or only in c.name]


def models(threads: int, engine: str | None) -> dict[str, cost.MachineModel]:
    """The calibrated model (cached, or measured now) and the defaults. The GEMM engine is
    `engine` where given, else the calibration's pick (as a run's would be)."""
    model, source = auto.calibrated_model(threads, engine)
    picked = gemm.engine(threads)
    if model is cost.DEFAULTS:
        print(f"# {source}; calibrating now (not cached)", flush=True)
        record = auto.calibrate(threads)
        picked = record["gemm_engine"]
        rates, which = calibrate.rates_for(record, engine or picked)
        model = cost.from_rates(rates)
        source = (f"calibrated in this process in {record['took_s']:.1f} s, other processes "
                  f"{record['other_load']:.0%}, GEMM engines "
                  f"{record['gemm_engines_flops_per_s']}{which}")
    gemm.set_engine(engine or picked)
    print(f"# calibrated model: {source}: {model}", flush=True)
    print(f"# GEMM engine: {gemm.engine()} ({'--engine' if engine else 'the calibration'})",
          flush=True)
    return {"calibrated": model, "defaults": cost.DEFAULTS}


def pick(p: object, model: cost.MachineModel, names: list[str]) -> str:
    return next(a.name for a in auto.ranked(p, "numpy", model)
                if a.role == "candidate" and a.name in names)


def closures(p: object) -> dict[str, object]:
    """Every candidate that supports `p` on numpy, then the references."""
    x, w, bias = oracle.make_inputs(p).arrays
    found = {}
    for algorithm in auto.ranked(p, "numpy", cost.DEFAULTS):
        usable = algorithm.role == "candidate" or algorithm.name in REFERENCES
        if usable and algorithm.why_not(p, "numpy") is None:
            fn = algorithm.bind(p)
            found[algorithm.name] = (lambda fn=fn: fn(p, x, w, bias))
    if p.kernel == (1, 1):  # the GEMM-bound layers: the SGEMM rate in the same rounds
        a = np.ones((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32)
        out = np.empty_like(a)
        found["sgemm"] = lambda: np.matmul(a, a, out=out)
        ta, tout = torch.from_numpy(a), torch.from_numpy(out)
        found["sgemm_torch"] = lambda: torch.matmul(ta, ta, out=tout)
        found.update(layer_gemms(p, x, w))
    return found


def layer_gemms(p: object, x: np.ndarray, w: np.ndarray) -> dict[str, object]:
    """A 1x1 layer's GEMMs alone, by the GEMM engine, on operands allocated once (any
    subsample, transpose or gather made beforehand): what the BLAS makes of the layer's
    shapes without a copy. NCHW two ways: (K, C) @ (C, OH*OW) per image (`gemm_images`) and
    one (K, C) @ (C, N*OH*OW) (`gemm_wide`); channels last its one (N*OH*OW, C) @ (C, K)."""
    sub = np.ascontiguousarray(x[:, :, :: p.stride[0], :: p.stride[1]])  # (N, C, OH, OW)
    weights = np.ascontiguousarray(w.reshape(p.k, p.c))
    pixels = p.out_h * p.out_w
    if p.channels_last:
        rows = np.ascontiguousarray(sub.transpose(0, 2, 3, 1)).reshape(-1, p.c)
        right, out = np.ascontiguousarray(weights.T), np.empty((rows.shape[0], p.k), x.dtype)
        return {"gemm_wide": lambda: gemm.matmul(rows, right, out=out)}
    images, out = sub.reshape(p.n, p.c, pixels), np.empty((p.n, p.k, pixels), x.dtype)
    columns = np.ascontiguousarray(images.transpose(1, 0, 2)).reshape(p.c, -1)
    wide = np.empty((p.k, columns.shape[1]), x.dtype)
    return {"gemm_images": lambda: gemm.matmul(weights, images, out=out),
            "gemm_wide": lambda: gemm.matmul(weights, columns, out=wide)}


def first_calls_s(fns: dict[str, object]) -> dict[str, float]:
    """Each closure's fastest of three warm calls (one before them warms it): one call
    preempted by another process must not leave a contender out."""
    times = {}
    for name, fn in fns.items():
        _time_calls(fn, 1)
        times[name] = min(_time_calls(fn, 1) for _ in range(3))
    return times


STATISTICS = {"median": statistics.median, "min": min}


def halves(m: Measurement, stat: str) -> tuple[float, float]:
    """The statistic of the odd rounds' samples and of the even rounds'."""
    return (STATISTICS[stat](m.samples_s[0::2]), STATISTICS[stat](m.samples_s[1::2]))


def run_layer(name: str, p: object, policy: TimingPolicy, chosen: dict[str, cost.MachineModel]
              ) -> dict[str, object]:
    """Every closure's samples, which were left out, and each model's pick."""
    fns = closures(p)
    first = first_calls_s(fns)
    ours = [n for n in fns if n not in REFERENCES]
    fastest = min(first[n] for n in ours)
    timed = [n for n in fns if first[n] <= SLOW_FACTOR * fastest or n in REFERENCES]
    with torch.no_grad():
        results = dict(zip(timed, measure_interleaved([fns[n] for n in timed], policy)))
    return {"layer": name, "problem": str(p), "results": results,
            "ours": [n for n in ours if n in timed], "first_s": first,
            "left_out": sorted(set(fns) - set(timed)),
            "picks": {label: pick(p, model, ours) for label, model in chosen.items()}}


def summary(raw: dict[str, object], stat: str) -> dict[str, object]:
    """One layer's best, each pick's time over it, and the tuned pick's, by `stat`. A pick
    that was left out counts with its fastest warm call (over SLOW_FACTOR times the best)."""
    results, ours = raw["results"], raw["ours"]
    times = {n: STATISTICS[stat](m.samples_s) for n, m in results.items()}
    times |= {n: raw["first_s"][n] for n in raw["left_out"]}
    best = min(ours, key=times.get)
    odd_best = min(ours, key=lambda n: halves(results[n], stat)[0])
    first, second = halves(results[best], stat)
    row = {"layer": raw["layer"], "problem": raw["problem"], "best": best,
           "best_ms": times[best] * 1e3, "tuned": odd_best,
           "tuned_ratio": halves(results[odd_best], stat)[1]
           / min(halves(results[n], stat)[1] for n in ours),
           "times_ms": {n: t * 1e3 for n, t in times.items()},
           "iqr": [m.iqr_s / m.median_s for m in results.values()],
           "split": abs(first / second - 1)}
    for label, picked in raw["picks"].items():
        row[label] = picked
        row[f"{label}_ratio"] = times[picked] / times[best]
    return row


def geomean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def report(rows: list[dict[str, object]], peak_flops: float, model_gemm: float,
           labels: list[str], stat: str) -> None:
    print(f"\n## by each closure's {stat} over the rounds")
    print("\n| layer | best of ours (ms) | " + " | ".join(
        f"auto, {label} model: pick (× best)" for label in labels) + " | tuned (× best) |")
    print("|---|---|" + "---|" * len(labels) + "---|")
    for r in rows:
        picks = " | ".join(f"{r[label]} ({r[f'{label}_ratio']:.2f})" for label in labels)
        print(f"| {r['layer']} | {r['best']} {r['best_ms']:.2f} | {picks} | "
              f"{r['tuned']} ({r['tuned_ratio']:.2f}) |")
    print()
    for label in labels + ["tuned"]:
        ratios = [r[f"{label}_ratio"] for r in rows]
        worst = max(rows, key=lambda r: r[f"{label}_ratio"])
        print(f"auto ({label}) / per-layer best: geomean {geomean(ratios):.3f}, worst "
              f"{max(ratios):.3f} ({worst['layer']}), exact pick on "
              f"{sum(x == 1.0 for x in ratios)} of {len(rows)}")
    iqr = [x for r in rows for x in r["iqr"]]
    print(f"noise: IQR/median of the timed closures median {statistics.median(iqr):.3f}, "
          f"max {max(iqr):.3f}; the best's odd- vs even-round {stat}s differ by median "
          f"{statistics.median(r['split'] for r in rows):.3f}, max "
          f"{max(r['split'] for r in rows):.3f}")
    against_torch(rows)
    pointwise(rows, peak_flops, "the SGEMM peak (convbench machine)")
    pointwise(rows, model_gemm, "the calibration's GEMM rate")
    pointwise(rows, None, f"the faster {SGEMM_SIZE}^3 SGEMM (numpy's or torch's) in the same "
              "rounds")
    pointwise(rows, None, "that SGEMM", GEMM_ALONE,
              "the layers' GEMMs alone (operands allocated once, no copy; the faster way)")


def against_torch(rows: list[dict[str, object]]) -> None:
    """The issue's NCHW targets: our best over torch, geomean of every layer, and per 3x3
    layer."""
    ratios = {r["layer"]: r["best_ms"] / r["times_ms"]["torch"] for r in rows
              if "torch" in r["times_ms"]}
    if not ratios:
        return
    worst = max(ratios, key=ratios.get)
    print(f"our best / torch: geomean {geomean(list(ratios.values())):.3f} over {len(ratios)} "
          f"layers, worst {ratios[worst]:.2f} ({worst})")
    threes = {n: x for n, x in ratios.items()
              if descriptor.parse(next(r["problem"] for r in rows if r["layer"] == n)).kernel
              == (3, 3)}
    print("our best / torch on the 3x3 layers: " + ", ".join(
        f"{n} {x:.2f}" for n, x in threes.items()))


def pointwise(rows: list[dict[str, object]], peak_flops: float | None, which: str,
              names: tuple[str, ...] = ("im2col",), title: str = "im2col") -> None:
    """The rate of the fastest of `names` (im2col) on the 1x1 layers as a share of
    `peak_flops`, or (None) of the SGEMM timed in each layer's own rounds."""
    shares, rates = [], []
    for r in rows:
        p, times = descriptor.parse(r["problem"]), r["times_ms"]
        found = [times[n] for n in names if n in times]
        if p.kernel != (1, 1) or not found:
            continue
        rate = peak_flops
        if rate is None:
            sgemms = [times[n] for n in ("sgemm", "sgemm_torch") if n in times]
            if not sgemms:
                continue
            rate = 2 * SGEMM_SIZE**3 / (min(sgemms) / 1e3)
        rates.append(rate)
        shares.append(2 * p.macs / (min(found) / 1e3) / rate)
    if shares:
        print(f"{title} on the {len(shares)} 1x1 layers: median {statistics.median(shares):.0%} "
              f"of {which}, {statistics.median(rates) / 1e9:.0f} GFLOP/s (median); min "
              f"{min(shares):.0%}, max {max(shares):.0%}")


def write_csv(rows: list[dict[str, object]], path: Path, labels: list[str]) -> None:
    names = sorted({n for r in rows for n in r["times_ms"]})
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["layer", "problem", "best", *labels, "tuned", *[f"{n}_ms" for n in names]])
        for r in rows:
            out.writerow([r["layer"], r["problem"], r["best"], *[r[x] for x in labels],
                          r["tuned"], *[f"{r['times_ms'].get(n, float('nan')):.4f}"
                                        for n in names]])


def arguments() -> argparse.ArgumentParser:
    """The options this script shares with benchmarks/gemm_engine.py."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--layers")
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--layout", choices=("nchw", "nhwc"), default="nchw")
    return parser


def main() -> int:
    parser = arguments()
    parser.add_argument("--engine", choices=gemm.ENGINES,
                        help="the GEMM engine (default: the calibration's pick)")
    args = parser.parse_args()
    keep_freed_memory()
    policy = POLICIES["quick" if args.quick else "full"]
    print(f"# {args.layout}, N={args.batch}, {args.threads} threads, compiled kernels: "
          f"{'numba ' + str(compiled.version()) if compiled.enabled() else 'off'}", flush=True)
    with pinned_threads(args.threads):
        chosen = models(args.threads, args.engine)
        peak = machine.peaks(args.threads)["sgemm_gflops"] * 1e9
        raws = []
        for name, p in layers(args.batch, args.layers, args.layout):
            raws.append(run_layer(name, p, policy, chosen))
            r = summary(raws[-1], "median")
            print(f"{name}: " + " ".join(f"{n}={t:.2f}" for n, t in r["times_ms"].items())
                  + f" ms (medians); picks {raws[-1]['picks']}; left out "
                  f"{raws[-1]['left_out']}", flush=True)
    labels = list(chosen)
    for stat in STATISTICS:
        rows = [summary(raw, stat) for raw in raws]
        report(rows, peak, chosen["calibrated"].gemm_flops_per_s, labels, stat)
        if args.csv:
            write_csv(rows, args.csv.with_suffix(f".{stat}.csv"), labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
