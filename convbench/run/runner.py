"""The harness: suite -> cases x algorithms x backends -> one checked, timed row each.

Each row is written the moment it exists. A case that is unsupported, would run past its limit,
would not fit in memory, raises, or returns a wrong result is recorded with that status and its
reason, and the run goes on.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil
from threadpoolctl import threadpool_limits

from convbench.measure import environment, machine, noise

from convbench.backends import gpu

from convbench import oracle

from convbench.algorithms import registry
from convbench.backends import BACKENDS, GPU_BACKENDS, backend_why_not, to_backend
from convbench.backends import to_numpy
from convbench.backends.gpu import is_out_of_memory
from convbench.measure.memory import peak_extra_bytes
from convbench.problems import Problem
from convbench.algorithms.registry import Algorithm
from convbench.run.rundir import SAMPLES_KEY, ResultsFile, read_results, update_meta, write_meta
from convbench.run.suite import Case, Suite
from convbench.measure.timing import DeferredTimer, Measurement, TimingPolicy, measure

Timer = Callable[[Callable[[], object], TimingPolicy], Measurement]


@dataclass(frozen=True)
class RunOptions:
    """What the command line may change about a suite's own settings."""

    algorithms: tuple[str, ...] | None = None
    backends: tuple[str, ...] | None = None
    threads: int | None = None
    budget_s: float | None = None
    exact: bool | None = None
    resume: bool = False
    interleave: bool = False  # time a case's algorithms in alternation


@dataclass(frozen=True)
class Task:
    case: Case
    algorithm: Algorithm
    backend: str


@dataclass
class _CaseData:
    inputs: oracle.Inputs
    reference: oracle.Reference
    moved: dict[str, oracle.Inputs] = field(default_factory=dict)

    def on(self, backend: str) -> oracle.Inputs:
        """The inputs as arrays of `backend`, moved there once per case."""
        if backend == "numpy":
            return self.inputs
        if backend not in self.moved:
            arrays = tuple(to_backend(a, backend) for a in self.inputs.arrays)
            self.moved[backend] = oracle.Inputs(self.inputs.names, arrays)
        return self.moved[backend]


def _chosen(op: str, names: tuple[str, ...] | None, ops: set[str]) -> list[Algorithm]:
    """The named algorithms (all, without names) registered for `op`. In a suite of several ops
    a name applies to the ops that have it (pooling has no im2col); a name that none of the
    suite's ops has is an error."""
    if not names:
        return registry.all_algorithms(op)
    if len(ops) == 1:
        return [registry.get(op, n) for n in names]
    known = {a.name for o in ops for a in registry.all_algorithms(o)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"algo={unknown[0]!r} is not registered for any op of this suite "
                         f"({', '.join(sorted(ops))}; known: {', '.join(sorted(known))})")
    registered = {a.name for a in registry.all_algorithms(op)}
    return [registry.get(op, n) for n in names if n in registered]


def plan(suite: Suite, options: RunOptions) -> list[Task]:
    """Every (case, algorithm, backend) the run will record, in order. Unknown algorithm or
    backend names are bad input (ValueError), found before anything runs."""
    names = options.algorithms or suite.algorithms
    backends = options.backends or suite.backends
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"backend {unknown[0]!r} is not known (known: {', '.join(BACKENDS)})")
    ops = {case.problem.op for case in suite.cases}
    tasks = []
    for case in suite.cases:
        chosen = _chosen(case.problem.op, names, ops)
        tasks += [Task(case, a, b) for a in chosen for b in backends]
    return tasks


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """BLAS/OpenMP pools (threadpoolctl), scipy.fft's workers and torch's intra-op pool, all set
    to `threads`."""
    import scipy.fft
    import torch  # the oracle needs it in every run

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads), scipy.fft.set_workers(threads):
            yield
    finally:
        torch.set_num_threads(previous)


def _ran(algorithm: Algorithm, p: Problem, backend: str) -> str:
    """Which implementation runs: the algorithm itself, or what a selector picks for `p`."""
    if algorithm.resolve is None:
        return algorithm.name
    try:
        return algorithm.resolve(p, backend).name
    except ValueError:  # nothing supports it; why_not says so in the row
        return ""


def _base_row(suite: Suite, task: Task, threads: int) -> dict[str, Any]:
    p = task.case.problem
    return {
        "suite": suite.name, "case": task.case.name, "descriptor": str(p), "op": p.op,
        "direction": p.direction, "algo": task.algorithm.name, "backend": task.backend,
        "dtype": p.dtype,
        "flops": p.flops, "threads": threads, "seed": suite.seed,
        "exact": suite.exact and task.algorithm.exact,
        "weights_prepared": suite.prepare_weights and task.algorithm.prepare is not None,
        "ran_algo": _ran(task.algorithm, p, task.backend),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _memory_needed_bytes(p: Problem, algorithm: Algorithm) -> int:
    """Inputs and outputs (bytes_moved) twice over (the oracle's copies) plus the workspace."""
    workspace = algorithm.workspace_bytes(p) if algorithm.workspace_bytes else 0
    return 2 * p.bytes_moved + workspace


def precheck(suite: Suite, task: Task) -> tuple[str, str] | None:
    """(status, reason) for a task that must not run; None when it may."""
    p, algorithm = task.case.problem, task.algorithm
    if task.backend in algorithm.backends:  # a backend missing here is a skip, not a limitation
        reason = backend_why_not(task.backend, probe=task.backend != "numpy")
        if reason:
            return "skipped", reason
    reason = algorithm.why_not(p, task.backend)
    if reason:
        return "unsupported", reason
    if suite.exact and algorithm.exact and not oracle.exact_mode_fits(p):
        return "skipped", "exactness mode: partial sums of this case are not exactly representable"
    if algorithm.estimate_s and algorithm.estimate_s(p) > suite.limit_s:
        estimate = algorithm.estimate_s(p)
        return "skipped", f"estimated {estimate:.3g} s per call, over the case limit of " \
            f"{suite.limit_s:g} s"
    needed, available = _memory_needed_bytes(p, algorithm), psutil.virtual_memory().available
    if needed > available:
        return "oom", f"needs about {needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB free"
    return None


def _timing_fields(m: Measurement, flops: int) -> dict[str, Any]:
    return {
        "time_median_s": m.median_s, "time_iqr_s": m.iqr_s, "time_min_s": m.min_s,
        "repeats": m.repeats, "calls_per_sample": m.number, "noisy": m.noisy,
        SAMPLES_KEY: m.samples_s,
        "gflops": flops / m.median_s / 1e9 if m.median_s > 0 else None,
    }


def _check_fields(c: oracle.Check) -> dict[str, Any]:
    return {"max_abs_err": c.max_abs_err, "rel_l2_err": c.rel_l2_err, "norm_err": c.norm_err,
            "tolerance": c.tolerance}


def _closure(suite: Suite, algorithm: Algorithm, p: Problem, inputs: oracle.Inputs
             ) -> Callable[[], Any]:
    """The timed call. In an inference-like suite (prepare_weights), an algorithm's weight-only
    work (a filter transform) is done here, once, outside the timed region."""
    if suite.prepare_weights and algorithm.prepare is not None:
        state = algorithm.prepare(p, *inputs.arrays)
        return lambda: algorithm.fn(p, *inputs.arrays, prepared=state)
    return lambda: algorithm.fn(p, *inputs.arrays)


def execute(suite: Suite, task: Task, data: _CaseData, timer: Timer = measure) -> dict[str, Any]:
    """Run one task: first call checked against the oracle, then timed, then memory."""
    p, algorithm, backend = task.case.problem, task.algorithm, task.backend
    call = _closure(suite, algorithm, p, data.on(backend))
    start = time.perf_counter()
    y = _host(call())  # (on a GPU, the copy back waits for the call to finish)
    first_call_s = time.perf_counter() - start
    check = oracle.check_algorithm(p, y, data.reference, algorithm,
                                   exact=suite.exact and algorithm.exact)
    row = _check_fields(check)
    del y
    if not check.ok:
        limit = "bit-exact" if suite.exact and algorithm.exact else f"{check.tolerance:.3g}"
        return row | {"status": "wrong", "reason": f"normalised error {check.norm_err:.3g} "
                      f"(max abs {check.max_abs_err:.3g}) over tolerance {limit}"}
    if first_call_s > suite.limit_s:
        return row | _timing_fields(Measurement((first_call_s,)), p.flops) | {
            "status": "skipped", "reason": f"one call took {first_call_s:.3g} s, over the case "
            f"limit of {suite.limit_s:g} s; not timed further"}
    policy = TimingPolicy(budget_s=suite.budget_s, min_repeats=suite.min_repeats,
                          limit_s=suite.limit_s)
    if backend in GPU_BACKENDS:
        row |= _timing_fields(gpu.measure_cuda(backend)(call, policy), p.flops)
        memory = gpu.peak_extra_bytes(backend, call)
        row["kernels"] = ";".join(gpu.kernels(backend, call))
    else:
        row |= _timing_fields(timer(call, policy), p.flops)
        memory = peak_extra_bytes(call)
    return row | {"status": "ok", "reason": "", "peak_mem_bytes": memory.peak_extra_bytes,
                  "mem_note": memory.note}


def _configure_gpus(backends: set[str]) -> dict[str, Any]:
    """Each GPU backend that runs here, in its fp32-reference settings; for meta.json (torch-cuda
    as `torch_cuda`)."""
    return {b.replace("-", "_"): gpu.configure(b) for b in sorted(backends)
            if b in GPU_BACKENDS and not backend_why_not(b, probe=True)}


def _host(y: Any) -> Any:
    """An algorithm's output(s) as numpy arrays, for the oracle."""
    return tuple(to_numpy(a) for a in y) if isinstance(y, tuple) else to_numpy(y)


def run_task(suite: Suite, task: Task, data: Callable[[], _CaseData], threads: int,
             timer: Timer = measure) -> dict:
    row = _base_row(suite, task, threads)
    try:  # a plugin's checks and models are its code too: whatever raises is recorded
        refused = precheck(suite, task)
        if refused:
            return row | {"status": refused[0], "reason": refused[1]}
        model = task.algorithm.workspace_bytes
        row["workspace_model_bytes"] = model(task.case.problem) if model else None
        return row | execute(suite, task, data(), timer)
    except Exception as error:  # noqa: BLE001 - recorded, and the run goes on
        status = "oom" if is_out_of_memory(error) else "error"
        return row | {"status": status, "reason": f"{type(error).__name__}: {error}"}


class _CaseCache:
    """Inputs and oracle output of the current case, made once and only when needed."""

    def __init__(self, suite: Suite) -> None:
        self.suite, self.case, self.data = suite, None, None

    def get(self, case: Case) -> _CaseData:
        if self.case is not case:
            self.data = None
            inputs = oracle.make_inputs(case.problem, self.suite.seed, self.suite.exact)
            self.data = _CaseData(inputs, oracle.reference(case.problem, inputs))
            self.case = case
        return self.data  # type: ignore[return-value]


def apply_options(suite: Suite, options: RunOptions) -> Suite:
    changes: dict[str, Any] = {}
    if options.budget_s is not None:
        changes["budget_s"] = options.budget_s
    if options.exact is not None:
        changes["exact"] = options.exact
    return replace(suite, **changes) if changes else suite


def run(
    suite: Suite, out_dir: Path, options: RunOptions = RunOptions(),
    on_row: Callable[[dict[str, Any], int, int], None] | None = None,
) -> Path:
    """Run `suite` into out_dir/results.csv (+ meta.json); returns the results path."""
    suite = apply_options(suite, options)
    tasks = plan(suite, options)
    threads = options.threads or os.cpu_count() or 1
    results = ResultsFile(out_dir, options.resume)
    done = results.done() if options.resume else set()
    _check_resumable(tasks, results, options.resume)
    cache = _CaseCache(suite)
    with pinned_threads(threads):
        meta = environment.collect(threads) | {"suite": _suite_meta(suite), "tasks": len(tasks),
                                               "interleave": options.interleave,
                                               "machine": machine.peaks(threads),
                                               "allocator": environment.keep_freed_memory()}
        meta |= _configure_gpus({t.backend for t in tasks})
        write_meta(out_dir, meta, options.resume)
        monitor = noise.LoadMonitor()
        pending = [(index, task) for index, task in enumerate(tasks, start=1)
                   if (task.case.name, task.algorithm.name, task.backend) not in done]
        for index, row in _rows(suite, pending, cache, threads, options.interleave):
            results.append(row)
            if on_row:
                on_row(row, index, len(tasks))
        update_meta(out_dir, {"noise": _noise(results, monitor.stop())})
    return results.path


def _noise(results: ResultsFile, reading: noise.LoadReading) -> dict[str, Any]:
    """meta.json's "noise": the other processes' load during the run, and how many of the timed
    rows in results.csv (resumed ones included) came out noisy."""
    noisy_rows = timed_rows = 0
    if results.path.exists():
        frame = read_results(results.path)
        timed = frame[frame["status"] == "ok"]
        noisy_rows, timed_rows = int(timed["noisy"].eq(True).sum()), len(timed)
    return noise.summarize(reading, noisy_rows, timed_rows)


def _rows(suite: Suite, pending: list[tuple[int, Task]], cache: _CaseCache, threads: int,
          interleave: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, row) in task order: each row as it finishes, or with `interleave` the rows of a
    case once its algorithms have been checked one by one and then timed in alternation."""
    group_key = (lambda item: item[1].case.name) if interleave else (lambda item: item[0])
    for _, group in itertools.groupby(pending, key=group_key):
        if not interleave:
            yield from ((i, run_task(suite, t, lambda t=t: cache.get(t.case), threads))
                        for i, t in group)
            continue
        deferred, rows = DeferredTimer(), []
        for index, task in group:
            row = run_task(suite, task, lambda t=task: cache.get(t.case), threads,
                           deferred.timer(index))
            if row["status"] != "ok":
                deferred.discard(index)
            rows.append((index, row))
        timed = deferred.measure_all()
        yield from ((i, row | _timing_fields(timed[i], row["flops"]) if i in timed else row)
                    for i, row in rows)


def _check_resumable(tasks: list[Task], results: ResultsFile, resume: bool) -> None:
    """A resumed run must continue the same measurement: the rows already there must have been
    made for the problems planned now (same batch, dtype, direction...)."""
    if not resume:
        return
    planned = {(t.case.name, t.algorithm.name, t.backend): str(t.case.problem) for t in tasks}
    for key, descriptor in results.done_descriptors().items():
        if key in planned and planned[key] != descriptor:
            raise ValueError(
                f"--resume: {results.path} holds case {key[0]!r} as {descriptor}, but this run "
                f"plans {planned[key]}; run without --resume, or into another --out")


def _suite_meta(suite: Suite) -> dict[str, Any]:
    return {
        "name": suite.name, "path": suite.path, "description": suite.description,
        "reference": suite.reference, "budget_s": suite.budget_s, "limit_s": suite.limit_s,
        "prepare_weights": suite.prepare_weights,
        "min_repeats": suite.min_repeats, "exact": suite.exact, "seed": suite.seed,
        "cases": len(suite.cases),
    }
