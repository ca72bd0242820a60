"""`convbench tune SUITE...`: measure every algorithm on the suites' cases and store the winner of
each problem for this machine, which `algo="auto"` then picks (as cuDNN's algorithm search)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from convbench.algorithms.auto import forget, never_tuned, tuning_path
from convbench.commands.args import csv_list, positive_int

if TYPE_CHECKING:
    import pandas as pd


def add_parser(commands: Any) -> None:
    tune = commands.add_parser(
        "tune", help="measure winners per problem for algo='auto' on this machine",
        description="Run the suites with every registered algorithm (except the reference and "
        "the teaching loops), each case's candidates timed in alternation, and store each "
        "problem's fastest correct algorithm in the tuning table of this machine.")
    tune.add_argument("suites", nargs="+", metavar="SUITE")
    tune.add_argument("--batch", type=positive_int, help="override N for every case")
    tune.add_argument("--algo", type=csv_list, help="comma-separated candidates (default: "
                      "every registered algorithm of the suite's ops)")
    tune.add_argument("--threads", type=positive_int, help="threads (default: all cores)")
    tune.add_argument("--out", type=Path, default=Path("reports") / "tune",
                      help="where the tuning runs' results go (default: reports/tune)")


def winners(frame: pd.DataFrame) -> dict[str, str]:
    """Fastest ok algorithm per descriptor, among the ones auto may pick."""
    ok = frame[(frame["status"] == "ok") & (frame["backend"] == "numpy")
               & ~frame["algo"].isin(never_tuned())]
    best = ok.loc[ok.groupby("descriptor")["time_median_s"].idxmin()]
    return dict(zip(best["descriptor"], best["algo"]))


def main(args: argparse.Namespace, console: Console) -> int:
    from convbench.run.rundir import read_results  # pandas: loaded when the command runs
    from convbench.run.runner import RunOptions, run
    from convbench.run.suite import load_suite

    threads = args.threads or os.cpu_count() or 1
    suites = [load_suite(name, batch=args.batch) for name in args.suites]
    found: dict[str, str] = {}
    for suite in suites:
        names = tuple(n for n in (args.algo or _algorithms(suite))
                      if n not in never_tuned())
        # A case's candidates are timed in alternation, so that a drift in the machine's speed
        # during the search falls on all of them alike and cannot crown the luckier one.
        options = RunOptions(algorithms=names, threads=threads, interleave=True)
        path = run(suite, args.out / suite.name, options)
        found |= winners(read_results(path))
    table_path = tuning_path(threads)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    stored = json.loads(table_path.read_text()) if table_path.exists() else {}
    table_path.write_text(json.dumps(stored | found, indent=2, sort_keys=True) + "\n")
    forget()
    _print(console, found, table_path)
    return 0


def _algorithms(suite: Any) -> tuple[str, ...]:
    """Every registered algorithm of the suite's ops: a search is over all of them, whatever
    list the suite names for its own runs."""
    from convbench.algorithms import registry

    ops = {case.problem.op for case in suite.cases}
    return tuple(dict.fromkeys(a.name for op in sorted(ops) for a in registry.all_algorithms(op)))


def _print(console: Console, found: dict[str, str], path: Path) -> None:
    table = Table(title=f"tuned winners ({path})")
    table.add_column("problem")
    table.add_column("algorithm")
    for descriptor, algo in sorted(found.items()):
        table.add_row(descriptor, algo)
    console.print(table)
