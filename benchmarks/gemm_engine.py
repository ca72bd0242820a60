"""What the GEMM engine (convbench.backends.gemm) is worth: each of our candidates on
ResNet-50's 23 distinct layers, with numpy's GEMM and with torch's, side by side in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/gemm_engine.py

For each layer (N=8, fp32, 2 threads, NCHW or --layout nhwc): every candidate that supports it
on numpy (those whose fastest warm call is within SLOW_FACTOR of the fastest's), once per engine,
plus torch, timed in interleaved rounds (one sample of each closure per round, the order
rotated). Each closure sets its engine before its call. Reported per layer: each candidate's
time with torch's GEMM over its time with numpy's (medians); then, over the layers, the geomean
of those ratios per algorithm, our best / torch with each engine, and the noise (IQR / median).

Options: --quick, --threads T, --layers SUBSTRING, --layout nhwc, --csv PATH.
"""

from __future__ import annotations

import csv
import statistics
import sys

import auto_quality as aq  # noqa: E402  (the same layers, closures and rounds; sets the env)
import torch  # noqa: E402

from convbench.backends import gemm  # noqa: E402
from convbench.measure.environment import keep_freed_memory  # noqa: E402
from convbench.measure.timing import measure_interleaved  # noqa: E402
from convbench.run.processes import pinned_threads  # noqa: E402


def engine_closures(p: object) -> dict[str, object]:
    """name@engine for each candidate, and torch."""
    found = aq.closures(p)
    fns = {}
    for name, fn in found.items():
        if name in aq.REFERENCES:
            if name == "torch":
                fns[name] = fn
            continue
        for engine in gemm.ENGINES:
            fns[f"{name}@{engine}"] = (
                lambda fn=fn, engine=engine: (gemm.set_engine(engine), fn()))
    return fns


def run_layer(name: str, p: object, policy: object) -> dict[str, float]:
    fns = engine_closures(p)
    first = aq.first_calls_s(fns)
    fastest = min(t for n, t in first.items() if n != "torch")
    timed = [n for n in fns if n == "torch" or first[n] <= aq.SLOW_FACTOR * fastest]
    with torch.no_grad():
        results = dict(zip(timed, measure_interleaved([fns[n] for n in timed], policy)))
    return {"layer": name, "medians": {n: m.median_s for n, m in results.items()},
            "iqr": [m.iqr_s / m.median_s for m in results.values()]}


def main() -> int:
    args = aq.arguments().parse_args()
    keep_freed_memory()
    policy = aq.POLICIES["quick" if args.quick else "full"]
    print(f"# {args.layout}, N={args.batch}, {args.threads} threads; each candidate with numpy's "
          "GEMM and with torch's, and torch, interleaved", flush=True)
    rows = []
    with pinned_threads(args.threads):
        for name, p in aq.layers(args.batch, args.layers, args.layout):
            row = run_layer(name, p, policy)
            rows.append(row)
            med = row["medians"]
            ratios = {n.split("@")[0]: med[n] / med[n.replace("@torch", "@numpy")]
                      for n in med if n.endswith("@torch") and n.replace("@torch", "@numpy") in med}
            print(f"{name}: " + " ".join(f"{n}={t * 1e3:.2f}" for n, t in med.items())
                  + " ms; torch's GEMM / numpy's: "
                  + " ".join(f"{n} {r:.2f}" for n, r in ratios.items()), flush=True)
            row["ratios"] = ratios
    gemm.set_engine(None)
    by_algorithm: dict[str, list[float]] = {}
    for row in rows:
        for n, r in row["ratios"].items():
            by_algorithm.setdefault(n, []).append(r)
    print("\ntorch's GEMM / numpy's GEMM, geomean over the layers each runs on: " + ", ".join(
        f"{n} {aq.geomean(v):.3f} ({len(v)} layers, {min(v):.2f}-{max(v):.2f})"
        for n, v in by_algorithm.items()))
    for engine in gemm.ENGINES:
        best = [min(t for n, t in r["medians"].items() if n.endswith(f"@{engine}"))
                / r["medians"]["torch"] for r in rows if "torch" in r["medians"]]
        print(f"our best with {engine}'s GEMM / torch: geomean {aq.geomean(best):.3f} over "
              f"{len(best)} layers, worst {max(best):.2f}")
    iqr = [x for r in rows for x in r["iqr"]]
    print(f"noise: IQR/median of the timed closures median {statistics.median(iqr):.3f}, max "
          f"{max(iqr):.3f}")
    if args.csv:
        names = sorted({n for r in rows for n in r["medians"]})
        with args.csv.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["layer", *[f"{n}_ms" for n in names]])
            for r in rows:
                out.writerow([r["layer"], *[f"{r['medians'].get(n, float('nan')) * 1e3:.4f}"
                                            for n in names]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
