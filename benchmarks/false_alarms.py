"""How often does `convbench compare` cry wolf, and how often does it catch a real slowdown?

    .venv/bin/python benchmarks/false_alarms.py --pairs 20 --out /tmp/false_alarms

For each of N rounds it makes three runs of the `smoke` suite, each in a fresh process, with the
settings of the CI gate (benchmarks/gate.sh):

- base: the code as it is;
- same: identical code. compare(base, same) failing is a false alarm;
- slow: identical code except that one algorithm (--algo, im2col by default) is made 25% slower.
  compare(base, slow) flagging that algorithm as regressed is a detection.

The slowdown is injected without touching the product: in every run this script replaces the
algorithm's registry entry with a wrapper that calls the real function and then, when the
environment variable CONVBENCH_INJECT_SLOWDOWN holds a fraction f, spins for f times the call's
own duration. Base and same runs go through the same wrapper with f = 0.

Every comparison is made three times: raw, with --normalize reference and with --normalize case
(the gate's), with compare's defaults otherwise (threshold 10%, alpha 0.002) and --statistic
min; the counts of each are printed and written to OUT/summary.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SLOWDOWN_VARIABLE = "CONVBENCH_INJECT_SLOWDOWN"
# --busy: a stand-in for another engineer's test run, one busy thread of numpy and pure Python
BUSY = """
import numpy as np
a = np.random.rand(300, 300)
while True:
    for _ in range(20):
        a = (a @ a) / 300.0
    s = 0
    for i in range(200_000):
        s += i * i
"""
# compare's --normalize of each judgement: "normalized" is by the reference (torch), "case" by
# the median of the case's algorithms (the CI gate's)
MODES = {"raw": None, "normalized": "reference", "case": "case"}
GATE_RUN_ARGS = ["--threads", "1", "--interleave", "--no-progress"]


def slowed(fn: Callable[..., Any], fraction: float) -> Callable[..., Any]:
    """`fn`, then a busy wait of `fraction` times the time `fn` took: a slowdown of exactly
    that fraction, whatever the problem size."""
    def call(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        if fraction:
            end = start + (time.perf_counter() - start) * (1 + fraction)
            while time.perf_counter() < end:
                pass
        return out

    return call


def one_run(out: Path, algo: str, suite: str, budget: str | None) -> int:
    """A `convbench run` in this process, with `algo` behind the slowdown wrapper."""
    from convbench import cli

    from convbench.algorithms import registry
    original = registry.get("conv2d", algo)
    registry.remove("conv2d", algo)
    fraction = float(os.environ.get(SLOWDOWN_VARIABLE) or 0)
    registry.add(dataclasses.replace(original, fn=slowed(original.fn, fraction)))
    argv = ["run", suite, "--out", str(out), *GATE_RUN_ARGS]
    return cli.main(argv + (["--budget", budget] if budget else []))


def spawn(out: Path, args: argparse.Namespace, fraction: float) -> None:
    env = dict(os.environ, **{SLOWDOWN_VARIABLE: str(fraction)})
    command = [sys.executable, __file__, "--one-run", str(out), "--algo", args.algo,
               "--suite", args.suite] + (["--budget", args.budget] if args.budget else [])
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def judge(base: Path, new: Path, algo: str, normalize: str | None, statistic: str
          ) -> dict[str, Any]:
    import pandas as pd

    from convbench.analysis.compare import CompareOptions, compare, gate_failed
    from convbench.run.rundir import read_runs

    options = CompareOptions(normalize=normalize, statistic=statistic)
    new_runs = read_runs(new)
    comparison = compare(read_runs(base), new_runs, options)
    # rows that ran the slowed algorithm: itself, and selectors (auto) that picked it
    ran = pd.concat([r.frame for r in new_runs]).set_index(["case", "algo"])["ran_algo"]
    target = [algo in (a, ran.get((c, a), "")) for c, a in zip(comparison["case"],
                                                                  comparison["algo"])]
    comparison = comparison.assign(target=target)
    regressed = comparison[comparison["change"].isin(["regressed", "now failing"])]
    return {"failed": gate_failed(comparison),
            "regressed": [f"{r.case}/{r.algo} {r.ratio:.3f}" for r in regressed.itertuples()],
            "target_regressed": int((regressed["algo"] == algo).sum()),
            "target_rows": int(((comparison["algo"] == algo)
                                & (comparison["new_status"] == "ok")).sum()),
            "others_regressed": int((~regressed["target"]).sum())}


def tally(records: list[dict[str, Any]], mode: str) -> dict[str, int]:
    return {
        "pairs": len(records),
        "false_alarms": sum(r["same"][mode]["failed"] for r in records),
        "detections": sum(r["slow"][mode]["target_regressed"] > 0 for r in records),
        "slow_pairs_with_other_alarms": sum(r["slow"][mode]["others_regressed"] > 0
                                            for r in records),
    }


def study(args: argparse.Namespace) -> dict[str, Any]:
    records = []
    for i in range(1, args.pairs + 1):
        runs = {name: args.out / f"{i:02d}-{name}" for name in ("base", "same", "slow")}
        for name, path in runs.items():
            if not args.rejudge:
                spawn(path, args, args.slowdown if name == "slow" else 0.0)
        record: dict[str, Any] = {"pair": i}
        for name in ("same", "slow"):
            record[name] = {mode: judge(runs["base"], runs[name], args.algo, normalize,
                                        args.statistic) for mode, normalize in MODES.items()}
        records.append(record)
        print(f"pair {i:2d}: " + "; ".join(
            f"{mode}: same -> {record['same'][mode]['regressed'] or 'quiet'}, slow -> "
            f"{record['slow'][mode]['target_regressed']}/{record['slow'][mode]['target_rows']} "
            f"{args.algo} rows caught" for mode in ("normalized", "case")), flush=True)
    settings = {k: str(v) for k, v in vars(args).items() if k != "one_run"}
    return {"settings": settings} | {mode: tally(records, mode) for mode in MODES} | {
        "pairs": records}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--slowdown", type=float, default=0.25)
    parser.add_argument("--algo", default="im2col", help="the algorithm to slow down")
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--budget", default="0.2",
                        help="timing budget per case x algorithm, seconds (default 0.2)")
    parser.add_argument("--statistic", default="min", help="compare's --statistic (default min)")
    parser.add_argument("--out", type=Path, default=Path("reports/false_alarms"))
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another "
                        "process all along (numpy and pure Python, one thread)")
    parser.add_argument("--rejudge", action="store_true", help="make no runs: compare the "
                        "runs already in OUT again (e.g. with another --statistic)")
    parser.add_argument("--one-run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        return one_run(args.one_run, args.algo, args.suite, args.budget)
    start = time.monotonic()
    busy = subprocess.Popen([sys.executable, "-c", BUSY], env=dict(
        os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")) if args.busy else None
    try:
        summary = study(args)
    finally:
        if busy:
            busy.terminate()
            busy.wait()
    summary["wall_s"] = round(time.monotonic() - start)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"summary-{args.statistic}.json" if args.rejudge else "summary.json"
    (args.out / name).write_text(json.dumps(summary, indent=2) + "\n")
    for mode in MODES:
        print(f"{mode}: {json.dumps(summary[mode])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
