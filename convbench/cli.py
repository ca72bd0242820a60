"""The `convbench` command. Each subcommand lives in convbench.commands.<name>.

Exit codes: 0 all results ok (or unsupported/skipped with a reason), 1 any wrong result or an
algorithm that raised (or, for gates, a regression), 2 bad usage or bad input (nothing runs),
130 interrupted (Ctrl-C). Every failure is one line on stderr: `convbench: error: ...`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from convbench import __version__
from convbench.commands.output import error_console, one_line, print_error, stdout_console

EXIT_OK, EXIT_WRONG, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
COMMANDS: tuple[str, ...] = ("list", "describe", "run", "machine", "tune", "compare", "history",
                              "report", "plan", "fuzz")


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (and where to read the usage) rather than the
    whole usage block: a CI log shows the error, not forty lines of options."""

    def error(self, message: str) -> NoReturn:
        error_console().print(f"{self.prog}: error: {one_line(message)} "
                              f"(see {self.prog} --help)", markup=False)
        sys.exit(EXIT_USAGE)


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"convbench.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="convbench", description="Compare convolution algorithms against a float64 oracle.")
    parser.add_argument("--version", action="version", version=f"convbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        _command(name).add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _command(args.command).main(args, stdout_console())
    except ValueError as error:  # bad input: suites, descriptors, algorithm names, directories
        print_error(str(error))
    except OSError as error:  # a file or directory named on the command line
        print_error(f"{error.filename or ''}: {error.strerror or error}".lstrip(": "))
    except KeyboardInterrupt:  # `run` says what it kept, itself
        error_console().print("convbench: interrupted", markup=False)
        return EXIT_INTERRUPTED
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
