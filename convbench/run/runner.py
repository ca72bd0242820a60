"""The harness: suite -> cases x algorithms x backends -> one checked, timed row each.

Each row is written the moment it exists. A case that is unsupported, would run past its limit,
would not fit in memory, raises, or returns a wrong result is recorded with that status and its
reason, and the run goes on.
"""

from __future__ import annotations

import datetime
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from convbench.measure import environment, machine, noise

from convbench.backends import gemm, gpu

from convbench import oracle

from convbench.algorithms import registry
from convbench.backends import BACKENDS, GPU_BACKENDS, backend_why_not, to_backend
from convbench.backends import to_numpy
from convbench.backends.gpu import is_out_of_memory
from convbench.measure.memory import peak_extra_bytes
from convbench.problems import Problem
from convbench.algorithms.registry import Algorithm
from convbench.run import resume
from convbench.run.rundir import (PROCESSES_KEY, RESULTS_FILE, SAMPLES_KEY, ResultsFile,
                                  read_results, update_meta)
from convbench.run.rundir import write_meta
from convbench.run.suite import Case, Suite
from convbench.measure.timing import DeferredTimer, Measurement, TimingPolicy, measure, share
from convbench.run.processes import (CaseTiming, TaskRef, WorkerPool, identity, merged,
                                     pinned_threads, timed_call)

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
    interleave: bool = True  # time a case's algorithms in alternation
    processes: int = 1  # processes the samples come from (the command's default: PROCESSES)
    commit: str | None = None  # the user's project commit to record (meta.json `git`)


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


def _memory_needed_bytes(p: Problem, algorithm: Algorithm, backend: str) -> int:
    """Inputs and outputs (bytes_moved) twice over (the oracle's copies) plus the workspace."""
    workspace = algorithm.workspace(p, backend) or 0
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
    estimate = algorithm.bound_s(p, task.backend)  # from the model alone: deterministic
    if estimate is not None and estimate > suite.limit_s:
        return "skipped", f"estimated {estimate:.3g} s per call, over the case limit of " \
            f"{suite.limit_s:g} s"
    needed = _memory_needed_bytes(p, algorithm, task.backend)
    available = psutil.virtual_memory().available
    if needed > available:
        return "oom", f"needs about {needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB free"
    return None


def _timing_fields(m: Measurement, flops: int) -> dict[str, Any]:
    return {
        "time_median_s": m.median_s, "time_iqr_s": m.iqr_s, "time_min_s": m.min_s,
        "repeats": m.repeats, "calls_per_sample": m.number, "noisy": m.noisy,
        SAMPLES_KEY: m.samples_s, PROCESSES_KEY: m.process_of, "processes": m.processes,
        "gflops": flops / m.median_s / 1e9 if m.median_s > 0 else None,
    }


def over_budget(task: Task, limit_s: float, took_s: float, what: str) -> dict[str, Any]:
    """The status of a row whose series passed the case limit: skipped, with the estimate it
    ran on (its samples so far are kept)."""
    estimate = task.algorithm.bound_s(task.case.problem, task.backend)
    said = "no estimate" if estimate is None else f"estimated {estimate:.3g} s"
    return {"status": "skipped", "reason": f"over budget: {what} took {took_s:.3g} s per call, "
            f"over the case limit of {limit_s:g} s ({said}); not timed further"}


def _fits_estimate(task: Task, limit_s: float) -> bool:
    """Whether the algorithm's estimate (bound_s) says a call of the task fits in limit_s."""
    estimate = task.algorithm.bound_s(task.case.problem, task.backend)
    return estimate is not None and estimate <= limit_s


def _timed_row(row: dict[str, Any], task: Task, m: Measurement, limit_s: float
               ) -> dict[str, Any]:
    """A row with its (merged) measurement; over budget when the series was abandoned."""
    row = row | _timing_fields(m, task.case.problem.flops)
    if m.abandoned:
        row |= over_budget(task, limit_s, max(m.samples_s), "a sample")
    return row


def _check_fields(c: oracle.Check) -> dict[str, Any]:
    return {"max_abs_err": c.max_abs_err, "rel_l2_err": c.rel_l2_err, "norm_err": c.norm_err,
            "tolerance": c.tolerance}


def execute(suite: Suite, task: Task, data: _CaseData, timer: Timer = measure) -> dict[str, Any]:
    """Run one task: first call checked against the oracle, then timed, then memory."""
    p, algorithm, backend = task.case.problem, task.algorithm, task.backend
    call = timed_call(suite.prepare_weights, algorithm, p, data.on(backend).arrays)
    start = time.perf_counter()
    y = _host(call())  # (on a GPU, the copy back waits for the call to finish)
    first_call_s = time.perf_counter() - start
    # A selector (auto) is held to the tolerance of the algorithm it ran.
    ran = algorithm.resolve(p, backend) if algorithm.resolve is not None else algorithm
    check = oracle.check_algorithm(p, y, data.reference, ran,
                                   exact=suite.exact and algorithm.exact and ran.exact)
    row = _check_fields(check)
    del y
    if not check.ok:
        limit = "bit-exact" if suite.exact and algorithm.exact else f"{check.tolerance:.3g}"
        return row | {"status": "wrong", "reason": f"normalised error {check.norm_err:.3g} "
                      f"(max abs {check.max_abs_err:.3g}) over tolerance {limit}"}
    checked = "the checked call"
    if first_call_s > suite.limit_s and _fits_estimate(task, suite.limit_s):
        # A first call can pay once for what later calls reuse (compiling a kernel on a
        # machine's first run: seconds); where the estimate says a call fits, a second one,
        # warm, decides.
        start = time.perf_counter()
        _host(call())
        first_call_s, checked = time.perf_counter() - start, "a second (warm) call"
    if first_call_s > suite.limit_s:  # the estimate was far off: a safety net, not the rule
        return row | _timing_fields(Measurement((first_call_s,)), p.flops) | over_budget(
            task, suite.limit_s, first_call_s, checked)
    policy = TimingPolicy(budget_s=suite.budget_s, min_repeats=suite.min_repeats,
                          limit_s=suite.limit_s)
    if backend in GPU_BACKENDS:
        row |= _timing_fields(gpu.measure_cuda(backend)(call, policy), p.flops)
        memory = gpu.peak_extra_bytes(backend, call)
        row["kernels"] = ";".join(gpu.kernels(backend, call))
    else:
        measured = timer(call, policy)
        row = _timed_row(row | {"status": "ok", "reason": ""}, task, measured, policy.limit_s)
        if measured.abandoned:
            return row
        memory = peak_extra_bytes(call)
    return {"status": "ok", "reason": ""} | row | {"peak_mem_bytes": memory.peak_extra_bytes,
                                                   "mem_note": memory.note}


def _configure_gpus(backends: set[str]) -> dict[str, Any]:
    """Each GPU backend that runs here, in its fp32-reference settings; for meta.json (torch-cuda
    as `torch_cuda`)."""
    return {b.replace("-", "_"): gpu.configure(b) for b in sorted(backends)
            if b in GPU_BACKENDS and not backend_why_not(b, probe=True)}


def _with_driver(gpus: dict[str, Any]) -> dict[str, Any]:
    """The GPU settings, with the driver version when a GPU backend runs (the fingerprint's)."""
    return gpus | {"gpu_driver": environment.gpu_driver()} if gpus else gpus


def gemm_meta(threads: int) -> dict[str, str]:
    """The GEMM engine numpy arrays' products take in this run, and why (raises ValueError for
    a bad CONVBENCH_GEMM, before any case runs)."""
    name, source = gemm.resolved(threads)
    return {"gemm_engine": name, "gemm_engine_source": source}


def machine_stamp(meta: dict[str, Any]) -> dict[str, Any]:
    """What every row says of where it ran: the host and the machine's fingerprint. Not shared
    with another timing process: convbench.run.cluster marks the rows of a shared machine."""
    return {"host": meta.get("host") or "",
            "fingerprint": environment.machine_fingerprint(meta), "shared_machine": False}


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
        row["workspace_model_bytes"] = task.algorithm.workspace(task.case.problem,
                                                                task.backend)
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
    check_resume(suite, out_dir, options)
    suite = apply_options(suite, options)
    tasks = plan(suite, options)
    threads = run_threads(options)
    results = ResultsFile(out_dir, options.resume)
    done = results.done() if options.resume else set()
    cache = _CaseCache(suite)
    with pinned_threads(threads):
        meta = environment.collect(threads, options.commit) | {
            "suite": suite_meta(suite), "tasks": len(tasks), "interleave": options.interleave,
            "processes": options.processes, "machine": machine.peaks(threads),
            "allocator": environment.keep_freed_memory()} | gemm_meta(threads)
        meta |= _with_driver(_configure_gpus({t.backend for t in tasks}))
        write_meta(out_dir, meta, options.resume)
        stamp = machine_stamp(meta)
        monitor = noise.LoadMonitor()
        pending = [(index, task) for index, task in enumerate(tasks, start=1)
                   if (task.case.name, task.algorithm.name, task.backend) not in done]
        engine = gemm.pinned(meta["gemm_engine"])  # the timing processes' too
        with engine, WorkerPool(options.processes - 1, threads) as pool:
            for index, row in _rows(suite, pending, cache, threads, options.interleave, pool):
                row |= stamp
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
          interleave: bool, pool: WorkerPool) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, row) in task order: each row once its samples are in from every process; with
    `interleave` the rows of a case, once its algorithms have been checked one by one and then
    timed in alternation, in each process in turn."""
    group_key = (lambda item: item[1].case.name) if interleave else (lambda item: item[0])
    for _, group in itertools.groupby(pending, key=group_key):
        deferred, rows = DeferredTimer(interleave, pool.processes), []
        for index, task in group:
            row = run_task(suite, task, lambda t=task: cache.get(t.case), threads,
                           deferred.timer(index))
            if row["status"] != "ok":
                deferred.discard(index)
            rows.append((index, task, row))
        timed = _from_every_process(suite, dict((i, t) for i, t, _ in rows), deferred, pool)
        yield from ((i, _timed_row(row, task, timed[i], suite.limit_s) if i in timed else row)
                    for i, task, row in rows)


def _from_every_process(suite: Suite, tasks: dict[int, Task], deferred: DeferredTimer,
                        pool: WorkerPool) -> dict[int, Measurement]:
    """The deferred closures timed here (process 0), then by every worker of `pool` at process
    0's calls per sample; a series abandoned here is not timed again."""
    own = deferred.measure_all()
    again = {i: tasks[i] for i, m in own.items() if not m.abandoned}
    if not again or not pool.workers:
        return own
    case = next(iter(again.values())).case
    request = CaseTiming(
        case.problem, suite.seed, suite.exact, suite.prepare_weights,
        {i: TaskRef(t.case.problem.op, t.algorithm.name, t.backend, identity(t.algorithm.fn))
         for i, t in again.items()},
        {i: own[i].number for i in again}, share(deferred.policy, pool.processes),
        deferred.interleave)
    return own | merged({i: own[i] for i in again}, pool.time_case(request))


def run_threads(options: RunOptions) -> int:
    """The threads a run pins: --threads, else one. On a machine shared with other work a
    second thread mostly waits for a core, and a call that waits for one takes a time slice:
    torch's tiny convolutions went from tens of microseconds to over a millisecond."""
    return options.threads or 1


def check_resume(suite: Suite, out_dir: Path, options: RunOptions,
                 engine: dict[str, str] | None = None) -> None:
    """With `options.resume`, ValueError unless the rows already in out_dir were measured as
    this run would measure them: same problems, same settings (convbench.run.resume). Cheap,
    so that a command checks every suite before it runs any."""
    if not options.resume or not (out_dir / RESULTS_FILE).is_file():
        return
    suite = apply_options(suite, options)
    results = ResultsFile(out_dir, resume=True)  # drops a row cut short by a kill
    resume.check_settings(out_dir, _planned_meta(suite, options, engine))
    planned = {(t.case.name, t.algorithm.name, t.backend): str(t.case.problem)
               for t in plan(suite, options)}
    resume.check_problems(planned, results.done_descriptors(), results.path)


def _planned_meta(suite: Suite, options: RunOptions, engine: dict[str, str] | None = None
                  ) -> dict[str, Any]:
    """The entries of meta.json that this run would write and a resume must match; `engine`
    in place of this process's GEMM engine (a cluster's)."""
    return {"threads": run_threads(options), "interleave": options.interleave,
            "processes": options.processes,
            "suite": suite_meta(suite), "cpu": environment.cpu_info(),
            "versions": environment.versions()} | (engine or gemm_meta(run_threads(options)))


def suite_meta(suite: Suite) -> dict[str, Any]:
    return {
        "name": suite.name, "path": suite.path, "description": suite.description,
        "reference": suite.reference, "budget_s": suite.budget_s, "limit_s": suite.limit_s,
        "prepare_weights": suite.prepare_weights,
        "min_repeats": suite.min_repeats, "exact": suite.exact, "seed": suite.seed,
        "cases": len(suite.cases),
        "counts": {c.name: c.count for c in suite.cases if c.count != 1},
        "network": suite.network,
    }
