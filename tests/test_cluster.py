"""`convbench run --cluster`: a real scheduler and two timing workers on this host (so accepted only
with --shared-machine, every row marked), a worker killed mid-run, a client killed and resumed;
and the checks that refuse a crowded machine before any case runs."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from convbench.run import cluster
from convbench.run.rundir import KEY, load_runs, read_meta, read_results, update_meta
from convbench.run.runner import RunOptions, plan
from convbench.run.suite import load_suite

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
ALGOS = "torch,im2col,direct"
RUN = ["-m", "convbench", "run", "smoke", "--algo", ALGOS, "--processes", "1", "--budget",
       "0.02", "--no-progress"]


def _env() -> dict[str, str]:
    """The test's environment, with this checkout first on the path of every process."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return os.environ | {"PYTHONPATH": path, "COLUMNS": "200"}


def _dask(*args: str) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "dask"), *args], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(condition, timeout_s: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """A scheduler and two workers here, each advertising timing=1: two timing workers on one
    machine. Yields the address and a client of the test's own (to watch and kill workers)."""
    where = tmp_path_factory.mktemp("dask") / "scheduler.json"
    started = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(where))]
    _wait_for(where.exists)
    started += [_dask("worker", "--scheduler-file", str(where), "--nworkers", "1", "--nthreads",
                      "1", "--resources", "timing=1", "--no-dashboard") for _ in range(2)]
    client = distributed.Client(scheduler_file=str(where))
    try:
        client.wait_for_workers(2, timeout=120)
        yield client.scheduler.address, client
    finally:
        client.close()
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=60)


def _planned() -> set[tuple[str, ...]]:
    suite = load_suite("smoke")
    return {(t.case.name, t.algorithm.name, t.backend)
            for t in plan(suite, RunOptions(algorithms=tuple(ALGOS.split(","))))}


def _keys(path: Path) -> list[tuple[str, ...]]:
    frame = read_results(path)
    return [tuple(str(v) for v in k) for k in frame[list(KEY)].itertuples(index=False)]


def _rows(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def test_two_timing_workers_on_one_host_are_refused_before_any_case_runs(
        scheduler: tuple[str, object], tmp_path: Path) -> None:
    address, _ = scheduler
    done = subprocess.run([sys.executable, *RUN, "--cluster", address, "--out", str(tmp_path)],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "2 timing workers share the machine" in done.stderr
    assert "--shared-machine" in done.stderr
    assert not (tmp_path / "smoke").exists()


def test_a_worker_killed_mid_run_loses_nothing_and_doubles_nothing(
        scheduler: tuple[str, object], tmp_path: Path) -> None:
    address, client = scheduler
    command = subprocess.Popen([sys.executable, *RUN, "--cluster", address, "--shared-machine",
                                "--out", str(tmp_path)], env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    busy = lambda: [w for w, keys in client.processing().items()  # noqa: E731
                    if any(str(k).startswith("convbench-") for k in keys)]
    _wait_for(lambda: busy() or command.poll() is not None)
    time.sleep(1.0)  # into the case: its child process is timing
    victim = busy()
    assert victim, "the run ended before a worker could be killed"
    pid = client.run(os.getpid, workers=victim[:1])[victim[0]]
    os.kill(pid, signal.SIGKILL)
    output, _ = command.communicate(timeout=600)
    assert command.returncode == 0, output
    assert "shared machine" in output
    results = tmp_path / "smoke" / "results.csv"
    keys = _keys(results)
    assert len(keys) == len(set(keys)) and set(keys) == _planned()
    frame = read_results(results)
    machines = read_meta(tmp_path / "smoke")["machines"]
    assert (frame["host"] == platform.node()).all()
    assert set(frame["fingerprint"]) == {name.split("/")[1] for name in machines}
    assert frame["shared_machine"].eq(True).all()
    assert [r.label for r in load_runs([tmp_path / "smoke"])] == ["smoke"]  # one machine


def test_a_killed_client_is_finished_by_resume(scheduler: tuple[str, object],
                                               tmp_path: Path) -> None:
    address, _ = scheduler
    command = [sys.executable, *RUN, "--cluster", address, "--shared-machine", "--out",
               str(tmp_path)]
    client = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    results = tmp_path / "smoke" / "results.csv"
    _wait_for(lambda: _rows(results) > 0 or client.poll() is not None)
    client.kill()
    client.wait()
    assert 0 < _rows(results) < len(_planned()), "killed too late to leave work undone"
    done = subprocess.run([*command, "--resume"], env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    keys = _keys(results)
    assert len(keys) == len(set(keys)) and set(keys) == _planned()


def test_each_machine_runs_the_whole_suite_on_every_machine(
        scheduler: tuple[str, object], tmp_path: Path) -> None:
    """--each-machine: every case on every timing machine, each machine's rows once in its own
    run directory OUT/SUITE@HOST, read as one run per machine. The two workers here are told
    apart as machines m0 and m1 (one host cannot be two machines otherwise)."""
    from dataclasses import replace

    address, client = scheduler
    found = cluster.workers(client, 1)
    fleet = cluster.Cluster(address, client, [replace(w, host=f"m{i}") for i, w in
                                              enumerate(w for w in found if w.timing)],
                            set(), "two machines")
    seen: list[tuple[str, str]] = []
    options = RunOptions(algorithms=("torch", "im2col"), threads=1, budget_s=0.002, processes=1)
    paths = cluster.run_each_machine(load_suite("smoke"), tmp_path / "smoke", options, fleet,
                                     lambda row, i, n: seen.append((row["case"], row["algo"])))
    assert [p.parent.name for p in paths] == ["smoke@m0", "smoke@m1"]
    planned = {(t.case.name, t.algorithm.name, t.backend)
               for t in plan(load_suite("smoke"), options)}
    for path in paths:
        keys = _keys(path)
        assert len(keys) == len(set(keys)) and set(keys) == planned
    assert len(seen) == 2 * len(planned)
    assert [r.label for r in load_runs([tmp_path])] == ["smoke@m0", "smoke@m1"]


def _worker(address: str, host: str, timing: bool) -> cluster.Worker:
    return cluster.Worker(address, host, "f" * 12, 1, timing)


def test_local_n_says_how_it_will_time() -> None:
    """One timing worker and N - 1 that take no case; or, with the flag, all of them, shared."""
    one = [_worker("a", "h", True), _worker("b", "h", False), _worker("c", "h", False)]
    line = cluster.check_workers("local:3", one, shared=False)
    assert "1 timing worker on 1 machine" in line and "2 workers without" in line
    both = [_worker("a", "h", True), _worker("b", "h", True)]
    with pytest.raises(ValueError, match="share the machine h"):
        cluster.check_workers("local:2", both, shared=False)
    assert "every row they time is marked shared_machine" in cluster.check_workers(
        "local:2", both, shared=True)
    with pytest.raises(ValueError, match="none of the 1 workers advertises"):
        cluster.check_workers("x", [_worker("a", "h", False)], shared=False)
    assert cluster.local_workers("local:4") == 4 and cluster.local_workers("tcp://h:1") is None
    with pytest.raises(ValueError, match="N >= 1"):
        cluster.local_workers("local:0")


@pytest.mark.parametrize("flag", ["--each-machine", "--shared-machine"])
def test_cluster_flags_without_a_cluster_are_bad_usage(
        flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from convbench.cli import EXIT_USAGE, main

    assert main(["run", "smoke", flag, "--out", str(tmp_path)]) == EXIT_USAGE
    assert f"{flag} applies to --cluster only" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything ran


def test_without_dask_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ValueError, match=r"pip install convbench\[cluster\]"):
        cluster.distributed()


def test_a_directory_two_machines_filled_reads_as_two_runs(tmp_path: Path) -> None:
    """Report, compare and history treat each machine as a run of its own, under its meta."""
    from convbench.run.rundir import ResultsFile, write_meta

    results = ResultsFile(tmp_path, resume=False)
    for case, host, fp in (("a", "h1", "f1"), ("b", "h2", "f2"), ("c", "h1", "f1")):
        results.append({"suite": "s", "case": case, "algo": "torch", "backend": "numpy",
                        "direction": "fwd", "status": "ok", "host": host, "fingerprint": fp,
                        "samples_s": [1.0, 2.0]})
    write_meta(tmp_path, {"suite": {"name": "s", "reference": "torch"}, "host": "client",
                          "machines": {"h1/f1": {"host": "h1"}, "h2/f2": {"host": "h2"}}},
               resume=False)
    runs = load_runs([tmp_path])
    assert [(r.label.split("@")[1], list(r.frame["case"]), r.meta["host"]) for r in runs] == [
        ("h1", ["a", "c"], "h1"), ("h2", ["b"], "h2")]
    assert [sorted(k[0] for k in r.samples) for r in runs] == [["a", "c"], ["b"]]
    assert all(r.reference == "torch" for r in runs)


def test_rows_of_two_machines_stream_into_one_run_per_machine(tmp_path: Path) -> None:
    """`--store` row by row on a cluster: each row under its machine's run (the run `history add`
    makes of that machine's part), a failed case's rows (no machine) under the client's; storing
    the directory afterwards adds nothing."""
    from convbench.analysis import history
    from convbench.run.rundir import ResultsFile, write_meta

    out, db = tmp_path / "s", f"sqlite:///{tmp_path / 'h.db'}"
    results = ResultsFile(out, resume=False)
    write_meta(out, {"suite": {"name": "s", "reference": "torch"}, "host": "client",
                     "date": "2026-11-30T00:00:00+00:00"}, resume=False)
    machines = {"h1/f1": {"host": "h1", "date": "2026-11-30T00:00:01+00:00"},
                "h2/f2": {"host": "h2", "date": "2026-11-30T00:00:02+00:00"}}
    stream = history.RowStream(db, out, "s")
    for case, host, fp in (("a", "h1", "f1"), ("b", "h2", "f2"), ("c", "h1", "f1"),
                           ("d", None, None)):
        if host:
            update_meta(out, {"machines": read_meta(out).get("machines", {}) | {
                f"{host}/{fp}": machines[f"{host}/{fp}"]}})
        row = {"suite": "s", "case": case, "algo": "torch", "backend": "numpy",
               "direction": "fwd", "status": "ok" if host else "error"}
        if host:
            row |= {"host": host, "fingerprint": fp, "samples_s": [1.0, 2.0]}
        results.append(row)
        stream.add(row)
    stream.add(row)  # a row that arrives twice (a case rerun after a partial append) is kept once
    stream.close()
    assert stream.error is None and stream.stored == 4
    listed = history.list_runs(db)
    assert sorted(zip(listed["host"], listed["rows"])) == [("client", 1), ("h1", 2), ("h2", 1)]
    assert [added for _, added in history.add_run(db, out)] == [False, False, False]
    assert [r.label for r in load_runs([out])] == ["s@none", "s@h1", "s@h2"]


def test_a_case_that_fails_on_every_try_is_recorded_as_errors(tmp_path: Path) -> None:
    """Its rows say why (status error), and the other cases' rows are kept."""
    suite = load_suite("smoke")
    tasks = plan(suite, RunOptions(algorithms=("torch", "im2col")))
    rows = cluster.failed_rows("smoke", tasks, "tiny_1x1", RuntimeError("exited with -9"))
    assert sorted((r["case"], r["algo"], r["status"]) for r in rows) == [
        ("tiny_1x1", "im2col", "error"), ("tiny_1x1", "torch", "error")]
    assert all("exited with -9" in r["reason"] for r in rows)
