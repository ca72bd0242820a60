"""Progress while a suite runs: a bar on a terminal, or lines for a log.

Modes: "bar" (a terminal), "lines" (one line per result, --verbose), "timed" (one line per result
that ran; the unsupported and skipped ones are listed after the table instead: analysis.table),
"off" (--no-progress, --quiet, --format json)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from convbench.units import format_time

MODES: tuple[str, ...] = ("bar", "lines", "timed", "off")
NOT_RUN: tuple[str, ...] = ("unsupported", "skipped")  # refused before (or after) one call


def describe_row(row: dict[str, Any]) -> str:
    status = row["status"]
    if status == "ok":
        detail = format_time(row["time_median_s"])
    else:
        detail = row.get("reason", "")
    return f"{row['case']} {row['algo']} [{row['backend']}]: {status} {detail}"


class RowReporter:
    def __init__(self, console: Console, title: str, mode: str = "bar") -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "bar" and not console.is_terminal:
            mode = "lines"
        self.console, self.title, self.mode = console, title, mode
        self.bar: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> RowReporter:
        if self.mode == "bar":
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(),
                                console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.title, total=None)
        return self

    def on_row(self, row: dict[str, Any], index: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=index, total=total,
                            description=escape(f"{self.title}: {row['case']}"))
        elif self.mode == "lines" or (self.mode == "timed" and row["status"] not in NOT_RUN):
            self.console.print(f"[{index}/{total}] {escape(describe_row(row))}")

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()

