"""`convbench fuzz`: a correctness campaign over random edge-biased problems of every op, rank,
dtype and layout, each checked with every chosen algorithm against the float64 oracle; each
distinct failure shrunk to a minimal problem and printed as one repro line. `--repro DESC`
checks one problem instead (what a repro line runs).

Exit codes: 0 every check ok, 1 a wrong result or an algorithm that raised, 2 bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape

from convbench.commands.args import csv_list, positive_float, positive_int

DEFAULT_CASES = 500


def add_parser(commands: Any) -> None:
    fuzz = commands.add_parser(
        "fuzz", help="a correctness campaign: random problems, every algorithm, the oracle",
        description="Draw random problems (seeded; biased to the edges: 1x1 inputs, kernels as "
        "large as the input, large strides, dilation, depthwise groups, odd and prime sizes, "
        "per-side padding) of every op, direction, rank, dtype and layout; check every chosen "
        "algorithm that runs each on numpy against the float64 oracle; shrink each distinct "
        "failure to a minimal problem and print it as a repro line. Exits 1 on any wrong "
        "result or algorithm that raised.")
    amount = fuzz.add_mutually_exclusive_group()
    amount.add_argument("--cases", type=positive_int, metavar="N",
                        help=f"how many cases to draw (default {DEFAULT_CASES})")
    amount.add_argument("--minutes", type=positive_float, metavar="M",
                        help="draw cases for this long instead")
    fuzz.add_argument("--seed", type=int, default=0, help="the campaign's seed (default 0); "
                      "with --repro, the seed of the problem's inputs")
    fuzz.add_argument("--algo", type=csv_list, metavar="A,B",
                      help="the algorithms to check (default: every one that runs on numpy, "
                      "plugins and auto included)")
    fuzz.add_argument("--op", type=csv_list, metavar="OP,OP",
                      help="the ops to draw, e.g. conv2d,conv1d_backward,max_pool3d "
                      "(default: every op)")
    fuzz.add_argument("--repro", metavar="DESCRIPTOR",
                      help="check this one problem (with --algo: those algorithms) and exit")
    fuzz.add_argument("--exact", action="store_true",
                      help="with --repro: exactness-mode inputs, exact algorithms bit for bit")
    fuzz.add_argument("--cluster", metavar="ADDRESS",
                      help="draw and check the cases on Dask workers: a scheduler's address "
                      "(tcp://HOST:8786) or local:N; correctness needs no exclusive machine, so "
                      "every worker takes cases (needs pip install convbench[cluster])")


def main(args: argparse.Namespace, console: Console) -> int:
    from convbench.fuzz.campaign import Config, validate

    config = Config(seed=args.seed, algorithms=args.algo, ops=args.op)
    if args.repro is not None:
        if args.cases or args.minutes or args.op:
            raise ValueError("--repro checks one problem: it takes no --cases, --minutes or --op")
        return _repro(args, config, console)
    if args.exact:
        raise ValueError("--exact goes with --repro (a campaign draws exactness mode itself)")
    if args.cluster:
        from convbench.run.cluster import local_workers

        local_workers(args.cluster)  # a bad local:N is bad usage before anything starts
    validate(config)
    return _campaign(args, config, console)


def _repro(args: argparse.Namespace, config: Any, console: Console) -> int:
    """Check one problem with the named algorithms (or every one that runs it)."""
    from convbench.algorithms.registry import get
    from convbench.fuzz.campaign import check_one, runners
    from convbench.problems import parse

    p = parse(args.repro)
    if args.algo:
        algorithms = [get(p.op, name) for name in args.algo]
        for algorithm in algorithms:
            reason = algorithm.why_not(p, "numpy")
            if reason:
                raise ValueError(f"--algo {algorithm.name} does not run {p}: {reason}")
    else:
        algorithms = runners(p, config)
    if not algorithms:
        console.print(f"{escape(str(p))}: no chosen algorithm runs it on numpy")
    failed = 0
    for algorithm in algorithms:
        check = check_one(p, algorithm, args.seed, args.exact)
        failed += check.status != "ok"
        console.print(f"{escape(str(p))} {escape(_label(check))}: {check.status}"
                      + (f" ({escape(check.message)})" if check.message else ""))
    return 1 if failed else 0


def _label(check: Any) -> str:
    return check.algo if check.ran == check.algo else f"{check.algo} (ran {check.ran})"


def _campaign(args: argparse.Namespace, config: Any, console: Console) -> int:
    from convbench.fuzz.campaign import Tally

    count = None if args.minutes else (args.cases or DEFAULT_CASES)
    seconds = args.minutes * 60 if args.minutes else None
    what = f"{count} cases" if count else f"{args.minutes:g} minutes"
    where = f", on --cluster {args.cluster}" if args.cluster else ""
    console.print(f"fuzz: seed {config.seed}, {what}, ops {', '.join(config.chosen_ops())}"
                  f"{where}")
    tally, start, shown = Tally(), time.perf_counter(), time.perf_counter()
    with contextlib.ExitStack() as stack:
        drawn = _drawn(args, config, count, seconds, stack)
        for case in drawn:
            shown = _count(console, tally, case, count, start, shown)
    tally.failures.sort(key=lambda failure: failure[0].index)  # the order of a local run
    _summary(console, tally)
    failed = _failures(console, tally)
    verdict = "failed" if failed else "ok"
    console.print(f"convbench fuzz: {verdict} ({tally.cases} cases, {tally.total_checks} checks, "
                  f"{len(tally.failures)} failed, {time.perf_counter() - start:.0f} s)")
    return 1 if failed else 0


def _drawn(args: argparse.Namespace, config: Any, count: int | None, seconds: float | None,
           stack: contextlib.ExitStack) -> Iterator[Any]:
    """The campaign's cases: here, in order, or on the cluster's workers as they finish (the
    same cases: each is a pure function of the seed and its index)."""
    from convbench.fuzz.campaign import cases, run_case

    if not args.cluster:
        return cases(config, count, seconds)
    from convbench.run.cluster import correctness_client, mapped

    client = stack.enter_context(correctness_client(args.cluster))
    return mapped(client, run_case, config, count, seconds)


def _count(console: Console, tally: Any, case: Any, count: int | None, start: float,
           shown: float) -> float:
    """Add the case; a progress line every 10 s and at the end; when the last line was."""
    tally.add(case)
    now = time.perf_counter()
    if now - shown >= 10 or tally.cases == count:
        console.print(f"  [{tally.cases}{'/' + str(count) if count else ''}] "
                      f"{now - start:.0f} s, {tally.total_checks} checks, "
                      f"{len(tally.failures)} failed")
        return now
    return shown


def _summary(console: Console, tally: Any) -> None:
    """Checks per op family and algorithm: ok, wrong, error, and cases passed over as slow."""
    console.print("checks per op and algorithm (ok / wrong / error; slow: passed over):")
    for family, algo in sorted(set(tally.checks) | set(tally.slow)):
        counts = tally.checks.get((family, algo), dict.fromkeys(("ok", "wrong", "error"), 0))
        slow = tally.slow.get((family, algo), 0)
        console.print(f"  {family} {escape(algo)}: {counts['ok']} / {counts['wrong']} / "
                      f"{counts['error']}" + (f"; slow {slow}" if slow else ""))


def _failures(console: Console, tally: Any) -> int:
    """Each distinct failure (op family, algorithm, status), shrunk, with its repro line."""
    from convbench.fuzz.shrink import shrink
    from convbench.problems import parse

    for case, check in tally.first_failures():
        same = tally.like(case, check)
        shrunk = shrink(parse(case.descriptor), check.algo, case.input_seed, case.exact)
        console.print(f"FAILED {escape(check.algo)} {check.status} on {escape(case.descriptor)} "
                      f"(case {case.index}; {same} like it): {escape(check.message)}")
        console.print(f"  shrunk in {shrunk.checks_run} checks to {escape(str(shrunk.problem))}: "
                      f"{escape(shrunk.check.message)}")
        console.print(f"  repro: {escape(repro_line(shrunk.problem, check.algo, case))}")
    return len(tally.failures)


def repro_line(problem: Any, algo: str, case: Any) -> str:
    """The command that checks the shrunk problem again, with the case's inputs."""
    exact = " --exact" if case.exact else ""
    return f"convbench fuzz --repro {problem} --algo {algo} --seed {case.input_seed}{exact}"
