"""The harness end to end in-process: statuses, rows as they are produced, metadata, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from convbench.run.rundir import COLUMNS, read_results, read_run, read_samples
from convbench.run.runner import RunOptions, plan, run
from convbench.run.suite import load_suite

from conftest import AddAlgorithm

SMOKE = load_suite("smoke")


def _write_suite(path: Path, algorithms: list[str], budget_s: float = 0.01, limit_s: float = 5.0,
                 cases: int = 2) -> Path:
    lines = ["[suite]", f"algorithms = {json.dumps(algorithms)}", f"budget_s = {budget_s}",
             "min_repeats = 3", f"limit_s = {limit_s}", ""]
    for i in range(cases):
        lines += ["[[case]]", f'name = "case{i}"', f'descriptor = "n2c4h{8 + i}k4r3p1"', ""]
    path.write_text("\n".join(lines))
    return path


def test_smoke_run_is_all_ok_with_every_column(tmp_path: Path) -> None:
    path = run(SMOKE, tmp_path)
    frame = read_results(path)
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == len(plan(SMOKE, RunOptions()))
    assert set(frame["status"]) <= {"ok", "unsupported"}, frame[["algo", "status", "reason"]]
    unsupported = frame[frame["status"] == "unsupported"]
    assert (unsupported["reason"].str.len() > 0).all()  # every refusal carries its reason
    # what may refuse a smoke case: Winograd (stride, dilation, kernel), polyphase Winograd
    # (stride 1, dilation, kernel), the cupy-only kernels
    assert set(unsupported["algo"]) <= {a for a in frame["algo"]
                                        if a.startswith(("winograd", "polyphase_winograd"))
                                        or a.endswith("_cuda")}
    cuda_only = unsupported[unsupported["algo"].str.endswith("_cuda")]
    assert cuda_only["reason"].str.contains("cupy only").all()
    frame = frame[frame["status"] == "ok"]
    assert (frame["time_median_s"] > 0).all() and (frame["repeats"] >= 3).all()
    assert (frame["max_abs_err"] <= frame["norm_err"].clip(lower=1)).all()
    assert (frame["norm_err"] <= frame["tolerance"]).all()
    assert np.allclose(frame["gflops"], frame["flops"] / frame["time_median_s"] / 1e9)
    # torch's allocator is invisible to tracemalloc (torch, torch_im2col): no measured peak
    numpy_rows = frame[~frame["algo"].isin(["torch", "torch_im2col"])]
    assert numpy_rows["peak_mem_bytes"].notna().all()
    assert {"direct_naive", "direct", "im2col", "fft", "auto", "winograd_f4x3"} <= set(
        frame["algo"])
    torch_rows = frame[frame["algo"] == "torch"]
    assert torch_rows["peak_mem_bytes"].isna().all()
    assert (torch_rows["mem_note"] == "allocations not visible to tracemalloc").all()


def test_meta_records_machine_blas_threads_and_commit(tmp_path: Path) -> None:
    run(SMOKE, tmp_path, RunOptions(algorithms=("im2col",), threads=1))
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["threads"] == 1
    assert meta["cpu"]["logical_cores"] == os.cpu_count()
    assert any(lib["user_api"] == "blas" for lib in meta["blas"])
    assert all(lib["num_threads"] == 1 for lib in meta["blas"])
    for name in ("python", "numpy", "torch", "convbench"):
        assert meta["versions"][name]
    assert "commit" in meta["convbench"] and meta["suite"]["name"] == "smoke"
    frame = read_results(tmp_path)
    assert set(frame["threads"]) == {1}


def test_failures_are_recorded_and_the_run_goes_on(
    tmp_path: Path, temporary_algorithm: AddAlgorithm
) -> None:
    def crashes(p, x, w, b):
        raise RuntimeError("boom")

    def runs_out_of_memory(p, x, w, b):
        raise MemoryError("cannot allocate")

    def off_by_one(p, x, w, b):
        from convbench.algorithms.conv.im2col import conv2d_im2col

        y = conv2d_im2col(p, x, w, b)
        y[0, 0, 0, 0] += 1.0
        return y

    temporary_algorithm("t_crash", crashes)
    temporary_algorithm("t_oom", runs_out_of_memory)
    temporary_algorithm("t_wrong", off_by_one)
    temporary_algorithm("t_refuses", crashes, checks=(lambda p: "stride 2 only",))
    temporary_algorithm("t_slow", crashes, estimate_s=lambda p: 1e9)
    names = ["t_crash", "t_oom", "t_wrong", "t_refuses", "t_slow", "im2col"]
    suite = load_suite(str(_write_suite(tmp_path / "s.toml", names)))
    frame = read_results(run(suite, tmp_path / "out")).set_index(["case", "algo"])
    for case in ("case0", "case1"):
        row = lambda algo: frame.loc[(case, algo)]  # noqa: E731
        assert (row("t_crash")["status"], row("t_crash")["reason"]) == ("error", "RuntimeError: boom")
        assert row("t_oom")["status"] == "oom" and "cannot allocate" in row("t_oom")["reason"]
        assert row("t_wrong")["status"] == "wrong" and "over tolerance" in row("t_wrong")["reason"]
        assert row("t_wrong")["max_abs_err"] == pytest.approx(1.0, rel=1e-3)
        assert (row("t_refuses")["status"], row("t_refuses")["reason"]) == (
            "unsupported", "stride 2 only")
        assert row("t_slow")["status"] == "skipped" and "over the case limit" in \
            row("t_slow")["reason"]
        assert row("im2col")["status"] == "ok"


def test_exactness_mode_runs_bit_exact(tmp_path: Path) -> None:
    frame = read_results(run(SMOKE, tmp_path, RunOptions(exact=True)))
    assert set(frame["status"]) <= {"ok", "unsupported"}
    exact = frame[frame["exact"] & (frame["status"] == "ok")]
    assert set(exact["algo"]) == {"direct_naive", "direct", "im2col"}
    assert (exact["max_abs_err"] == 0).all() and (exact["tolerance"] == 0).all()


def test_a_killed_run_resumes_without_losing_or_repeating_rows(tmp_path: Path) -> None:
    suite_file = _write_suite(tmp_path / "slow.toml", ["direct", "im2col", "torch"],
                              budget_s=0.4, cases=3)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "convbench.cli", "run", str(suite_file), "--out", str(out),
               "--no-progress", "--processes", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "slow" / "results.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 3:  # header + 2 rows
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = read_results(results)
    assert 2 <= len(before) < 9, "the run must be killed part-way"
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    after = read_results(results)
    keys = list(zip(after["case"], after["algo"]))
    assert len(keys) == len(set(keys)) == 9
    pd.testing.assert_frame_equal(after.head(len(before)), before, check_dtype=False)
    meta = json.loads((out / "slow" / "meta.json").read_text())
    assert len(meta["resumed"]) == 1


def test_an_unknown_backend_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend 'cuda' is not known"):
        plan(SMOKE, RunOptions(backends=("cuda",)))


def test_resume_refuses_rows_made_with_other_settings(tmp_path: Path) -> None:
    run(SMOKE, tmp_path, RunOptions(algorithms=("im2col",)))
    with pytest.raises(ValueError, match="holds case 'tiny_3x3' as n2c4h9k6r3p1"):
        run(SMOKE.with_batch(3), tmp_path, RunOptions(algorithms=("im2col",), resume=True))


def test_a_check_that_raises_is_recorded(tmp_path: Path,
                                         temporary_algorithm: AddAlgorithm) -> None:
    def broken_check(p):
        raise RuntimeError("plugin bug")

    temporary_algorithm("t_broken_check", lambda p, x, w, b: x, checks=(broken_check,))
    frame = read_results(run(SMOKE, tmp_path, RunOptions(algorithms=("t_broken_check", "im2col"))))
    rows = frame[frame["algo"] == "t_broken_check"]
    assert set(rows["status"]) == {"error"} and set(rows["reason"]) == {"RuntimeError: plugin bug"}
    assert set(frame[frame["algo"] == "im2col"]["status"]) == {"ok"}


def test_out_of_memory_errors_of_cuda_libraries_are_oom() -> None:
    from convbench.backends.gpu import is_out_of_memory

    class OutOfMemoryError(RuntimeError):  # torch.cuda's and cupy's carry this name
        pass

    assert is_out_of_memory(OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("boom"))


def test_memory_of_several_outputs_counts_them_all() -> None:
    from convbench.measure.memory import peak_extra_bytes

    reading = peak_extra_bytes(lambda: (np.ones(10**5), np.ones(10**5)))
    assert reading.peak_extra_bytes is not None and reading.peak_extra_bytes < 10**5


def test_a_model_cost_over_the_limit_skips_without_a_call(
        tmp_path: Path, temporary_algorithm: AddAlgorithm) -> None:
    """An algorithm that declares a cost and no estimate is bounded by its cost times the
    safety factor: over the case limit it is skipped before any call, whatever this machine's
    mood, and the reason says by how much. Under it, it runs."""
    from convbench.algorithms.cost import ESTIMATE_SAFETY

    def never(p, x, w, b):
        raise AssertionError("a case over its limit must not be called")

    limit_s = 5.0
    temporary_algorithm("t_costly", never, cost_s=lambda p: 1.5 * limit_s / ESTIMATE_SAFETY)
    temporary_algorithm("t_cheap", lambda p, x, w, b: run_im2col(p, x, w, b),
                        cost_s=lambda p: 0.5 * limit_s / ESTIMATE_SAFETY)
    suite = load_suite(str(_write_suite(tmp_path / "s.toml", ["t_costly", "t_cheap"],
                                        limit_s=limit_s, cases=1)))
    frame = read_results(run(suite, tmp_path / "out")).set_index("algo")
    assert frame.loc["t_costly", "status"] == "skipped"
    assert frame.loc["t_costly", "reason"] == \
        "estimated 7.5 s per call, over the case limit of 5 s"
    assert frame.loc["t_cheap", "status"] == "ok"


def run_im2col(p, x, w, b):
    from convbench.algorithms.conv.im2col import conv2d_im2col

    return conv2d_im2col(p, x, w, b)


def test_a_slow_first_call_within_the_estimate_is_timed_again_warm(
        tmp_path: Path, temporary_algorithm: AddAlgorithm) -> None:
    """A first call that pays once (a kernel compiled on the machine's first run) past the case
    limit, by an algorithm whose estimate fits: a second, warm call decides, and the row is
    timed. Without an estimate that fits, the first call decides, as before, and the reason
    says which call."""
    from convbench.algorithms.cost import ESTIMATE_SAFETY

    limit_s, calls = 0.05, {"t_compiles": 0, "t_unbounded": 0}

    def slow_once(name: str):  # noqa: ANN202
        def fn(p, x, w, b):  # noqa: ANN001, ANN202
            calls[name] += 1
            if calls[name] == 1:
                time.sleep(0.08)  # never shorter: past the limit for sure
            return run_im2col(p, x, w, b)
        return fn

    temporary_algorithm("t_compiles", slow_once("t_compiles"),
                        cost_s=lambda p: 0.001 / ESTIMATE_SAFETY)
    temporary_algorithm("t_unbounded", slow_once("t_unbounded"))
    suite = load_suite(str(_write_suite(tmp_path / "s.toml", ["t_compiles", "t_unbounded"],
                                        limit_s=limit_s, cases=1)))
    frame = read_results(run(suite, tmp_path / "out", RunOptions(threads=1))).set_index("algo")
    assert frame.loc["t_compiles", "status"] == "ok" and calls["t_compiles"] > 2
    assert frame.loc["t_unbounded", "status"] == "skipped" and calls["t_unbounded"] == 1
    assert frame.loc["t_unbounded", "reason"].startswith("over budget: the checked call took")


@pytest.mark.parametrize("interleave", [True, False])
def test_a_series_past_the_limit_is_over_budget_with_its_samples_kept(
        tmp_path: Path, temporary_algorithm: AddAlgorithm, interleave: bool) -> None:
    """An estimate that was far off: the checked call and the memory call are quick, then every
    call sleeps 60 ms against a case limit of 50 ms. The first sample ends the series: the row
    is skipped as over budget, its samples kept; the other algorithm of the case is ok."""
    calls = 0

    def turns_slow(p, x, w, b):
        nonlocal calls
        calls += 1
        if calls > 2:
            time.sleep(0.06)  # a sleep is never shorter: the limit is passed for sure
        return run_im2col(p, x, w, b)

    temporary_algorithm("t_turns_slow", turns_slow)
    suite = load_suite(str(_write_suite(tmp_path / "s.toml", ["t_turns_slow", "im2col"],
                                        limit_s=0.05, cases=1)))
    out = tmp_path / "out"
    frame = read_results(run(suite, out, RunOptions(interleave=interleave, threads=1)))
    row = frame.set_index("algo").loc["t_turns_slow"]
    assert row["status"] == "skipped"
    assert row["reason"].startswith("over budget: a sample took 0.06")
    assert "over the case limit of 0.05 s (no estimate); not timed further" in row["reason"]
    kept = read_samples(out)[("case0", "t_turns_slow", "numpy", "fwd")]
    assert len(kept) == row["repeats"] >= 1 and max(kept) > 0.05
    assert frame.set_index("algo").loc["im2col", "status"] == "ok"


def test_samples_from_several_processes(tmp_path: Path,
                                        temporary_algorithm: AddAlgorithm) -> None:
    """--processes 2: a second, fresh process times each checked algorithm again; the row says
    how many processes timed it and samples.jsonl which process took each sample. An algorithm
    registered at run time (not by an import) is unknown to a fresh process: process 0 alone
    times it. A resume must keep the number of processes."""
    temporary_algorithm("t_runtime", lambda p, x, w, b: run_im2col(p, x, w, b))
    suite = load_suite(str(_write_suite(tmp_path / "s.toml", ["im2col", "t_runtime"],
                                        budget_s=0.02, cases=1)))
    out = tmp_path / "out"
    options = RunOptions(threads=1, processes=2)
    frame = read_results(run(suite, out, options)).set_index("algo")
    assert frame.loc["im2col", "processes"] == 2 and frame.loc["t_runtime", "processes"] == 1
    run_dir = read_run(out)
    process_of = run_dir.processes[("case0", "im2col", "numpy", "fwd")]
    assert set(process_of) == {0, 1} and len(process_of) == frame.loc["im2col", "repeats"]
    assert ("case0", "t_runtime", "numpy", "fwd") not in run_dir.processes
    assert json.loads((out / "meta.json").read_text())["processes"] == 2
    with pytest.raises(ValueError, match="processes = 2, this run has 1 \\(--processes\\)"):
        run(suite, out, replace(options, processes=1, resume=True))


def test_the_harness_defaults() -> None:
    """Interleaved, one thread; the library runs one process (the command's default is more:
    a script that spawns needs its `if __name__ == "__main__":`)."""
    from convbench.run.runner import run_threads

    options = RunOptions()
    assert options.interleave and options.processes == 1 and run_threads(options) == 1


def test_a_selector_is_held_to_the_tolerance_of_what_it_ran(
    tmp_path: Path, temporary_algorithm: AddAlgorithm
) -> None:
    """A selector's row is checked with the tolerance its choice declares (Winograd's floor for
    Winograd), not with the selector's own: F(6,3)'s rounding on a 3-D depthwise layer passes
    sqrt(L) eps by far (measured 254 eps against sqrt(L) = 5.2) and is within its floor."""
    from convbench.algorithms import registry

    f6 = registry.get("conv3d", "winograd_f6x3")
    temporary_algorithm("t_picks_f6", f6.fn, resolve=lambda p, backend: f6, role="selector",
                        ranks=(2, 3))
    path = tmp_path / "s.toml"
    path.write_text('[suite]\nalgorithms = ["t_picks_f6", "winograd_f6x3"]\nbudget_s = 0.01\n'
                    'min_repeats = 3\n\n[[case]]\nname = "dw3d"\n'
                    'descriptor = "n1c16id8h14k16r3p1g16"\n')
    frame = read_results(run(load_suite(str(path)), tmp_path / "out")).set_index("algo")
    assert list(frame["status"]) == ["ok", "ok"]
    assert frame.loc["t_picks_f6", "tolerance"] == frame.loc["winograd_f6x3", "tolerance"]
    assert frame.loc["t_picks_f6", "norm_err"] > 5.2 * np.finfo(np.float32).eps
