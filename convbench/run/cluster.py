"""Scale-out: `convbench run --cluster ADDRESS` runs a suite's cases on Dask workers.

The unit of work is a whole case: all its algorithms, backends and directions, the reference
included, on one worker (convbench.run.case_task, in a clean child process there), so that its
speedups, its interleaving and `compare --normalize case` stay same-machine. A timed case needs
the worker resource `timing`, which each machine advertises once:

    dask scheduler                                      # tcp://HOST:8786
    dask worker tcp://HOST:8786 --nworkers 1 --nthreads 1 --resources timing=1

Before any case runs, the client asks every worker for its host and machine fingerprint, and
refuses two timing workers on one host (they would disturb each other's timings) unless told
`--shared-machine`, which marks their rows. A case's rows come back together when its task
ends, and are appended to results.csv then, each once (by KEY): a worker killed mid-case loses
nothing that was written, and Dask runs the case again elsewhere. Each machine's meta.json is
kept in the run's meta.json under "machines"; convbench.run.rundir reads one run per machine.

`local:N` starts a cluster of N worker processes on this machine: one timing worker and N - 1
that take no timed case, or, with --shared-machine, N timing workers whose rows are marked.

`--each-machine` runs every case on every machine instead (one suite over a fleet: each machine
type's times side by side): one run directory per machine, OUT/SUITE@HOST, each a run of its own
(results, samples, meta.json, resume), its tasks held to that machine's timing workers.

Dask is imported only here, and only when --cluster is used (`pip install convbench[cluster]`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from convbench.measure import environment, machine
from convbench.run import case_task, runner
from convbench.run.rundir import KEY, ResultsFile, read_meta, update_meta, write_meta
from convbench.run.runner import RunOptions
from convbench.run.suite import Suite

INSTALL_HINT = "--cluster needs Dask's distributed scheduler: pip install convbench[cluster]"
TIMING = "timing"  # the worker resource a timed case needs; a machine advertises it once
# The GEMM engine is each timing machine's own (its CONVBENCH_GEMM or its calibration): each
# worker's run records it in the meta.json kept under "machines"; the client's says so.
ENGINE = {"gemm_engine": "each machine's", "gemm_engine_source": "each timing machine's "
          "CONVBENCH_GEMM or calibration, in meta.json's machines"}
RETRIES = 2  # a case whose task raised runs again (a lost worker's case is rescheduled anyway)
LOCAL = "local:"
WORKER_COMMAND = "dask worker ADDRESS --nworkers 1 --nthreads 1 --resources timing=1"


def distributed() -> Any:
    """dask.distributed, or ValueError (bad usage: exit 2) saying how to install it."""
    try:
        import distributed as found  # noqa: PLC0415 - only for --cluster
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return found


@dataclass(frozen=True)
class Worker:
    """One Dask worker as the client sees it: where it runs, and whether it times cases."""

    address: str
    host: str
    fingerprint: str
    pid: int
    timing: bool


@dataclass
class Cluster:
    """A connected client, the workers it checked, and how it will time."""

    address: str
    client: Any
    workers: list[Worker]
    shared_hosts: set[str]  # hosts with more than one timing worker (--shared-machine)
    how: str  # one line for the user: how the cases will be timed
    local: Any = field(default=None, repr=False)  # the LocalCluster started for local:N

    def close(self) -> None:
        self.client.close()
        if self.local is not None:
            self.local.close()


def local_workers(address: str) -> int | None:
    """N for `local:N` (ValueError unless N >= 1); None for a scheduler's address."""
    if not address.startswith(LOCAL):
        return None
    count = address.removeprefix(LOCAL)
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"--cluster {address}: local:N needs a number of workers N >= 1")
    return int(count)


def start_local(count: int, shared: bool) -> Any:
    """A cluster of `count` worker processes here: the first advertises `timing`, the others
    only with `shared` (then their timings disturb each other, and their rows say so)."""
    d = distributed()
    specs = {f"convbench-{i}": {"cls": d.Nanny, "options": {
        "nthreads": 1, "silence_logs": logging.ERROR,
        "resources": {TIMING: 1} if i == 0 or shared else {}}}
        for i in range(count)}
    scheduler = {"cls": d.Scheduler, "options": {"dashboard": False}}
    return d.SpecCluster(workers=specs, scheduler=scheduler, silence_logs=logging.ERROR)


def identity(threads: int) -> dict[str, Any]:
    """Run on each worker: its host, its machine's fingerprint at `threads`, its process id."""
    return {"host": platform.node(), "fingerprint": machine.fingerprint(threads),
            "pid": os.getpid()}


def workers(client: Any, threads: int) -> list[Worker]:
    """Every worker the scheduler knows, with its identity and resources."""
    found = client.run(identity, threads)
    resources = {a: w.get("resources") or {}
                 for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
    return [Worker(a, i["host"], i["fingerprint"], i["pid"], resources.get(a, {}).get(TIMING, 0)
                   >= 1) for a, i in sorted(found.items())]


def crowded_hosts(found: list[Worker]) -> dict[str, list[Worker]]:
    """Hosts with more than one timing worker: one machine timing two cases at once."""
    by_host: dict[str, list[Worker]] = {}
    for worker in found:
        if worker.timing:
            by_host.setdefault(worker.host, []).append(worker)
    return {h: ws for h, ws in by_host.items() if len(ws) > 1}


def check_workers(address: str, found: list[Worker], shared: bool) -> str:
    """How the cases will be timed (one line); ValueError when no worker may time a case, or
    when two timing workers share a machine and `shared` was not given."""
    timing = [w for w in found if w.timing]
    if not timing:
        raise ValueError(f"--cluster {address}: none of the {len(found)} workers advertises "
                         f"the '{TIMING}' resource; start one per machine: {WORKER_COMMAND}")
    crowded = crowded_hosts(found)
    if crowded and not shared:
        host, ws = next(iter(crowded.items()))
        raise ValueError(
            f"--cluster {address}: {len(ws)} timing workers share the machine {host} "
            f"(fingerprint {ws[0].fingerprint}: {', '.join(w.address for w in ws)}), and would "
            f"disturb each other's timings; give each machine one ({WORKER_COMMAND}), or pass "
            "--shared-machine to time on them anyway with every row marked shared_machine")
    return describe(address, found, set(crowded))


def describe(address: str, found: list[Worker], crowded: set[str]) -> str:
    """One line: how many timing workers on how many machines, and what the others do."""
    timing = [w for w in found if w.timing]
    idle = len(found) - len(timing)
    hosts = len({w.host for w in timing})
    line = f"--cluster {address}: {len(timing)} timing worker{'s' * (len(timing) != 1)} on " \
        f"{hosts} machine{'s' * (hosts != 1)}, one whole case at a time each"
    if crowded:
        line += f"; shared machine ({', '.join(sorted(crowded))}): their timings disturb each " \
            "other, and every row they time is marked shared_machine"
    if idle:
        line += f"; {idle} worker{'s' * (idle != 1)} without the '{TIMING}' resource take no " \
            "case (every case is timed: correctness work alone would need one too)"
    return line


@contextlib.contextmanager
def correctness_client(address: str) -> Iterator[Any]:
    """A client for correctness work (`convbench fuzz --cluster`), which needs no exclusive
    machine: every worker of the scheduler at `address`, or of local:N, takes tasks."""
    d = distributed()
    count = local_workers(address)
    local = start_local(count, shared=False) if count else None
    client = d.Client(local if local is not None else address, timeout="30s")
    try:
        if count:
            client.wait_for_workers(count, timeout=120)
        yield client
    finally:
        client.close()
        if local is not None:
            local.close()


def mapped(client: Any, task: Callable[..., Any], first: Any, count: int | None,
           seconds: float | None) -> Iterator[Any]:
    """task(first, i) for i = 0, 1, ... on the cluster's workers, as each result arrives: `count`
    of them, or batches of four per worker for as long as `seconds` lasts."""
    d = distributed()
    deadline = None if seconds is None else time.monotonic() + seconds
    batch = 4 * max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
    index = 0
    while (count is None or index < count) and (deadline is None
                                                or time.monotonic() < deadline):
        size = batch if count is None else min(batch, count - index)
        futures = client.map(task, [first] * size, range(index, index + size), pure=False)
        for future in d.as_completed(futures):
            yield future.result()
        index += size


def connect(address: str, shared: bool, threads: int) -> Cluster:
    """Connect to the scheduler at `address` (or start local:N), check its workers."""
    d = distributed()
    count = local_workers(address)
    local = start_local(count, shared) if count else None
    client = d.Client(local if local is not None else address, timeout="30s")
    try:
        if count:
            client.wait_for_workers(count, timeout=120)
        found = workers(client, threads)
        how = check_workers(address, found, shared)
    except BaseException:
        client.close()
        if local is not None:
            local.close()
        raise
    return Cluster(address, client, found, set(crowded_hosts(found)) if shared else set(), how,
                   local)


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in KEY)


def _client_meta(suite: Suite, tasks: int, options: RunOptions, cluster: Cluster
                 ) -> dict[str, Any]:
    """The run's meta.json as the client writes it: what a resume checks, and the cluster."""
    threads = runner.run_threads(options)
    return environment.collect(threads, options.commit) | ENGINE | {
        "threads": threads, "suite": runner.suite_meta(suite), "tasks": tasks,
        "interleave": options.interleave, "processes": options.processes,
        "cluster": {"address": cluster.address, "how": cluster.how,
                    "workers": [asdict(w) for w in cluster.workers]}}


def _keep_machine(out_dir: Path, meta: dict[str, Any]) -> None:
    """Keep a worker's meta.json under "machines", by host and fingerprint."""
    name = f"{meta.get('host') or ''}/{environment.machine_fingerprint(meta)}"
    machines = read_meta(out_dir).get("machines") or {}
    if name not in machines:
        update_meta(out_dir, {"machines": machines | {name: meta}})


def failed_rows(suite: str, tasks: list[runner.Task], case: str, error: Exception
            ) -> list[dict[str, Any]]:
    """The rows of a case whose task failed on every try: status error, with the reason."""
    reason = f"--cluster: the case's task failed: {type(error).__name__}: {error}"
    return [{"suite": suite, "case": case, "descriptor": str(t.case.problem),
             "op": t.case.problem.op, "direction": t.case.problem.direction,
             "algo": t.algorithm.name, "backend": t.backend, "dtype": t.case.problem.dtype,
             "status": "error", "reason": reason} for t in tasks if t.case.name == case]


def run(suite: Suite, out_dir: Path, options: RunOptions, cluster: Cluster,
        on_row: Callable[[dict[str, Any], int, int], None] | None = None) -> Path:
    """runner.run's contract, on the cluster: every case not yet done runs on one worker, and
    its rows are appended to out_dir/results.csv the moment its task's result arrives."""
    runner.check_resume(suite, out_dir, options, ENGINE)
    suite = runner.apply_options(suite, options)
    tasks = runner.plan(suite, options)
    results = ResultsFile(out_dir, options.resume)
    done = results.done() if options.resume else set()
    index = {(t.case.name, t.algorithm.name, t.backend): i for i, t in enumerate(tasks, 1)}
    todo = [c for c in suite.cases if any(k not in done for k in index if k[0] == c.name)]
    write_meta(out_dir, _client_meta(suite, len(tasks), options, cluster), options.resume)
    run_id = uuid.uuid4().hex[:8]
    futures = [cluster.client.submit(
        case_task.run_case, case_task.request(suite, case, options), pure=False,
        key=f"convbench-{suite.name}-{case.name}-{run_id}", resources={TIMING: 1},
        retries=RETRIES) for case in todo]
    cases = dict(zip(futures, todo, strict=True))
    for future in distributed().as_completed(futures):
        try:
            found = future.result()
        except Exception as error:  # noqa: BLE001 - recorded, and the run goes on
            found = {"rows": failed_rows(suite.name, tasks, cases[future].name, error), "meta": {}}
        _take(found, out_dir, results, done, cluster, on_row, index, len(tasks))
    return results.path


def _take(found: dict[str, Any], out_dir: Path, results: ResultsFile, done: set[tuple[str, ...]],
          cluster: Cluster, on_row: Callable[[dict[str, Any], int, int], None] | None,
          index: dict[tuple[str, ...], int], total: int) -> None:
    """A case task's result into its run directory: the worker's meta.json kept, each row not
    written yet appended (a case run again after a partial append: once only), marked when its
    machine is shared, and passed on."""
    if found["meta"]:
        _keep_machine(out_dir, found["meta"])
    for row in found["rows"]:
        key = _key(row)
        if key in done:
            continue
        row["shared_machine"] = row.get("host") in cluster.shared_hosts
        results.append(row)
        done.add(key)
        if on_row:
            on_row(row, index.get(key, 0), total)


# How long the client waits for a machine whose timing workers have all left before it records
# that machine's remaining cases as errors (a worker under a nanny is back within seconds).
MACHINE_GONE_S = 120.0


def machine_directory(out_dir: Path, host: str) -> Path:
    """The run directory of one machine's part of an --each-machine run: OUT/SUITE@HOST."""
    return out_dir.parent / f"{out_dir.name}@{host}"


def _timing_hosts(cluster: Cluster) -> dict[str, set[str]]:
    """The machines that time, by host name: the network hosts (IPs) of their timing workers,
    which Dask restricts a task to (a worker restarted there comes back at the same one)."""
    hosts: dict[str, set[str]] = {}
    for worker in cluster.workers:
        if worker.timing:
            hosts.setdefault(worker.host, set()).add(
                urllib.parse.urlparse(worker.address).hostname or worker.address)
    return hosts


def _live_network_hosts(client: Any) -> set[str]:
    """The network hosts with a timing worker now."""
    return {info.get("host") for info in client.scheduler_info(n_workers=-1)["workers"].values()
            if (info.get("resources") or {}).get(TIMING, 0) >= 1}


def run_each_machine(suite: Suite, out_dir: Path, options: RunOptions, cluster: Cluster,
                     on_row: Callable[[dict[str, Any], int, int], None] | None = None
                     ) -> list[Path]:
    """Every case on every timing machine: machine HOST's rows go to OUT/SUITE@HOST, a run of
    its own, written the moment its task's result arrives, each row once; returns the results
    paths, one per machine. A machine whose timing workers are all gone for MACHINE_GONE_S has
    its remaining cases recorded as errors, and the run goes on."""
    d = distributed()
    runner.check_resume(suite, out_dir, options, ENGINE)
    hosts = _timing_hosts(cluster)
    prints = {w.host: w.fingerprint for w in cluster.workers if w.timing}
    for host in hosts:
        runner.check_resume(suite, machine_directory(out_dir, host), options, ENGINE)
    suite = runner.apply_options(suite, options)
    tasks = runner.plan(suite, options)
    index = {(t.case.name, t.algorithm.name, t.backend): i for i, t in enumerate(tasks, 1)}
    run_id, total = uuid.uuid4().hex[:8], len(tasks) * len(hosts)
    files, done, futures = {}, {}, {}
    for number, (host, network) in enumerate(sorted(hosts.items())):
        directory = machine_directory(out_dir, host)
        files[host] = ResultsFile(directory, options.resume)
        done[host] = files[host].done() if options.resume else set()
        write_meta(directory, _client_meta(suite, len(tasks), options, cluster),
                   options.resume)
        for case in suite.cases:
            if all(k in done[host] for k in index if k[0] == case.name):
                continue
            future = cluster.client.submit(
                case_task.run_case, case_task.request(suite, case, options), pure=False,
                key=f"convbench-{suite.name}-{case.name}-{number}-{run_id}",
                resources={TIMING: 1}, workers=sorted(network), allow_other_workers=False,
                retries=RETRIES)
            futures[future] = (host, case)
    pending, gone_since = set(futures), {}
    while pending:
        try:
            finished, pending = d.wait(list(pending), timeout=10, return_when="FIRST_COMPLETED")
        except (d.TimeoutError, TimeoutError):
            finished = set()
        results = [(f, *futures[f]) for f in finished]
        live, now = _live_network_hosts(cluster.client), time.monotonic()
        for host, network in hosts.items():
            gone_since[host] = (gone_since.get(host) or now) if not network & live else None
            since = gone_since[host]
            if since is not None and now - since > MACHINE_GONE_S:
                lost = [f for f in pending if futures[f][0] == host]
                pending -= set(lost)
                error = RuntimeError(f"no timing worker on {host} for {MACHINE_GONE_S:.0f} s")
                results += [(f, host, futures[f][1], error) for f in lost]
                for f in lost:
                    f.cancel()
        for future, host, case, *lost in results:
            try:
                if lost:
                    raise lost[0]
                found = future.result()
            except Exception as error:  # noqa: BLE001 - recorded, and the run goes on
                found = {"rows": failed_rows(suite.name, tasks, case.name, error), "meta": {}}
                for row in found["rows"]:  # they belong to the machine they were meant for
                    row |= {"host": host, "fingerprint": prints[host]}
            _take(found, machine_directory(out_dir, host), files[host], done[host], cluster,
                  on_row, index, total)
    return [files[host].path for host in sorted(hosts)]
