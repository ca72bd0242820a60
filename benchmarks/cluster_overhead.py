"""What `convbench run --cluster` costs per case, beside the time of a smoke case itself.

    PYTHONPATH=. .venv/bin/python benchmarks/cluster_overhead.py --tasks 50

On a LocalCluster of one worker process (the scheduler, the client and the worker on this
machine, talking over TCP), it measures:

- scheduler: the round trip of an empty task (submit, schedule on a worker with the `timing`
  resource, run, result back), the median over --tasks tasks;
- child: a case task's own process (python -m convbench.run.case_task: start, imports, pickles)
  on the smallest case, less the case's time in-process;
- case: one smoke case (tiny_3x3, the CI gate's settings but one process) run in-process, with
  the machine's peaks already known, the median of three.

It prints the three and the overhead (scheduler + child) as a share of the case.
"""

from __future__ import annotations

import argparse
import statistics
import time

from convbench.run import case_task, cluster
from convbench.run.runner import RunOptions
from convbench.run.suite import load_suite


def _noop() -> None:
    return None


def scheduler_s(client: object, tasks: int) -> float:
    """The median round trip of an empty task that needs the timing resource."""
    times = []
    for _ in range(tasks):
        start = time.perf_counter()
        client.submit(_noop, pure=False, resources={cluster.TIMING: 1}).result()  # type: ignore
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def case_payload() -> bytes:
    suite = load_suite("smoke")
    return case_task.request(suite, suite.cases[0], RunOptions(processes=1))


def in_process_s(payload: bytes) -> float:
    """One case here, after a first run that settles the machine's peaks."""
    case_task.run_here(payload)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        case_task.run_here(payload)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child_s(payload: bytes) -> float:
    """One case in its own process, as a worker runs it (peaks handed over)."""
    case_task.run_case(payload)  # the first hands the peaks to the next
    times = []
    for _ in range(3):
        start = time.perf_counter()
        case_task.run_case(payload)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    d = cluster.distributed()
    local = cluster.start_local(1, shared=False)
    with d.Client(local) as client:
        round_trip = scheduler_s(client, args.tasks)
    local.close()
    payload = case_payload()
    case = in_process_s(payload)
    child = child_s(payload) - case
    print(f"scheduler round trip: {round_trip * 1e3:.1f} ms per task (median of {args.tasks})")
    print(f"case process:         {child:.2f} s per case (start, imports, pickles)")
    print(f"smoke case tiny_3x3:  {case:.2f} s in-process")
    print(f"overhead:             {(round_trip + child) / case:.0%} of the case")


if __name__ == "__main__":
    main()
