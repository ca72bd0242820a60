"""How the commands speak: to a person at a terminal, to a CI log, or to a program.

- A terminal (stdout is a TTY, `CI` unset): colours, a progress bar, tables fitted to the window.
- A log (stdout redirected or piped, or `CI=true`): no bar; no line is wrapped and a table takes
  its own width, so that nothing is cut to "…".
- `--format json` (run, compare): one JSON document on stdout and nothing else there.
- `--quiet`: errors and the final verdict line only; `--verbose`: a line for every result.
- With `$GITHUB_STEP_SUMMARY` set, run and compare append a Markdown summary to that file.

Errors go to stderr as one line, `convbench: error: ...`, whatever the mode.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

LOG_WIDTH = 4000  # wide enough for any table convbench prints; a log has no window to fit
SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"
FORMATS = ("text", "json")


def writing_a_log() -> bool:
    """Whether stdout is read later (a file, a pipe, a CI log) rather than watched."""
    ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    return ci or not sys.stdout.isatty()


def stdout_console() -> Console:
    if writing_a_log():
        return Console(highlight=False, width=LOG_WIDTH, soft_wrap=True)
    return Console(highlight=False)


def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """`convbench: error: MESSAGE` on stderr, on one line."""
    error_console().print(f"convbench: error: {escape(one_line(message))}")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", dest="output_format",
                        help="text (default) or json: one JSON document on stdout, for programs")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true",
                          help="print only errors and the final verdict line")
    loudness.add_argument("-v", "--verbose", action="store_true",
                          help="a progress line for every result, whether it ran or not")


@dataclass(frozen=True)
class Output:
    """Where a command's words go, from --format, --quiet, --verbose and the terminal."""

    console: Console  # everything a person reads; silent under --quiet and --format json
    verdict: Console  # the final line (and failures); silent under --format json
    json: bool
    quiet: bool
    verbose: bool
    log: bool  # stdout is a log, not a person at a terminal

    @classmethod
    def of(cls, args: argparse.Namespace, console: Console) -> Output:
        as_json = args.output_format == "json"
        silent = Console(quiet=True)
        return cls(console=silent if as_json or args.quiet else console,
                   verdict=silent if as_json else console, json=as_json, quiet=args.quiet,
                   verbose=args.verbose, log=writing_a_log())

    def progress_mode(self, no_progress: bool = False) -> str:
        """The RowReporter mode (convbench.run.progress)."""
        if no_progress or self.quiet or self.json:
            return "off"
        if self.verbose:
            return "lines"
        return "timed" if self.log else "bar"

    def emit(self, document: dict[str, Any]) -> None:
        """The JSON document, under --format json."""
        if self.json:
            sys.stdout.write(json.dumps(_finite(document), indent=2, default=str) + "\n")


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities as None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def records(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame's rows as JSON-ready dicts (NaN as None)."""
    return json.loads(frame.to_json(orient="records", double_precision=15))


def print_notes(console: Console, suite: Any) -> None:
    """What convbench did not model of a suite read from a benchdnn file: said once, before it
    runs or is described."""
    if not suite.notes:
        return
    console.print(f"[yellow]note:[/] {escape(suite.name)}: what convbench does not model of "
                  f"{escape(suite.path)}:")
    for note in suite.notes:
        console.print(f"  {escape(note)}")


def append_step_summary(markdown: str) -> None:
    """Append `markdown` to $GITHUB_STEP_SUMMARY when it is set (a GitHub Actions job's page);
    a file that cannot be written is a warning, not a failure of the run."""
    path = os.environ.get(SUMMARY_VARIABLE)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(markdown.rstrip("\n") + "\n\n")
    except OSError as error:
        error_console().print(f"convbench: warning: ${SUMMARY_VARIABLE} {escape(path)}: "
                              f"{escape(str(error.strerror))}")
