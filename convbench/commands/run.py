"""`convbench run SUITE...`: run suites, write results as they come, print the comparison."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from convbench.commands.args import csv_list, positive_float, positive_int

EXIT_OK, EXIT_WRONG = 0, 1


def add_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run", help="run suites and print the comparison table",
        description="Run suites (shipped names or .toml paths); results go to OUT/SUITE/"
        "results.csv as each case finishes, with meta.json beside them.")
    run.add_argument("suites", nargs="+", metavar="SUITE")
    run.add_argument("--algo", type=csv_list, help="comma-separated algorithms (default: the "
                     "suite's, else all registered)")
    run.add_argument("--backend", type=csv_list, help="comma-separated backends")
    run.add_argument("--batch", type=positive_int, help="override N for every case")
    run.add_argument("--out", type=Path, default=Path("reports"),
                     help="output directory (default: reports); each suite writes OUT/SUITE/")
    run.add_argument("--resume", action="store_true",
                     help="keep existing rows and run only the missing ones")
    run.add_argument("--threads", type=positive_int, help="threads (default: all cores)")
    run.add_argument("--budget", type=positive_float, help="timing budget per case x "
                     "algorithm, seconds (default: the suite's)")
    run.add_argument("--exact", action="store_true", default=None,
                     help="exactness mode: integer-filled inputs, exact algorithms bit for bit")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--interleave", action="store_true", help="time the algorithms of a case "
                     "in alternation, round after round, so that drift hits them alike")
    run.add_argument("--store", metavar="DB", help="also store the run in a results database "
                     "(SQLAlchemy URL or SQLite path; see `convbench history`)")


def main(args: argparse.Namespace, console: Console) -> int:
    # Imported here: building the command line (`convbench list`) stays free of pandas.
    import pandas as pd

    from convbench.analysis.table import render
    from convbench.commands.history import store
    from convbench.report import build_report
    from convbench.run.progress import RowReporter
    from convbench.run.rundir import read_results
    from convbench.run.runner import RunOptions, plan, run
    from convbench.run.suite import load_suite

    suites = [load_suite(name, batch=args.batch) for name in args.suites]  # all checked first
    options = RunOptions(algorithms=args.algo, backends=args.backend, threads=args.threads,
                         budget_s=args.budget, exact=args.exact, resume=args.resume,
                         interleave=args.interleave)
    for suite in suites:
        plan(suite, options)  # unknown algorithms fail here, before anything runs
    frames = []
    for suite in suites:
        out = args.out / suite.name
        with RowReporter(console, suite.name, enabled=not args.no_progress) as reporter:
            path = run(suite, out, options, on_row=reporter.on_row)
        frame = read_results(path)
        render(frame, suite.reference, console, title=f"{suite.name}: {path}")
        console.print(f"report: {escape(str(build_report([out], out)))}")
        _warn_if_noisy(out, console)
        if args.store:
            store(args.store, out, console)
        frames.append(frame)
    everything = pd.concat(frames)
    return EXIT_WRONG if everything["status"].isin(["wrong", "error"]).any() else EXIT_OK


def _warn_if_noisy(directory: Path, console: Console) -> None:
    """The noise warning the run recorded in its meta.json, if the machine was noisy."""
    from convbench.run.rundir import noise_warning

    message = noise_warning(directory)
    if message:
        console.print(f"[yellow]warning:[/] {escape(message)}")
