"""`convbench report DIR...`: a report from result directories, side by side in one page."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from convbench.commands.args import check_output_directory
from convbench.report import FORMATS  # light: matplotlib and jinja2 load only to build one


def add_parser(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="write an HTML (or Markdown) report from result directories",
        description="Read one or more result directories (each holds a suite's results.csv and "
        "meta.json; a directory of such directories counts as all of them) and write one report "
        "with them side by side: index.html with PNG figures, or report.md, and the table "
        "behind it as report.csv and report.parquet.")
    report.add_argument("directories", nargs="+", type=Path, metavar="DIR")
    report.add_argument("--out", type=Path, help="where to write it (default: the DIR when "
                        "there is one, else reports/report)")
    report.add_argument("--format", choices=FORMATS, default="html",
                        help="html: index.html with figures (default); md: a Markdown summary")


def main(args: argparse.Namespace, console: Console) -> int:
    from convbench.report import build_report

    out = args.out or (args.directories[0] if len(args.directories) == 1
                       else Path("reports") / "report")
    check_output_directory(out, f"--out {out}")
    page = build_report(args.directories, out, args.format)
    console.print(f"report: {escape(str(page))}")
    return 0
