"""`convbench tune SUITE...`: measure every algorithm on the suites' cases and store the winner of
each problem for this machine, which `algo="auto"` then picks (as cuDNN's algorithm search)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from convbench.algorithms.auto import forget, never_tuned, tuning_path
from convbench.backends import gemm
from convbench.commands.args import check_suite_directories, csv_list, positive_int
from convbench.commands.output import print_notes
from convbench.measure.environment import usable_cpus

if TYPE_CHECKING:
    import pandas as pd


def add_parser(commands: Any) -> None:
    tune = commands.add_parser(
        "tune", help="measure winners per problem for algo='auto' on this machine",
        description="Run the suites with every registered algorithm (except the reference and "
        "the teaching loops), each case's candidates timed in alternation, and store each "
        "problem's fastest correct algorithm in the tuning table of this machine and GEMM "
        "engine.")
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
    from convbench.run.runner import plan, run
    from convbench.run.suite import load_suite

    threads = args.threads or usable_cpus()
    suites = [load_suite(name, batch=args.batch) for name in args.suites]
    check_suite_directories(args.out, [suite.name for suite in suites])
    searches = [(suite, _options(suite, args.algo, threads)) for suite in suites]
    for suite, options in searches:
        plan(suite, options)  # unknown algorithm names fail here, before anything runs
        print_notes(console, suite)
    engine = gemm.engine(threads)  # the runs' engine (runner.gemm_meta): its table
    table_path = tuning_path(threads, engine)
    _stored(table_path)  # a table that cannot be read fails now, not after the search
    found: dict[str, str] = {}
    for suite, options in searches:
        found |= winners(read_results(run(suite, args.out / suite.name, options)))
    table_path.parent.mkdir(parents=True, exist_ok=True)
    merged = _stored(table_path) | found
    table_path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    forget()
    _print(console, found, table_path, engine)
    return 0


def _options(suite: Any, algo: tuple[str, ...] | None, threads: int) -> Any:
    """A search's run options. A case's candidates are timed in alternation, so that a drift in
    the machine's speed during the search falls on all of them alike and cannot crown the
    luckier one."""
    from convbench.run.runner import RunOptions

    names = tuple(n for n in (algo or _algorithms(suite)) if n not in never_tuned())
    if not names:  # an empty list would mean "every algorithm" to the runner
        raise ValueError(f"--algo {','.join(algo or ())}: no candidate to tune ("
                         f"{', '.join(sorted(never_tuned()))} never are)")
    return RunOptions(algorithms=names, threads=threads, interleave=True)


def _stored(path: Path) -> dict[str, str]:
    """The tuning table already on disk ({} without one); ValueError naming it when it is not
    one."""
    if not path.exists():
        return {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read the tuning table: {error}") from None
    if not isinstance(stored, dict):
        raise ValueError(f"{path}: not a tuning table (a JSON object of descriptor: algorithm)")
    return stored


def _algorithms(suite: Any) -> tuple[str, ...]:
    """Every registered algorithm of the suite's ops: a search is over all of them, whatever
    list the suite names for its own runs."""
    from convbench.algorithms import registry

    ops = {case.problem.op for case in suite.cases}
    return tuple(dict.fromkeys(a.name for op in sorted(ops) for a in registry.all_algorithms(op)))


def _print(console: Console, found: dict[str, str], path: Path, engine: str) -> None:
    table = Table(title=f"tuned winners with {engine}'s GEMM ({path})")
    table.add_column("problem")
    table.add_column("algorithm")
    for descriptor, algo in sorted(found.items()):
        table.add_row(descriptor, algo)
    console.print(table)
