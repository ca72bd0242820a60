"""One case of a suite, run on a cluster worker in a clean child process (`--cluster`).

A worker's task (`run_case`) starts `python -m convbench.run.case_task REQUEST RESULT`: the child
runs the whole case (all its algorithms, backends and directions, the reference included) with
convbench.run.runner, exactly as a local run would, into a scratch directory, and writes back
its rows (with their raw samples) and its meta.json. The timing happens in a process of its own,
not in a thread beside the worker's event loop and heartbeats, and whatever the case leaves
behind (threads, allocator settings, GPU state) ends with the child.
"""

from __future__ import annotations

import ctypes
import pickle
import signal
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from convbench.measure import machine
from convbench.run.rundir import read_meta
from convbench.run.runner import RunOptions, run
from convbench.run.suite import Case, Suite

# The machine's peaks as this worker's last case measured them (convbench.measure.machine), handed
# to the next case's process: measured under load they are not cached on disk.
_PEAKS: dict[str, dict[str, Any]] = {}
_PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent thread exits


def request(suite: Suite, case: Case, options: RunOptions) -> bytes:
    """What a worker needs to run `case`: the suite cut down to it, and the run's options."""
    return pickle.dumps((replace(suite, cases=(case,)), replace(options, resume=False)))


def run_here(payload: bytes) -> dict[str, Any]:
    """Run the case of `payload` in this process: {"rows": [...], "meta": {...}}."""
    suite, options = pickle.loads(payload)  # noqa: S301 - written by the run's own client
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="convbench-case-") as scratch:
        run(suite, Path(scratch), options, on_row=lambda row, index, total: rows.append(row))
        return {"rows": rows, "meta": read_meta(Path(scratch))}


def run_case(payload: bytes) -> dict[str, Any]:
    """The cluster task: run the case of `payload` in a child process; RuntimeError (which Dask
    reports, and retries elsewhere) with the child's last words when it fails."""
    with tempfile.TemporaryDirectory(prefix="convbench-task-") as scratch:
        given, result = Path(scratch) / "request.pickle", Path(scratch) / "result.pickle"
        given.write_bytes(pickle.dumps((payload, _PEAKS.get("record"))))
        done = subprocess.run([sys.executable, "-m", "convbench.run.case_task", str(given),
                               str(result)], capture_output=True, text=True, check=False,
                              preexec_fn=_die_with_parent)
        if done.returncode != 0 or not result.exists():
            raise RuntimeError(f"the case's process exited with {done.returncode}: "
                               f"{done.stderr.strip()[-2000:]}")
        found = pickle.loads(result.read_bytes())  # noqa: S301 - written by our own child
    if found["meta"].get("machine"):
        _PEAKS["record"] = found["meta"]["machine"]
    return found


def _die_with_parent() -> None:
    """In the child, before it runs: be killed with the worker (Linux's PR_SET_PDEATHSIG), so
    that a killed worker leaves no orphan timing a case beside the case's rerun."""
    try:
        ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not on Linux: the orphan finishes its case unheard
        pass


def main(argv: list[str]) -> int:
    """`python -m convbench.run.case_task REQUEST RESULT`: the child's side of run_case."""
    given, result = Path(argv[0]), Path(argv[1])
    payload, peaks = pickle.loads(given.read_bytes())  # noqa: S301 - from our own worker
    if peaks:
        machine.keep(peaks)
    found = run_here(payload)
    partial = result.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(found))
    partial.rename(result)  # whole or absent: a killed child leaves no half result
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
