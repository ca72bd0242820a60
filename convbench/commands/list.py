"""`convbench list`: registered algorithms x backends with availability, and the suites."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from convbench.algorithms import registry
from convbench.backends import BACKENDS, backend_why_not


def add_parser(commands: Any) -> None:
    commands.add_parser("list", help="algorithms x backends with availability; suites",
                        description="List registered algorithms (with why one cannot run here) "
                        "and the shipped suites.")


def _availability(algorithm: registry.Algorithm, backend: str) -> str:
    if backend not in algorithm.backends:
        return "-"
    reason = backend_why_not(backend) or algorithm.missing_requirement()
    return f"[red]no: {escape(reason)}[/]" if reason else "[green]yes[/]"


def ranks_text(algorithm: registry.Algorithm) -> str:
    """The ranks an algorithm takes: '1-3', '1-2'; rank 1 through a 2-D algorithm counts."""
    ranks = sorted(r for r in (1, 2, 3) if registry.takes_rank(algorithm, r))
    return f"{ranks[0]}-{ranks[-1]}" if len(ranks) > 1 else str(ranks[0]) if ranks else "-"


def _algorithms_table() -> Table:
    table = Table(title="algorithms")
    for column in ("op", "algo", *BACKENDS, "exact", "ranks", "layouts", "what"):
        table.add_column(column)
    for a in registry.all_algorithms():
        cells = [_availability(a, backend) for backend in BACKENDS]
        table.add_row(a.op, a.name, *cells, "yes" if a.exact else "", ranks_text(a),
                      ", ".join(a.layouts), escape(a.summary))
    return table


def _suites_table() -> Table:
    from convbench.run.suite import builtin_suites, load_suite

    table = Table(title="suites")
    for column in ("suite", "cases", "description"):
        table.add_column(column)
    for name, path in sorted(builtin_suites().items()):
        suite = load_suite(str(path))
        table.add_row(name, str(len(suite.cases)), escape(suite.description))
    return table


def main(args: argparse.Namespace, console: Console) -> int:
    console.print(_algorithms_table())
    for name, error in registry.plugin_errors().items():
        console.print(f"[red]plugin {escape(name)} failed to load:[/] {escape(error)}")
    console.print(_suites_table())
    return 0
