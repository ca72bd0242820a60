"""The `convbench` command. Each subcommand lives in convbench.commands.<name>.

Exit codes: 0 all results ok (or unsupported/skipped with a reason), 1 any wrong result or an
algorithm that raised (or, for gates, a regression), 2 bad usage or bad input (nothing runs).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from rich.console import Console
from rich.markup import escape

from convbench import __version__

EXIT_OK, EXIT_WRONG, EXIT_USAGE = 0, 1, 2
COMMANDS: tuple[str, ...] = ("list", "describe", "run", "machine", "tune", "compare", "history",
                              "report")


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"convbench.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convbench", description="Compare convolution algorithms against a float64 oracle.")
    parser.add_argument("--version", action="version", version=f"convbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        _command(name).add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    try:
        return _command(args.command).main(args, console)
    except ValueError as error:  # bad input: suites, descriptors, algorithm names, directories
        Console(stderr=True, highlight=False).print(f"convbench: error: {escape(str(error))}")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
