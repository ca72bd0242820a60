"""`convbench plan DIR`: a network's plan from a run: each layer's time x count, every
strategy's end-to-end time, and the per-layer choice under a workspace budget, printed and
written as plan.csv and plan.json for a deployment script to read."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from convbench.commands.args import check_output_directory
from convbench.units import format_bytes, format_time, parse_bytes

PLAN_CSV, PLAN_JSON = "plan.csv", "plan.json"


def size(text: str) -> int:
    """An argparse type: '64MiB' -> bytes."""
    try:
        return parse_bytes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(commands: Any) -> None:
    plan = commands.add_parser(
        "plan", help="a network's plan: per-layer choices under a workspace budget",
        description="Read a run of a network suite (its cases are the layers; `count` says how "
        "often each occurs) and print each strategy's end-to-end time (the reference alone, each "
        "algorithm where it runs, auto, the per-layer best) and the plan: per layer the fastest "
        "ok algorithm whose workspace (the larger of measured and modelled) fits the budget. "
        "Writes plan.csv and plan.json.")
    plan.add_argument("directory", type=Path, metavar="DIR",
                      help="a run's directory (or the OUT of `convbench run`: each suite in it)")
    plan.add_argument("--workspace-budget", type=size, default=None, metavar="SIZE",
                      help="the most workspace a layer's algorithm may use, e.g. 64MiB "
                      "(default: no limit)")
    plan.add_argument("--backend", default="numpy", help="the backend to plan for "
                      "(default: numpy)")
    plan.add_argument("--out", type=Path, help="where to write plan.csv and plan.json "
                      "(default: the run's directory)")


def main(args: argparse.Namespace, console: Console) -> int:
    from convbench.analysis.plan import make_plan, plan_record
    from convbench.run.rundir import read_runs

    runs = read_runs(args.directory)
    if not runs:
        raise ValueError(f"DIR: no results.csv in {args.directory} or its subdirectories")
    for run in runs:
        backends = set(run.frame["backend"])
        if args.backend not in backends:
            raise ValueError(f"--backend {args.backend}: {run.directory} ran "
                             f"{', '.join(sorted(backends))}")
        plan = make_plan(run.frame, run.counts, run.reference, args.workspace_budget,
                         args.backend)
        out = args.out or run.directory
        check_output_directory(out, f"--out {out}")
        out.mkdir(parents=True, exist_ok=True)
        plan.layers.to_csv(out / PLAN_CSV, index=False)
        (out / PLAN_JSON).write_text(json.dumps(plan_record(plan), indent=1) + "\n")
        _print(console, plan, run.network)
        console.print(f"plan: {escape(str(out / PLAN_CSV))}, {escape(str(out / PLAN_JSON))}")
    return 0


def _time(value: float) -> str:
    return "-" if value != value else format_time(value)  # NaN: a layer left a hole


def _print(console: Console, plan: Any, network: bool) -> None:
    budget = ("no workspace budget" if plan.budget_bytes is None
              else f"workspace budget {format_bytes(plan.budget_bytes)}")
    note = "" if network else " (the suite does not say it is a network: each case counts once)"
    console.print(f"{escape(plan.suite)} on {plan.backend}, {budget}{note}")
    strategies = Table("strategy", "total", "layers ok", "vs reference")
    for row in plan.strategies.itertuples():
        ratio = "-" if row.vs_reference != row.vs_reference else f"{row.vs_reference:.2f}x"
        strategies.add_row(escape(row.strategy), _time(row.total_s),
                           f"{row.covered}/{row.layers}", ratio)
    console.print(strategies)
    layers = Table("layer", "count", "algorithm", "time", "time x count", "workspace", "note")
    for row in plan.layers.itertuples():
        chosen = row.algo if isinstance(row.algo, str) else None  # None: nothing fits
        space = format_bytes(row.workspace_bytes) if row.workspace_known else "unknown"
        layers.add_row(escape(row.layer), str(row.count), escape(chosen or "none"),
                       _time(row.time_s), _time(row.total_s), space if chosen else "-",
                       escape(row.note))
    console.print(layers)
