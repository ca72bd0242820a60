"""Samples from several processes, as pyperf takes them.

One process's timings carry that process's luck: where the allocator put the arrays, which code
paths a library set up on first use, how its thread pools came up. That luck holds for every
sample of the process, so a run of one process cannot tell it from the code's own speed, and a
second run, in another process, looks like a regression. So a run takes its samples from
`processes` processes and records which process took each one; `convbench compare` then judges
a change against the spread between processes (convbench.analysis.compare).

The run's own process (process 0) checks every algorithm against the oracle, measures its memory
and takes the first share of the samples. `WorkerPool` starts `processes - 1` fresh interpreters
(multiprocessing's spawn: nothing is inherited but the arguments) that time the same closures
again, case by case, one process after the other: never at the same time, which would make them
compete for the cores. Each is given process 0's calls per sample, so that every process times
the same thing, and its share of the budget (convbench.measure.timing.share).

A worker times an algorithm only if its own registry holds the same function under that name
(module and qualified name): an algorithm registered or replaced at run time, outside an import
(an entry point, or a module the worker imports), is timed by process 0 alone, and its row says
so in its `processes` column.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits

from convbench import oracle
from convbench.algorithms import registry
from convbench.algorithms.registry import Algorithm
from convbench.backends import compiled, to_backend
from convbench.measure import environment
from convbench.measure.timing import DeferredTimer, Measurement, TimingPolicy
from convbench.problems import Problem

Key = Any  # the harness's key of a task (its index in the run)


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """BLAS/OpenMP pools (threadpoolctl), scipy.fft's workers, torch's intra-op pool and the
    compiled kernels' (numba's) pool, all set to `threads`."""
    import scipy.fft
    import torch  # the oracle needs it in every run

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    kernels = compiled.set_threads(threads)
    try:
        with threadpool_limits(limits=threads), scipy.fft.set_workers(threads):
            yield
    finally:
        torch.set_num_threads(previous)
        compiled.set_threads(kernels)


def timed_call(prepare_weights: bool, algorithm: Algorithm, p: Problem,
               arrays: tuple[Any, ...]) -> Callable[[], Any]:
    """The timed call. In an inference-like suite (prepare_weights), an algorithm's weight-only
    work (a filter transform) is done here, once, outside the timed region."""
    call = algorithm.bind(p)
    if prepare_weights and algorithm.prepare is not None:
        state = algorithm.prepared(p, *arrays)
        return lambda: call(p, *arrays, prepared=state)
    return lambda: call(p, *arrays)


def identity(fn: Callable[..., Any]) -> str:
    """'module:qualified.name' of a function (of the function a partial wraps). A script's own
    functions are `__main__` in the script and `__mp_main__` in a spawned worker: the same."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None) or "?"
    module = "__main__" if module == "__mp_main__" else module
    return f"{module}:{getattr(fn, '__qualname__', type(fn).__qualname__)}"


@dataclass(frozen=True)
class TaskRef:
    """A task as a worker finds it: in its own registry, by name and function."""

    op: str
    algo: str
    backend: str
    fn: str  # identity() of the algorithm's function in process 0


@dataclass(frozen=True)
class CaseTiming:
    """What a worker needs to time one case's checked algorithms."""

    problem: Problem
    seed: int
    exact: bool
    prepare_weights: bool
    tasks: dict[Key, TaskRef]
    numbers: dict[Key, int]  # process 0's calls per sample
    policy: TimingPolicy  # one process's share
    interleave: bool


def _found(ref: TaskRef) -> Algorithm | str:
    """The worker's algorithm for `ref`, or why it cannot stand in for process 0's."""
    try:
        algorithm = registry.get(ref.op, ref.algo)
    except ValueError:
        return f"{ref.algo} is not registered in a fresh process"
    if identity(algorithm.fn) != ref.fn:
        return f"{ref.algo} is another function in a fresh process ({identity(algorithm.fn)})"
    return algorithm


@functools.lru_cache(maxsize=1)
def _inputs(problem: Problem, seed: int, exact: bool) -> oracle.Inputs:
    return oracle.make_inputs(problem, seed, exact)


def time_case(request: CaseTiming) -> dict[Key, Measurement | str]:
    """A worker's samples of each task of `request`, or why it took none."""
    arrays = _inputs(request.problem, request.seed, request.exact).arrays
    deferred, found = DeferredTimer(request.interleave), {}
    for key, ref in request.tasks.items():
        algorithm = _found(ref)
        if isinstance(algorithm, str):
            found[key] = algorithm
            continue
        moved = tuple(to_backend(a, ref.backend) for a in arrays)
        fn = timed_call(request.prepare_weights, algorithm, request.problem, moved)
        deferred.timer(key)(fn, request.policy)
    try:
        return found | deferred.measure_all(request.numbers)
    except Exception as error:  # noqa: BLE001 - process 0's samples stand; the row says why
        return found | {key: f"{type(error).__name__}: {error}" for key in deferred.fns}


def serve(connection: Any, threads: int) -> None:
    """A worker's life: the run's thread and allocator settings, then one CaseTiming after
    another until None. Ctrl-C is the run's to handle: it stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    environment.keep_freed_memory()
    with pinned_threads(threads), contextlib.suppress(EOFError):  # EOF: the run has ended
        while (request := connection.recv()) is not None:
            connection.send(time_case(request))


class WorkerPool:
    """`count` worker processes (none for a run of one process), used one after the other."""

    def __init__(self, count: int, threads: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.workers: list[tuple[Any, Any]] = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=serve, args=(theirs, threads), daemon=True,
                                      name="convbench-timing")
            process.start()
            theirs.close()
            self.workers.append((process, ours))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def processes(self) -> int:
        return 1 + len(self.workers)

    def time_case(self, request: CaseTiming) -> list[dict[Key, Measurement | str]]:
        """Each worker's answer to `request`, in process order."""
        answers = []
        for number, (process, connection) in enumerate(self.workers, start=1):
            try:
                connection.send(request)
                answers.append(connection.recv())
            except (EOFError, OSError):
                reason = f"timing process {number} ended (exit code {process.exitcode})"
                answers.append(dict.fromkeys(request.tasks, reason))
        return answers

    def close(self) -> None:
        for process, connection in self.workers:
            with contextlib.suppress(OSError):
                connection.send(None)
        for process, connection in self.workers:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
            connection.close()
        self.workers = []


def merged(own: dict[Key, Measurement], answers: list[dict[Key, Measurement | str]]
           ) -> dict[Key, Measurement]:
    """Process 0's measurements with the samples of every worker that took some added: process
    i's samples are those of the i-th process that timed the row. (A worker that took none
    answered why: the row's `processes` column tells how many did.)"""
    out = {}
    for key, measurement in own.items():
        parts = [measurement] + [a[key] for a in answers if isinstance(a.get(key), Measurement)]
        out[key] = Measurement.merged(parts) if len(parts) > 1 else measurement
    return out
