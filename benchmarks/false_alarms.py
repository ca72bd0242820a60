"""How often does `convbench compare` cry wolf, and how often does it catch a real slowdown?

    .venv/bin/python benchmarks/false_alarms.py --pairs 20 --busy --out /tmp/false_alarms

For each of N rounds it makes three runs of the `smoke` suite, each a fresh `convbench run` with
its defaults (those of the CI gate, benchmarks/gate.sh: interleaved, one thread, the samples
from several processes):

- base: the code as it is;
- same: identical code. compare(base, same) failing is a false alarm;
- slow: identical code except that one algorithm (--algo, im2col by default) is made slower by
  --slowdown (10% by default). compare(base, slow) flagging that algorithm as regressed is a
  detection.

The slowdown is injected without touching the product: in every run this script replaces the
algorithm's registry entry with a wrapper that calls the real function and then, when the
environment variable CONVBENCH_INJECT_SLOWDOWN holds a fraction f, spins for f times the call's
own duration. Base and same runs go through the same wrapper with f = 0. The run's timing
processes (convbench.run.processes, spawned) import this script as `__mp_main__` and install
the same wrapper there.

Every comparison is made three times: raw, with --normalize reference and with --normalize case
(compare's default), with compare's defaults otherwise (threshold, alpha, --statistic min); the
counts of each, each run's noise (the other processes' share of the CPU, from meta.json) and the
gate's rule (a row failing in two comparisons) are printed and written to OUT/summary.json.
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
GATE_RUN_ARGS = ["--no-progress"]  # convbench run's defaults are the gate's
ALGO_VARIABLE = "CONVBENCH_INJECT_ALGO"  # which algorithm the timing processes slow down


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


def install_slowdown(algo: str) -> None:
    """Put `algo` behind the slowdown wrapper, with the fraction in the environment."""
    from convbench.algorithms import registry

    original = registry.get("conv2d", algo)
    registry.remove("conv2d", algo)
    fraction = float(os.environ.get(SLOWDOWN_VARIABLE) or 0)
    registry.add(dataclasses.replace(original, fn=slowed(original.fn, fraction)))


# A timing process of a run (multiprocessing's spawn imports the parent's main script under this
# name): the same wrapper as the run's own process, or it would time the real function.
if __name__ == "__mp_main__" and os.environ.get(ALGO_VARIABLE):
    install_slowdown(os.environ[ALGO_VARIABLE])


def one_run(out: Path, algo: str, suite: str, budget: str | None,
            processes: str | None) -> int:
    """`convbench run` in this process, with `algo` behind the slowdown wrapper: the command's
    options, defaults included, as its parser gives them, without the table and the report
    (they take seconds and measure nothing)."""
    from convbench.cli import build_parser
    from convbench.run.runner import RunOptions, run
    from convbench.run.suite import load_suite

    install_slowdown(algo)
    argv = ["run", suite, "--out", str(out), *GATE_RUN_ARGS]
    argv += ["--budget", budget] if budget else []
    args = build_parser().parse_args(argv + (["--processes", processes] if processes else []))
    options = RunOptions(threads=args.threads, budget_s=args.budget,
                         interleave=args.interleave, processes=args.processes)
    loaded = load_suite(suite)
    run(loaded, out / loaded.name, options)
    return 0


def spawn(out: Path, args: argparse.Namespace, fraction: float) -> None:
    env = dict(os.environ, **{SLOWDOWN_VARIABLE: str(fraction), ALGO_VARIABLE: args.algo})
    command = [sys.executable, __file__, "--one-run", str(out), "--algo", args.algo,
               "--suite", args.suite] + (["--budget", args.budget] if args.budget else []) \
        + (["--processes", str(args.processes)] if args.processes else [])
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def first_processes(runs: list[Any], count: int | None) -> list[Any]:
    """The runs as if they had taken their samples from their first `count` processes only."""
    if not count:
        return runs
    out = []
    for run in runs:
        kept = {k: p < count for k, p in run.processes.items()}
        samples = {k: v[kept[k]] if k in kept else v for k, v in run.samples.items()}
        processes = {k: p[p < count] for k, p in run.processes.items()}
        out.append(dataclasses.replace(run, samples=samples, processes=processes))
    return out


def judge(base: Path, new: Path, algo: str, normalize: str | None, args: argparse.Namespace
          ) -> dict[str, Any]:
    import pandas as pd

    from convbench.analysis.compare import CompareOptions, compare, gate_failed
    from convbench.run.rundir import read_runs

    options = CompareOptions(normalize=normalize, statistic=args.statistic,
                             **({"threshold": args.threshold} if args.threshold else {}))
    new_runs = first_processes(read_runs(new), args.keep_processes)
    comparison = compare(first_processes(read_runs(base), args.keep_processes), new_runs,
                         options)
    # rows that ran the slowed algorithm: itself, and selectors (auto) that picked it
    ran = pd.concat([r.frame for r in new_runs]).set_index(["case", "algo"])["ran_algo"]
    target = [algo in (a, ran.get((c, a), "")) for c, a in zip(comparison["case"],
                                                                  comparison["algo"])]
    comparison = comparison.assign(target=target)
    regressed = comparison[comparison["change"].isin(["regressed", "now failing"])]
    return {"failed": gate_failed(comparison),
            "regressed": [f"{r.case}/{r.algo} {r.ratio:.3f}" for r in regressed.itertuples()],
            "processes": int(new_runs[0].frame["processes"].max()) if new_runs[0].frame[
                "processes"].notna().any() else 1,
            "target_regressed": int((regressed["algo"] == algo).sum()),
            "target_rows": int(((comparison["algo"] == algo)
                                & (comparison["new_status"] == "ok")).sum()),
            "others_regressed": int((~regressed["target"]).sum())}


def failing_rows(judged: dict[str, Any]) -> set[str]:
    """The rows a comparison failed on ("case/algo"), without their ratios."""
    return {text.rsplit(" ", 1)[0] for text in judged["regressed"]}


def gate_pairings(records: list[dict[str, Any]], mode: str) -> dict[str, int]:
    """The gate's rule on these comparisons: every two of them taken as (first, confirmation),
    failing only on a row that failed in both (as in README's pairings)."""
    pairings = same = slow = 0
    for i, first in enumerate(records):
        for second in records[i + 1:]:
            pairings += 1
            same += bool(failing_rows(first["same"][mode]) & failing_rows(second["same"][mode]))
            caught = failing_rows(first["slow"][mode]) & failing_rows(second["slow"][mode])
            slow += any(row.split("/")[1] == first["algo"] for row in caught)
    return {"pairings": pairings, "false_failures": same, "detections": slow}


def tally(records: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    return {
        "pairs": len(records),
        "false_alarms": sum(r["same"][mode]["failed"] for r in records),
        "detections": sum(r["slow"][mode]["target_regressed"] > 0 for r in records),
        "slow_pairs_with_other_alarms": sum(r["slow"][mode]["others_regressed"] > 0
                                            for r in records),
        "gate": gate_pairings(records, mode),
    }


def other_load(out: Path) -> float | None:
    """The other processes' share of the CPU while the run into `out` ran (meta.json's
    noise)."""
    found = next(out.glob("*/meta.json"), None)
    meta = json.loads(found.read_text()) if found else {}
    return (meta.get("noise") or {}).get("other_load")


def noise(records: list[dict[str, Any]]) -> dict[str, Any]:
    loads = sorted(x for r in records for x in r["other_load"].values() if x is not None)
    if not loads:
        return {}
    return {"runs": len(loads), "other_load_min": loads[0],
            "other_load_median": loads[len(loads) // 2], "other_load_max": loads[-1]}


def cache_peaks(out: Path) -> None:
    """The machine's peaks measured once, into a cache of the study's own, and kept even under
    load (--force): else every run of a busy machine measures them again (seconds each), and
    they do not enter a comparison."""
    os.environ["CONVBENCH_CACHE"] = str(out / "cache")
    subprocess.run([sys.executable, "-m", "convbench", "machine", "--threads", "1", "--force"],
                   capture_output=True, check=True)


def study(args: argparse.Namespace) -> dict[str, Any]:
    if not args.rejudge:
        cache_peaks(args.out)
    records = []
    for i in range(1, args.pairs + 1):
        runs = {name: args.out / f"{i:02d}-{name}" for name in ("base", "same", "slow")}
        for name, path in runs.items():
            if not args.rejudge:
                spawn(path, args, args.slowdown if name == "slow" else 0.0)
        record: dict[str, Any] = {"pair": i, "algo": args.algo,
                                  "other_load": {n: other_load(p) for n, p in runs.items()}}
        for name in ("same", "slow"):
            record[name] = {mode: judge(runs["base"], runs[name], args.algo, normalize, args)
                            for mode, normalize in MODES.items()}
        records.append(record)
        print(f"pair {i:2d}: " + "; ".join(
            f"{mode}: same -> {record['same'][mode]['regressed'] or 'quiet'}, slow -> "
            f"{record['slow'][mode]['target_regressed']}/{record['slow'][mode]['target_rows']} "
            f"{args.algo} rows caught" for mode in ("normalized", "case")), flush=True)
    settings = {k: str(v) for k, v in vars(args).items() if k != "one_run"}
    return {"settings": settings, "noise": noise(records)} | {
        mode: tally(records, mode) for mode in MODES} | {"pairs": records}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--slowdown", type=float, default=0.10,
                        help="the injected slowdown, a fraction (default 0.10)")
    parser.add_argument("--algo", default="im2col", help="the algorithm to slow down")
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--budget", help="timing budget per case x algorithm, seconds "
                        "(default: the suite's)")
    parser.add_argument("--processes", type=int, help="convbench run's --processes (default: "
                        "its own)")
    parser.add_argument("--statistic", default="min", help="compare's --statistic (default min)")
    parser.add_argument("--threshold", type=float, help="compare's --threshold, a fraction "
                        "(default: its own)")
    parser.add_argument("--keep-processes", type=int, help="judge each run by the samples of "
                        "its first K processes only (with --rejudge: fewer processes, same runs)")
    parser.add_argument("--out", type=Path, default=Path("reports/false_alarms"))
    parser.add_argument("--busy", action="store_true", help="keep one core busy with another "
                        "process all along (numpy and pure Python, one thread)")
    parser.add_argument("--rejudge", action="store_true", help="make no runs: compare the "
                        "runs already in OUT again (e.g. with another --statistic)")
    parser.add_argument("--one-run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        return one_run(args.one_run, args.algo, args.suite, args.budget,
                       str(args.processes) if args.processes else None)
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
    name = f"summary-{args.statistic}-t{args.threshold}-k{args.keep_processes}.json" \
        if args.rejudge else "summary.json"
    (args.out / name).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"noise: {json.dumps(summary['noise'])}")
    for mode in MODES:
        print(f"{mode}: {json.dumps(summary[mode])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
