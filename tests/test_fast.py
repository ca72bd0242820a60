"""The fast algorithms: Winograd transforms pinned and exact, FFT and Winograd specifics, the
workspace models against measurement, auto and its tuning table, the machine's peaks."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from convbench.backends import compiled
from convbench.algorithms import auto, registry

from convbench import oracle
from convbench.algorithms.conv import toom_cook, winograd
from convbench.problems.descriptor import parse
from convbench.measure.memory import peak_extra_bytes
from convbench.algorithms.registry import Algorithm
from convbench.problems import ConvProblem, Problem
from convbench.run.rundir import read_results
from convbench.run.runner import RunOptions, run
from convbench.run.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "winograd_transforms.json"


def _strings(matrix: list[list[Fraction]]) -> list[list[str]]:
    return [[str(v) for v in row] for row in matrix]


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"{REFERENCE} is not beside the checkout")
def test_toom_cook_reproduces_the_published_matrices() -> None:
    """Lavin & Gray / wincnn / Barabasz et al.: all eight published transforms, entry for entry."""
    published = json.loads(REFERENCE.read_text())
    assert len(published) == 8
    for entry in published.values():
        points = tuple(Fraction(p) for p in entry["points"] if p != "inf")
        at, g, bt = toom_cook.transforms(entry["m"], entry["r"], points)
        assert (_strings(at), _strings(g), _strings(bt)) == (entry["AT"], entry["G"], entry["BT"])


def test_pinned_matrices_are_what_the_construction_generates() -> None:
    pinned = (ROOT / "convbench" / "algorithms" / "conv" / "winograd_matrices.py").read_text()
    assert pinned == toom_cook.render(toom_cook.PAIRS)


def test_the_pinned_4x3_and_6x3_use_the_accurate_point_sets() -> None:
    from convbench.algorithms.conv.winograd_matrices import MATRICES

    assert MATRICES[(4, 3)]["points"] == ["0", "-1", "1", "1/2", "-2"]
    assert MATRICES[(6, 3)]["points"] == ["0", "1", "-1", "2", "-2", "1/2", "-1/2"]


@pytest.mark.parametrize("m, r", toom_cook.PAIRS)
def test_every_transform_computes_the_1d_correlation_exactly(m: int, r: int) -> None:
    """AT [(G g) * (BT d)] == sum_u d[i + u] g[u], in exact rationals, for random integers."""
    at, g, bt = toom_cook.transforms(m, r)
    rng = np.random.default_rng(m * 10 + r)
    taps = [Fraction(int(v)) for v in rng.integers(-9, 10, r)]
    tile = [Fraction(int(v)) for v in rng.integers(-9, 10, m + r - 1)]
    u = [sum(row[j] * taps[j] for j in range(r)) for row in g]
    v = [sum(row[j] * tile[j] for j in range(m + r - 1)) for row in bt]
    y = [sum(row[j] * u[j] * v[j] for j in range(m + r - 1)) for row in at]
    assert y == [sum(tile[i + k] * taps[k] for k in range(r)) for i in range(m)]


@pytest.mark.parametrize("problem, reason", [
    (ConvProblem(1, 4, 9, 9, 4, 3, 3, stride=2), "stride 1 only"),
    (ConvProblem(1, 4, 9, 9, 4, 3, 3, dilation=2), "dilation 1 only"),
    (ConvProblem(1, 4, 9, 9, 4, 5, 5), "longer side must be 3"),
])
def test_winograd_says_why_not(problem: ConvProblem, reason: str) -> None:
    assert reason in registry.get("conv2d", "winograd_f4x3").why_not(problem, "numpy")


def test_winograd_family_reduces_multiplies_as_published() -> None:
    summaries = {n: registry.get("conv2d", n).summary for n in winograd.FAMILY}
    assert "2.25x fewer" in summaries["winograd_f2x3"]
    assert "4.00x fewer" in summaries["winograd_f4x3"]
    assert "5.06x fewer" in summaries["winograd_f6x3"]


@pytest.mark.parametrize("name", ["fft", "winograd_f4x3", "winograd_f2x5", "auto"])
def test_prepared_weights_give_the_same_result(name: str) -> None:
    p = ConvProblem(2, 6, 12, 11, 4, 3 if name != "winograd_f2x5" else 5, 3, padding=1,
                    bias=True)
    algorithm = registry.get("conv2d", name)
    if algorithm.prepare is None:
        pytest.skip(f"{name} has no weight-only preparation")
    inputs = oracle.make_inputs(p)
    state = algorithm.prepare(p, *inputs.arrays)
    np.testing.assert_array_equal(algorithm.fn(p, *inputs.arrays, prepared=state),
                                  algorithm.fn(p, *inputs.arrays))


@pytest.mark.parametrize("name", ["fft", "winograd_f4x3", "winograd_f2x5"])
def test_prepared_weights_are_the_ones_used(name: str) -> None:
    """With prepared=state the call takes its filter transform from the state, not from w: the
    state of other weights (here twice w) gives their convolution."""
    p = ConvProblem(1, 4, 10, 9, 3, 5 if name == "winograd_f2x5" else 3, 3, padding=1)
    algorithm = registry.get("conv2d", name)
    inputs = oracle.make_inputs(p, seed=31)
    x, w, bias = inputs.arrays
    doubled = algorithm.prepare(p, x, 2 * w, bias)
    y = algorithm.fn(p, x, w, bias, prepared=doubled)
    np.testing.assert_allclose(y, 2 * algorithm.fn(p, x, w, bias), rtol=1e-5, atol=1e-5)


def test_fft_returns_the_inputs_dtype_when_the_library_upcasts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An inverse transform that answers in float64 (as some FFT libraries do for float32
    input) still gives a float32 result of the same values."""
    from convbench.algorithms.conv import fft

    p = ConvProblem(1, 3, 8, 8, 2, 3, 3, padding=1, bias=True)
    inputs = oracle.make_inputs(p, seed=32)
    expected = fft.fft(p, *inputs.arrays)
    real = fft.irfftn
    monkeypatch.setattr(fft, "irfftn", lambda x, shape, axes=None: real(x, shape, axes).astype(
        np.float64))
    y = fft.fft(p, *inputs.arrays)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("h, w, padding", [(4, 5, (1, 1)), (5, 4, (1, 0)), (4, 9, (3, 1)),
                                            (5, 4, (1, 1))])
def test_fft_sizes_are_the_padded_input_rounded_up_for_real_transforms(
        h: int, w: int, padding: tuple[int, int]) -> None:
    """Each axis its own padded size, rounded up to the next size scipy.fft's real transforms
    handle fastest (5-smooth: 7 becomes 8, where a complex transform would keep 7)."""
    from scipy.fft import next_fast_len

    from convbench.algorithms.conv import fft

    p = ConvProblem(1, 2, h, w, 2, 3, 3, padding=padding)
    padded = (h + 2 * padding[0], w + 2 * padding[1])
    assert fft.fft_shape(p) == tuple(next_fast_len(n, real=True) for n in padded)
    assert all(size >= n for size, n in zip(fft.fft_shape(p), padded))
    assert next_fast_len(7, real=True) == 8 and next_fast_len(7, real=False) == 7
    inputs = oracle.make_inputs(p, seed=33)
    algorithm = registry.get("conv2d", "fft")
    assert oracle.check_algorithm(p, fft.fft(p, *inputs.arrays), oracle.reference(p, inputs),
                                  algorithm).ok


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_winograd_transforms_come_in_the_dtype_asked(dtype: str) -> None:
    for m, r in winograd.FAMILY.values():
        assert all(a.dtype == np.dtype(dtype) for a in winograd.matrices(m, r, dtype))
        for pair in winograd.axis_transforms(m + r - 1, r, r, dtype):
            assert all(a.dtype == np.dtype(dtype) for a in pair)
        assert all(a.dtype == np.dtype(dtype) for a in
                   winograd.kron_transforms(m + r - 1, r, r, dtype))
    at, g, bt = winograd.kron_transforms(6, 3, 2, dtype)  # a 3x2 kernel: F(4,3) (x) F(5,2)
    assert (at.shape, g.shape, bt.shape) == ((4 * 5, 36), (36, 6), (36, 36))


MEMORY_CASES = ["n2c16h20k16r3p1", "n8c64h56k64r3p1", "n2c32h64k32r9p4", "n1c3h56k16r7st2p3",
                "n2c16h21k16r3st2p1g4b1", "n2c64h7k128r3p1"]
# Channels last, the Winograd family: winograd_nhwc's own model (tile-aligned and cropped
# outputs, groups). (im2col's channels-last model is off by 20-80% on the first three.)
NHWC_MEMORY_CASES = [pytest.param(name, d, id=f"{d}-{name}")
                     for d in ("nhwc_n8c64h56k64r3p1", "nhwc_n2c64h7k128r3p1",
                               "nhwc_n2c16h21k16r3p1g4b1", "nhwc_n8c256h14k256r3p1")
                     for name in ("winograd_f2x3", "winograd_f4x3", "winograd_f6x3")]


@pytest.mark.parametrize("name, descriptor", [
    *(pytest.param(name, d, id=f"{d}-{name}") for d in MEMORY_CASES
      for name in ("im2col", "fft", "winograd_f2x3", "winograd_f4x3", "winograd_f6x3")),
    *NHWC_MEMORY_CASES])
def test_measured_workspace_within_10_percent_of_the_model(name: str, descriptor: str) -> None:
    p = parse(descriptor)
    algorithm = registry.get("conv2d", name)
    reason = algorithm.why_not(p, "numpy")
    if reason:
        pytest.skip(reason)
    assert_workspace_matches_the_model(p, algorithm)


@pytest.mark.parametrize("descriptor", [
    "nhwc_n1c16h16k64r3p1",  # one output block: one block's transformed tiles at a time
    "nhwc_n1c4h113k64r3p0",  # tiles past the output: the crop's copy beside the products
])
def test_channels_last_array_winograd_workspace_within_10_percent(
        monkeypatch: pytest.MonkeyPatch, descriptor: str) -> None:
    """winograd_nhwc's own model (the compiled kernels off, as where numba is missing)."""
    monkeypatch.setenv(compiled.SWITCH, "0")
    assert_workspace_matches_the_model(parse(descriptor), registry.get("conv2d", "winograd_f4x3"))


def assert_workspace_matches_the_model(p: Problem, algorithm: Algorithm) -> None:
    """tracemalloc's peak above the call's start within 10% of algorithm.workspace_bytes(p),
    on its second call (as in a run: caches such as transform matrices already made)."""
    arrays = oracle.make_inputs(p).arrays
    algorithm.fn(p, *arrays)
    measured = peak_extra_bytes(lambda: algorithm.fn(p, *arrays)).peak_extra_bytes
    model = algorithm.workspace_bytes(p)
    slack = 16 * 1024  # Python objects and array headers, independent of the problem
    assert abs(measured - model) <= 0.10 * model + slack, (measured, model)


@pytest.mark.parametrize("descriptor", [
    "bwd_data_n2c16h20k16r3p1", "bwd_data_n4c32h16k64r5p2", "bwd_data_n2c16h21k16r3st2p1g4",
    "bwd_weight_n2c16h20k16r3p1", "bwd_weight_n4c32h16k64r5p2", "bwd_data_n2c64h14k32r1",
    "bwd_data_n1c64h8k256r3p1",  # the tap-major weights outweigh the columns
])
def test_im2col_backward_workspace_within_10_percent_of_the_model(descriptor: str) -> None:
    p = parse(descriptor)
    assert_workspace_matches_the_model(p, registry.get(p.op, "im2col"))


def test_auto_never_picks_an_unsupported_algorithm() -> None:
    from test_algorithms import GRID

    problems = list(GRID.values())
    problems += [c.problem for c in load_suite("resnet50").cases]
    problems += [c.problem for c in load_suite("kernels").cases]
    for p in problems:
        chosen = auto.choose(p)
        assert chosen.name != "auto" and chosen.why_not(p, "numpy") is None, (str(p), chosen)


def test_auto_costs_make_the_documented_choices() -> None:
    assert auto.choose(parse("n8c64h56k64r3p1")).name == "winograd_f4x3"
    assert auto.choose(parse("n8c64h56k256r1")).name == "im2col"
    assert auto.choose(parse("n8c32h64k32r9p4")).name == "fft"
    assert auto.choose(parse("n8c128h56k128r3st2p1")).name == "im2col"


def test_auto_ranks_the_cuda_kernels_first_on_cupy_and_numpy_passes_them_over() -> None:
    dense = parse("n8c64h56k64r3p1")
    assert [a.name for a in auto.candidates(dense, "cupy")][:2] == ["winograd_f4x3_cuda",
                                                                     "winograd_f6x3_cuda"]
    assert auto.candidates(parse("n8c128h56k128r3st2p1"), "cupy")[0].name == "im2col_cuda"
    assert all("numpy" in a.backends for a in auto.candidates(dense, "numpy"))
    assert auto.choose(dense, "numpy").name == "winograd_f4x3"


@pytest.mark.gpu
def test_auto_picks_the_cuda_kernels_for_cupy_arrays() -> None:
    from convbench.backends import backend_why_not, to_backend

    reason = backend_why_not("cupy", probe=True)
    if reason:
        pytest.skip(reason)
    assert auto.choose(parse("n8c64h56k64r3p1"), "cupy").name == "winograd_f4x3_cuda"
    assert auto.choose(parse("n8c128h56k128r3st2p1"), "cupy").name == "im2col_cuda"
    p = parse("n2c64h12k64r3p1")
    inputs = oracle.make_inputs(p)
    y = registry.get("conv2d", "auto").fn(p, *(to_backend(a, "cupy") for a in inputs.arrays))
    assert type(y).__module__.startswith("cupy")
    chosen = auto.choose(p, "cupy")
    assert oracle.check_algorithm(p, y.get(), oracle.reference(p, inputs), chosen).ok


@pytest.fixture
def fresh_auto():
    auto.forget()
    yield
    auto.forget()


def test_tuned_winner_is_used_only_when_it_supports_the_problem(fresh_auto: None) -> None:
    from threadpoolctl import threadpool_info

    threads = max(lib["num_threads"] for lib in threadpool_info())
    path = auto.tuning_path(threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    strided = parse("n8c128h56k128r3st2p1")
    dense = parse("n8c64h56k64r3p1")
    path.write_text(json.dumps({str(dense): "fft", str(strided): "winograd_f4x3"}))
    try:
        auto.forget()
        assert auto.choose(dense).name == "fft"  # the measured winner beats the costs
        assert auto.choose(strided).name == "im2col"  # Winograd cannot do stride 2
        # the table holds numpy's winners: CuPy arrays keep the costs' order, CUDA first
        assert auto.candidates(dense, "cupy")[0].name == "winograd_f4x3_cuda"
    finally:
        path.unlink()


def test_tune_stores_the_winners_of_a_run(tmp_path: Path, fresh_auto: None) -> None:
    from convbench.cli import main

    assert main(["tune", "smoke", "--out", str(tmp_path), "--threads", "1"]) == 0
    frame = read_results(tmp_path / "smoke")
    assert not set(frame["algo"]) & {"torch", "direct_naive", "auto"}
    assert json.loads((tmp_path / "smoke" / "meta.json").read_text())["interleave"] is True
    stored = json.loads(auto.tuning_path(1).read_text())
    ok = frame[frame["status"] == "ok"]
    for descriptor, rows in ok.groupby("descriptor"):
        assert stored[descriptor] == rows.loc[rows["time_median_s"].idxmin(), "algo"]
    auto.tuning_path(1).unlink()


def test_run_records_what_auto_ran_and_prepared_weights(tmp_path: Path) -> None:
    suite_file = tmp_path / "s.toml"
    suite_file.write_text('[suite]\nalgorithms = ["auto", "fft", "im2col"]\nbudget_s = 0.01\n'
                          'min_repeats = 3\nprepare_weights = true\n\n[[case]]\nname = "a"\n'
                          'descriptor = "n2c64h12k64r3p1"\n')
    frame = read_results(run(load_suite(str(suite_file)), tmp_path / "out", RunOptions()))
    rows = frame.set_index("algo")
    assert set(frame["status"]) == {"ok"}
    assert rows.loc["auto", "ran_algo"] == auto.choose(parse("n2c64h12k64r3p1")).name
    assert rows.loc["fft", "ran_algo"] == "fft"
    assert bool(rows.loc["fft", "weights_prepared"]) and not rows.loc["im2col",
                                                                       "weights_prepared"]


def test_machine_peaks_are_measured_cached_and_in_meta(tmp_path: Path) -> None:
    from convbench.measure import machine

    first = machine.peaks(1)
    assert first["sgemm_gflops"] > 0 and first["copy_gbytes_per_s"] > 0
    assert machine.peaks(1) == first  # cached, not measured again
    run(load_suite("smoke"), tmp_path, RunOptions(algorithms=("im2col",), threads=1))
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["machine"]["sgemm_gflops"] == first["sgemm_gflops"]


@pytest.mark.parametrize("name", ["fft", "winograd_f2x3", "winograd_f6x3"])
def test_spread_tolerance_still_catches_a_single_wrong_product(name: str) -> None:
    """Measured against the output's largest magnitude, this product counted twice in a sum of
    4608 (C=512, 3x3) still fails the check of the loosest algorithms. Not every product does:
    F(6,3)'s tolerance catches about 7 in 10 at this L, fewer as L grows (test_oracle_check)."""
    p = ConvProblem(1, 512, 6, 6, 4, 3, 3, padding=1)
    inputs = oracle.make_inputs(p, seed=3)
    reference = oracle.reference(p, inputs)
    y = reference.y.astype(np.float32)
    y[0, 1, 2, 3] += inputs.x[0, 5, 2, 3] * inputs.w[1, 5, 1, 1]
    algorithm = registry.get("conv2d", name)
    assert algorithm.error_spreads
    assert oracle.check_algorithm(p, reference.y.astype(np.float32), reference, algorithm).ok
    assert not oracle.check_algorithm(p, y, reference, algorithm).ok
