"""`convbench history add|list|plot`: the results database (SQLite by default, any SQLAlchemy
URL with --db or $CONVBENCH_DB)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from convbench.commands.args import csv_list

EXIT_OK = 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "history", help="store runs in a results database, list them, plot a case over commits",
        description="The results database: an SQLite file by default (reports/history.db), "
        "or any SQLAlchemy URL (--db, or $CONVBENCH_DB), e.g. postgresql+psycopg://user@host/db.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="store run directories (OUT or OUT/SUITE)")
    add.add_argument("directories", nargs="+", type=Path, metavar="DIR")
    listing = actions.add_parser("list", help="list the stored runs")
    listing.add_argument("--suite")
    plot = actions.add_parser("plot", help="a case's time over commits, as PNG")
    plot.add_argument("case")
    plot.add_argument("--suite")
    plot.add_argument("--algo", type=csv_list, help="comma-separated algorithms (default all)")
    plot.add_argument("--backend")
    plot.add_argument("--out", type=Path, help="PNG path (default: reports/history-CASE.png)")
    for sub in (add, listing, plot):
        sub.add_argument("--db", help="SQLAlchemy URL or SQLite path (default: $CONVBENCH_DB, "
                         "else sqlite:///reports/history.db)")


def store(db: str | None, directory: Path, console: Console) -> None:
    """Add the run(s) in `directory` to the database and say what happened."""
    from convbench.analysis import history

    for run_id, added in history.add_run(db, directory):
        state = "stored as run" if added else "already stored as run"
        console.print(f"{escape(str(directory))}: {state} {run_id} in "
                      f"{escape(history.engine_url(db))}")


def _list(args: argparse.Namespace, console: Console) -> int:
    from convbench.analysis import history

    frame = history.list_runs(args.db, args.suite)
    table = Table(title=f"runs in {history.engine_url(args.db)}")
    for column in ("id", "suite", "date", "commit", "machine", "host", "threads", "rows", "ok"):
        table.add_column(column)
    for _, run in frame.iterrows():
        commit = (run["commit"] or "")[:10] + ("+" if run["dirty"] else "")
        table.add_row(*(escape(str(v)) for v in (run["id"], run["suite"], run["date"], commit,
                      run["machine"], run["host"], run["threads"], run["rows"], run["ok"])))
    console.print(table)
    return EXIT_OK


def _plot(args: argparse.Namespace, console: Console) -> int:
    from convbench.report.figures.history import save_history_png

    out = args.out or Path("reports") / f"history-{args.case}.png"
    path = save_history_png(args.db, args.case, out, args.suite, args.algo, args.backend)
    console.print(f"written: {escape(str(path))}")
    return EXIT_OK


def main(args: argparse.Namespace, console: Console) -> int:
    if args.action == "add":
        for directory in args.directories:
            store(args.db, directory, console)
        return EXIT_OK
    return _list(args, console) if args.action == "list" else _plot(args, console)
