"""The GEMM engine of numpy arrays (convbench.backends.gemm): torch's GEMM on zero-copy views
gives numpy's results, takes exactly the products it can view, comes from CONVBENCH_GEMM or the
machine's calibration, and is recorded with every run. No timed assertions: which engine is
faster is `convbench machine`'s measurement, and benchmarks/auto_quality.py's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from convbench import oracle
from convbench.algorithms import registry
from convbench.backends import gemm
from convbench.backends.xp import matmul, matmul_into, matmul_into_part
from convbench.measure import calibrate, machine
from convbench.problems.descriptor import parse
from convbench.run.rundir import read_meta
from convbench.run.runner import RunOptions, run
from convbench.run.suite import load_suite


@pytest.fixture(autouse=True)
def no_engine_set(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from the environment's engine (none set) and an empty cache."""
    monkeypatch.delenv(gemm.SWITCH, raising=False)
    previous = gemm.set_engine(None)
    gemm.forget()
    yield
    gemm.set_engine(previous)
    gemm.forget()


@pytest.fixture
def through_torch(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, ...], ...]]:
    """Engine torch for every product (MIN_MACS 1); returns the operand shapes torch ran."""
    gemm.set_engine("torch")
    monkeypatch.setattr(gemm, "MIN_MACS", 1)
    ran: list[tuple[tuple[int, ...], ...]] = []
    real = torch.matmul

    def spy(a, b, *, out=None):
        ran.append((tuple(a.shape), tuple(b.shape)))
        return real(a, b, out=out)

    monkeypatch.setattr(torch, "matmul", spy)
    return ran


SHAPES = [((5, 7), (7, 3)), ((4, 5, 7), (7, 3)), ((5, 7), (4, 7, 3)), ((2, 3, 5, 7), (3, 7, 4)),
          ((1, 5, 7), (6, 7, 2))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_shape, b_shape", SHAPES)
def test_torch_engine_gives_numpys_product(a_shape, b_shape, dtype, through_torch) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape).astype(dtype), rng.standard_normal(b_shape).astype(dtype)
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64))
    # a dot product's rounding bound: k * eps * sum |a_i b_i|, twice over
    bound = 2 * a_shape[-1] * np.finfo(dtype).eps * np.matmul(np.abs(a), np.abs(b))
    got = matmul(a, b)
    assert type(got) is np.ndarray and got.dtype == dtype and got.shape == exact.shape
    assert (np.abs(got - exact) <= bound).all()
    out = np.empty(exact.shape, dtype)
    assert matmul_into(a, b, out) is out
    np.testing.assert_array_equal(out, got)
    assert through_torch == [(a_shape, b_shape)] * 2


def test_transposed_and_read_only_operands_go_through_torch_without_a_warning(
        through_torch) -> None:
    a = np.arange(35, dtype=np.float32).reshape(7, 5).T  # a transposed view
    b = np.lib.stride_tricks.as_strided(np.arange(21, dtype=np.float32), (7, 3), (12, 4),
                                        writeable=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = matmul(a, b)
    np.testing.assert_array_equal(got, np.matmul(a, b))
    assert len(through_torch) == 1


def test_what_torch_cannot_view_stays_with_numpy(through_torch) -> None:
    a = np.ones((6, 5), np.float32)
    b = np.ones((5, 4), np.float32)
    cases = [(a[::-1], b, None),                       # a negative stride
             (a.astype(np.float16), b.astype(np.float16), None),  # a dtype torch's GEMM lacks here
             (a, b.astype(np.float64), None),          # mixed dtypes: numpy's promotion
             (a, b, np.empty((4, 6), np.float32).T)]   # an out that is not C-contiguous
    for x, y, out in cases:
        got = matmul_into(x, y, out) if out is not None else matmul(x, y)
        np.testing.assert_array_equal(got, np.matmul(x, y))
    assert through_torch == []


def test_an_out_over_an_operand_or_with_odd_strides_stays_correct(through_torch) -> None:
    """torch would read what it writes: numpy buffers, so such products stay with it. An out
    torch cannot view (a negative stride on a size-1 axis) does too."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 64)).astype(np.float32)
    b = rng.standard_normal((64, 64)).astype(np.float32)
    expected = np.matmul(a, b)
    matmul_into(a, b, a)  # out is a
    np.testing.assert_array_equal(a, expected)
    odd = np.zeros((1, 64, 64), np.float32)[::-1]
    assert odd.flags.c_contiguous and odd.strides[0] < 0
    matmul_into(a, b, odd)
    np.testing.assert_array_equal(odd[0], np.matmul(a, b))
    assert through_torch == []


def test_small_products_stay_with_numpy(monkeypatch: pytest.MonkeyPatch, through_torch) -> None:
    monkeypatch.setattr(gemm, "MIN_MACS", 6 * 5 * 4 + 1)
    matmul(np.ones((6, 5), np.float32), np.ones((5, 4), np.float32))
    assert through_torch == []
    monkeypatch.setattr(gemm, "MIN_MACS", 6 * 5 * 4)
    matmul(np.ones((6, 5), np.float32), np.ones((5, 4), np.float32))
    assert len(through_torch) == 1


def test_small_products_into_an_out_stay_with_numpy(monkeypatch: pytest.MonkeyPatch,
                                                    through_torch) -> None:
    """With an out, the size is out's times k: the same threshold as without."""
    a, b, out = np.ones((6, 5), np.float32), np.ones((5, 4), np.float32), np.empty((6, 4),
                                                                                    np.float32)
    monkeypatch.setattr(gemm, "MIN_MACS", 6 * 5 * 4 + 1)
    matmul_into(a, b, out)
    assert through_torch == [] and (out == 5).all()
    monkeypatch.setattr(gemm, "MIN_MACS", 6 * 5 * 4)
    matmul_into(a, b, out)
    assert len(through_torch) == 1 and (out == 5).all()


@pytest.mark.parametrize("with_out", [False, True])
def test_vectors_and_scalars_get_numpys_product_and_errors(with_out: bool,
                                                           through_torch) -> None:
    """Operands of fewer than two axes are numpy's, whatever their size: its product, and its
    own error for a scalar."""
    a, b = np.arange(1, 7, dtype=np.float32), np.ones((6, 3), np.float32)
    expected = np.matmul(a, b)
    found = gemm.matmul(a, b, out=np.empty(3, np.float32)) if with_out else gemm.matmul(a, b)
    assert np.array_equal(found, expected) and through_torch == []
    found = (gemm.matmul(b.T, a, out=np.empty(3, np.float32)) if with_out
             else gemm.matmul(b.T, a))
    assert np.array_equal(found, np.matmul(b.T, a)) and through_torch == []
    scalar, square = np.array(2.0, np.float32), np.ones((2, 2), np.float32)
    with pytest.raises(ValueError) as numpys:
        np.matmul(scalar, square)
    with pytest.raises(ValueError) as ours:
        if with_out:
            gemm.matmul(scalar, square, out=np.empty((2, 2), np.float32))
        else:
            gemm.matmul(scalar, square)
    assert str(ours.value) == str(numpys.value)


def test_numpy_engine_never_calls_torch(monkeypatch: pytest.MonkeyPatch, through_torch) -> None:
    gemm.set_engine("numpy")
    matmul(np.ones((60, 50), np.float32), np.ones((50, 40), np.float32))
    assert through_torch == []


def test_a_product_into_part_of_an_array(through_torch) -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal((3, 6, 5)).astype(
        np.float32)
    dst = np.zeros((2, 3, 4, 5), np.float32)
    matmul_into_part(a, b, dst, (1,), (3, 4, 5))
    np.testing.assert_allclose(dst[1], np.matmul(a, b), rtol=1e-6)
    assert not dst[0].any() and len(through_torch) == 1


def test_the_engine_comes_from_the_environment_then_the_calibration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(machine, "_UNCACHED", {})
    assert gemm.engine(1) == "numpy"
    assert gemm.source(1).startswith("numpy: no calibration for this machine at 1 threads")
    record = {"fingerprint": machine.fingerprint(1), "threads": 1, "rates": {},
              "gemm_engine": "torch", "measured_at": "2026-11-30T12:00:00+00:00"}
    calibrate.save(record | {"other_load": 0.0, "under_load": False})
    gemm.forget()
    assert gemm.engine(1) == "torch" and gemm.source(1).startswith("torch: calibrated 2026-11-30")
    monkeypatch.setenv(gemm.SWITCH, "numpy")
    assert gemm.engine(1) == "numpy" and gemm.source(1) == "CONVBENCH_GEMM=numpy"
    gemm.set_engine("torch")
    assert gemm.engine(1) == "torch"


def test_a_pinned_engine_reaches_the_processes_a_run_starts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gemm.SWITCH, "numpy")
    code = "from convbench.backends import gemm; print(gemm.engine(1))"
    with gemm.pinned("torch"):
        assert gemm.engine(1) == "torch"
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=120, check=True)
        assert child.stdout.strip() == "torch"
    assert gemm.engine(1) == "numpy" and os.environ[gemm.SWITCH] == "numpy"


def test_a_bad_engine_names_the_variable_and_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gemm.SWITCH, "mkl")
    with pytest.raises(ValueError, match="CONVBENCH_GEMM='mkl': expected one of numpy, torch"):
        gemm.engine(1)


def test_the_command_line_refuses_a_bad_engine_before_any_case(tmp_path: Path) -> None:
    env = {**os.environ, gemm.SWITCH: "mkl", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "convbench", "run", "smoke",
                           "--out", str(tmp_path / "run")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "CONVBENCH_GEMM='mkl'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "results.csv").exists()


def test_the_pick_needs_a_clear_margin() -> None:
    assert calibrate.pick_engine({"numpy": 200e9}) == "numpy"
    assert calibrate.pick_engine({"numpy": 200e9, "torch": 209e9}) == "numpy"
    assert calibrate.pick_engine({"numpy": 200e9, "torch": 211e9}) == "torch"


def test_a_calibration_records_both_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibrate, "GEMM_ROUNDS", calibrate.TimingPolicy(budget_s=0.0,
                                                                          min_repeats=2))
    monkeypatch.setattr(calibrate, "GEMM_SIZE", 64)
    monkeypatch.setattr(calibrate, "NARROW_GEMMS", ((4, 32, 32, 16), (2, 64, 64, 8)))
    rates = calibrate.engine_rates(calibrate.gemm_times_s(1, calibrate.installed_engines()))
    assert set(rates) == {"numpy", "torch"} and all(r > 0 for r in rates.values())


ALGORITHMS = [("im2col", "n2c8h12k16r1"), ("im2col", "n2c8h12k16r3p1"),
              ("im2col", "n2c8h12k16r3st2p1"), ("im2col", "n2c8h9k16r3p1g2"),
              ("winograd_f4x3", "n2c8h12k16r3p1"), ("winograd_f2x3", "n2c8h12k16r3p1g2"),
              ("polyphase_winograd_a6", "n2c8h14k16r3st2p1"),
              ("polyphase_winograd_a8", "n1c3h30k8r7st2p3")]


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("algo, descriptor", ALGORITHMS)
def test_algorithms_through_the_torch_engine_pass_the_oracle(
        algo, descriptor, layout, monkeypatch: pytest.MonkeyPatch, through_torch) -> None:
    monkeypatch.setenv("CONVBENCH_COMPILED", "0")  # the array versions, whose GEMMs these are
    p = parse(("" if layout == "nchw" else "nhwc_") + descriptor)
    algorithm = registry.get("conv2d", algo)
    why = algorithm.why_not(p, "numpy")
    if why:
        pytest.skip(f"{algo} refuses {p}: {why}")
    inputs = oracle.make_inputs(p)
    y = algorithm.run(p, *inputs.arrays)
    check = oracle.check_algorithm(p, y, oracle.reference(p, inputs), algorithm)
    assert check.ok, (algo, str(p), check)
    assert through_torch, "no product went through torch"


def test_a_run_records_its_engine_and_resume_keeps_it(tmp_path: Path) -> None:
    smoke = load_suite("smoke")
    gemm.set_engine("torch")
    run(smoke, tmp_path, RunOptions(algorithms=("im2col",)))
    meta = read_meta(tmp_path)
    assert meta["gemm_engine"] == "torch"
    assert meta["gemm_engine_source"] == "set by convbench.backends.gemm.set_engine"
    gemm.set_engine("numpy")
    with pytest.raises(ValueError, match="gemm_engine = torch, this run has numpy"):
        run(smoke, tmp_path, RunOptions(algorithms=("im2col",), resume=True))
    assert json.loads((tmp_path / "meta.json").read_text())["gemm_engine"] == "torch"


def test_a_run_recorded_before_the_engine_resumes_only_with_numpys(tmp_path: Path) -> None:
    smoke = load_suite("smoke")
    run(smoke, tmp_path, RunOptions(algorithms=("im2col",)))
    meta = read_meta(tmp_path)
    assert meta["gemm_engine"] == "numpy"
    meta.pop("gemm_engine")
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    gemm.set_engine("torch")
    with pytest.raises(ValueError, match="gemm_engine = numpy, this run has torch"):
        run(smoke, tmp_path, RunOptions(algorithms=("im2col",), resume=True))
    gemm.set_engine("numpy")
    run(smoke, tmp_path, RunOptions(algorithms=("im2col",), resume=True))


def test_each_engine_has_its_own_tuning_table(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Winners measured with one engine's GEMMs are not picked under the other's; numpy's
    table keeps the name every table had before the engine existed; auto's cached choice
    follows a change of engine without auto.forget."""
    from convbench.algorithms import auto

    monkeypatch.setenv("CONVBENCH_CACHE", str(tmp_path))
    threads = auto._threads()
    dense = parse("n8c64h56k64r3p1")
    numpy_table, torch_table = auto.tuning_path(threads, "numpy"), auto.tuning_path(threads,
                                                                                     "torch")
    assert numpy_table.name == f"tuning-{machine.fingerprint(threads)}.json"
    assert torch_table.name == f"tuning-{machine.fingerprint(threads)}-torch.json"
    numpy_table.write_text(json.dumps({str(dense): "fft"}))
    torch_table.write_text(json.dumps({str(dense): "direct"}))
    auto.forget()
    try:
        with gemm.pinned("numpy"):
            assert auto.tuning_path(threads) == numpy_table
            assert auto.choose(dense).name == "fft"
        with gemm.pinned("torch"):
            assert auto.tuning_path(threads) == torch_table
            assert auto.choose(dense).name == "direct"
        torch_table.unlink()
        auto.forget()
        with gemm.pinned("torch"):  # no table of torch's: the costs, not numpy's winner
            assert auto.choose(dense).name == auto.ranked(dense)[0].name != "fft"
    finally:
        auto.forget()


def test_tune_writes_the_table_of_the_engine_its_runs_use(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convbench.algorithms import auto
    from convbench.cli import main

    monkeypatch.setenv("CONVBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(gemm.SWITCH, "torch")
    out = tmp_path / "out"
    try:
        assert main(["tune", "smoke", "--algo", "im2col,direct", "--out", str(out),
                     "--threads", "1"]) == 0
        assert read_meta(out / "smoke")["gemm_engine"] == "torch"
        assert json.loads(auto.tuning_path(1, "torch").read_text())
        assert not auto.tuning_path(1, "numpy").exists()
    finally:
        auto.forget()


def test_auto_follows_a_change_of_the_environments_engine_after_forget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CONVBENCH_GEMM set after a choice was cached, then gemm.forget (the documented step):
    the next choice reads the new engine's tuning table, as explain does."""
    from convbench.algorithms import auto

    monkeypatch.setenv("CONVBENCH_CACHE", str(tmp_path))
    threads = auto._threads()
    dense = parse("n8c64h56k64r3p1")
    auto.tuning_path(threads, "numpy").write_text(json.dumps({str(dense): "fft"}))
    auto.tuning_path(threads, "torch").write_text(json.dumps({str(dense): "direct"}))
    auto.forget()
    try:
        monkeypatch.setenv(gemm.SWITCH, "numpy")
        assert auto.choose(dense).name == "fft"
        monkeypatch.setenv(gemm.SWITCH, "torch")
        gemm.forget()
        assert auto.choose(dense).name == "direct"
        assert auto.explain(dense).startswith("tuned winner direct")
    finally:
        auto.forget()
