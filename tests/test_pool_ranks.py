"""The pooling algorithms of every rank: `naive` and `windowed`, max and average, forward and
backward, take ranks 2 and 3 natively and rank 1 through the lowering, with per-side padding,
ceil mode, count_include_pad, divisor_override and dilation, in either memory layout, against
the float64 oracle; and torch's edges: a max window holding a NaN sends its gradient to its last
NaN (torch's CPU rule), and a max window lying wholly in the padding is -inf with no gradient."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from convbench import oracle
from convbench.algorithms import registry
from convbench.measure.memory import peak_extra_bytes
from convbench.problems import PoolProblem

ALGORITHMS = ("naive", "windowed")

CASES: dict[str, dict[str, Any]] = {  # PoolProblem fields beyond n, c and direction
    "1d-max-per-side": dict(kind="max", size=(13,), kernel=(3,), stride=2, padding=((1, 0),)),
    "1d-max-dilated-ceil": dict(kind="max", size=(12,), kernel=(3,), stride=2, padding=1,
                                dilation=2, ceil_mode=True),
    "1d-avg-exclude-pad-ceil": dict(kind="avg", size=(11,), kernel=(4,), stride=3,
                                    padding=((2, 1),), ceil_mode=True, count_include_pad=False),
    "1d-avg-divisor": dict(kind="avg", size=(10,), kernel=(3,), stride=2, padding=1,
                           divisor_override=5),
    "2d-max-per-side-dilated-ceil": dict(kind="max", size=(9, 10), kernel=(3, 2), stride=(2, 3),
                                         padding=((1, 0), (0, 1)), dilation=(2, 1),
                                         ceil_mode=True),
    "2d-avg-per-side-exclude-pad-ceil": dict(kind="avg", size=(8, 7), kernel=(3, 3), stride=2,
                                             padding=((1, 0), (1, 1)), ceil_mode=True,
                                             count_include_pad=False),
    "2d-avg-divisor-per-side": dict(kind="avg", size=(7, 8), kernel=(2, 3), stride=(1, 2),
                                    padding=((0, 1), (1, 0)), divisor_override=4),
    "3d-max-per-side-dilated-ceil": dict(kind="max", size=(5, 6, 7), kernel=(2, 3, 2),
                                         stride=(2, 2, 3), padding=((1, 0), (1, 1), (0, 1)),
                                         dilation=(1, 2, 2), ceil_mode=True),
    "3d-max-global": dict(kind="max", size=(3, 4, 4), kernel=(3, 4, 4)),  # fewer outputs than taps
    "3d-avg-per-side-exclude-pad-ceil": dict(kind="avg", size=(5, 6, 5), kernel=(3, 2, 3),
                                             stride=(2, 2, 2), padding=((1, 1), (1, 0), (0, 1)),
                                             ceil_mode=True, count_include_pad=False),
    "3d-avg-include-pad": dict(kind="avg", size=(4, 5, 6), kernel=(2, 3, 3), stride=(1, 2, 2),
                               padding=(1, 1, 0)),
    "3d-avg-divisor-global": dict(kind="avg", size=(3, 3, 4), kernel=(3, 3, 4),
                                  divisor_override=7),
}
LAYOUT_CASES = ("2d-max-per-side-dilated-ceil", "2d-avg-per-side-exclude-pad-ceil",
                "3d-max-per-side-dilated-ceil", "3d-avg-per-side-exclude-pad-ceil",
                "3d-max-global", "3d-avg-divisor-global")


def _problem(case: str, direction: str, layout: str = "nchw", dtype: str = "float32"):
    return PoolProblem(n=2, c=3, direction=direction, layout=layout, dtype=dtype, **CASES[case])


GRID = [pytest.param(name, case, direction, layout, id=f"{name}-{case}-{direction}-{layout}")
        for name in ALGORITHMS for case in CASES for direction in ("fwd", "bwd_data")
        for layout in ("nchw", "nhwc") if layout == "nchw" or case in LAYOUT_CASES]


def _channels_last(a: np.ndarray) -> bool:
    return bool(np.moveaxis(a, 1, -1).flags.c_contiguous)


@pytest.mark.parametrize("name, case, direction, layout", GRID)
def test_matches_the_oracle_at_every_rank(name: str, case: str, direction: str, layout: str):
    p = _problem(case, direction, layout)
    algorithm = registry.get(p.op, name)
    assert algorithm.why_not(p, "numpy") is None
    inputs = oracle.make_inputs(p)
    y = algorithm.run(p, *inputs.arrays)
    assert y.shape == (p.output_shape if direction == "fwd" else p.input_shape)
    assert y.dtype == np.dtype(p.dtype)
    if layout == "nhwc":
        assert _channels_last(y), "a channels-last input gives a channels-last result"
    check = oracle.check(p, y, oracle.reference(p, inputs), algorithm.tolerance_factor, False,
                         algorithm.tolerance_floor_eps, algorithm.error_spreads)
    assert check.ok, check


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("case", [c for c in CASES if CASES[c]["kind"] == "max"])
def test_max_pooling_is_bit_exact_at_every_rank(name: str, case: str) -> None:
    """Integer-filled inputs, full of ties: bit for bit torch's, its tie rule at every rank."""
    for direction in ("fwd", "bwd_data"):
        p = _problem(case, direction)
        inputs = oracle.make_inputs(p, seed=2, exact=True)
        y = registry.get(p.op, name).run(p, *inputs.arrays)
        assert oracle.check(p, y, oracle.reference(p, inputs), exact=True).ok, direction


@pytest.mark.parametrize("name", ALGORITHMS)
def test_ranks_2_and_3_are_native_and_rank_1_is_lowered(name: str) -> None:
    for op in ("max_pool2d", "avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward"):
        algorithm = registry.get(op, name)
        assert algorithm.ranks == (2, 3) and algorithm.per_side
        assert algorithm.layouts == ("nchw", "nhwc")
    for case in CASES:
        p = _problem(case, "fwd")
        lowered = registry.get(p.op, name).lowered(p)
        assert not isinstance(lowered, str)
        assert lowered.identity == (p.rank > 1)
        assert lowered.problem.rank == max(p.rank, 2)


def test_the_models_price_every_rank() -> None:
    """The windowed workspace and the naive time bound are defined and grow with the problem."""
    for case in CASES:
        for direction in ("fwd", "bwd_data"):
            p = _problem(case, direction)
            assert registry.get(p.op, "windowed").workspace(p) >= 0
            assert registry.get(p.op, "naive").bound_s(p) > 0
    small, large = (_problem("3d-max-per-side-dilated-ceil", "bwd_data"),
                    PoolProblem("max", 4, 3, size=(10, 12, 14), kernel=(2, 3, 2), stride=(2, 2, 3),
                                padding=1, dilation=(1, 2, 2), direction="bwd_data"))
    for name, model in (("windowed", "workspace"), ("naive", "bound_s")):
        priced = getattr(registry.get(small.op, name), model)
        assert priced(large) > priced(small)


# --- torch's NaN rule ----------------------------------------------------------------------------
NAN_CASES = {  # overlapping windows, padding: many windows hold several NaNs
    1: dict(size=(11,), kernel=(3,), stride=1, padding=1),
    2: dict(size=(6, 7), kernel=(3, 2), stride=1, padding=(1, 1)),
    3: dict(size=(4, 5, 5), kernel=(2, 3, 3), stride=(1, 1, 2), padding=(1, 1, 1)),
}


def _nan_input(p: PoolProblem, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(p.input_shape)
    x[rng.random(x.shape) < 0.25] = np.nan
    return x


def _torch_max_pool(p: PoolProblem, x: np.ndarray, grad_out: np.ndarray) -> tuple[Any, Any]:
    """torch's float64 values and gradient (autograd) of max pooling on x."""
    torch = pytest.importorskip("torch")
    x64 = torch.tensor(x, requires_grad=True)
    pool = getattr(torch.nn.functional, f"max_pool{p.rank}d")
    y = pool(x64, p.kernel, p.stride, p.padding, p.dilation, ceil_mode=p.ceil_mode)
    y.backward(torch.tensor(grad_out))
    return y.detach().numpy(), x64.grad.numpy()


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_nan_window_routes_its_gradient_to_its_last_nan_as_torch(name: str, rank: int,
                                                                   layout: str) -> None:
    fwd = PoolProblem("max", 2, 3, dtype="float64", layout=layout, **NAN_CASES[rank])
    bwd = PoolProblem("max", 2, 3, dtype="float64", layout=layout, direction="bwd_data",
                      **NAN_CASES[rank])
    x = _nan_input(fwd, seed=rank)
    grad_out = np.random.default_rng(10 + rank).standard_normal(fwd.output_shape)
    if layout == "nhwc":
        x, grad_out = (np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)
                       for a in (x, grad_out))
    y, grad_x = _torch_max_pool(fwd, x, grad_out)
    assert np.isnan(y).any() and not np.isnan(y).all()
    np.testing.assert_array_equal(registry.get(fwd.op, name).run(fwd, x), y)  # NaN == NaN
    ours = registry.get(bwd.op, name).run(bwd, grad_out, x)
    np.testing.assert_allclose(ours, grad_x, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_two_nans_in_one_window_send_the_gradient_to_the_second(name: str) -> None:
    """One 1x4 window [1, NaN, 5, NaN]: the last NaN, not the first nor the maximum."""
    p = PoolProblem("max", 1, 1, 1, 4, 1, 4, direction="bwd_data", dtype="float64")
    x = np.array([1.0, np.nan, 5.0, np.nan]).reshape(1, 1, 1, 4)
    grad_x = registry.get(p.op, name).run(p, np.ones((1, 1, 1, 1)), x)
    np.testing.assert_array_equal(grad_x.ravel(), [0.0, 0.0, 0.0, 1.0])


# --- a max window wholly in the padding ----------------------------------------------------------
ALL_PADDING = {  # size 2 (or 1), dilation past it, padding 1: every tap of a window is padding
    1: dict(size=(2,), kernel=(2,), dilation=(3,), padding=1),
    2: dict(size=(2, 5), kernel=(2, 3), dilation=(3, 1), padding=1, stride=(2, 1)),
    3: dict(size=(4, 1, 3), kernel=(2, 2, 2), dilation=(1, 2, 1), padding=1, stride=1),
}


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_a_window_wholly_in_the_padding_is_minus_inf_with_no_gradient(rank: int) -> None:
    fwd = PoolProblem("max", 2, 3, dtype="float64", **ALL_PADDING[rank])
    bwd = PoolProblem("max", 2, 3, dtype="float64", direction="bwd_data", **ALL_PADDING[rank])
    x = np.random.default_rng(rank).standard_normal(fwd.input_shape)
    grad_out = np.random.default_rng(rank + 1).standard_normal(fwd.output_shape)
    results = {name: (registry.get(fwd.op, name).run(fwd, x),
                      registry.get(bwd.op, name).run(bwd, grad_out, x)) for name in ALGORITHMS}
    (y, grad_x), (other_y, other_grad_x) = results.values()
    assert np.isneginf(y).all()
    assert not grad_x.any()
    np.testing.assert_array_equal(other_y, y)
    np.testing.assert_array_equal(other_grad_x, grad_x)
    torch = pytest.importorskip("torch")
    with torch.no_grad():  # (torch's backward here writes outside the input: it aborts)
        torch_y = getattr(torch.nn.functional, f"max_pool{fwd.rank}d")(
            torch.tensor(x), fwd.kernel, fwd.stride, fwd.padding, fwd.dilation)
    np.testing.assert_array_equal(y, torch_y.numpy())


@pytest.mark.parametrize("rank, layout", [(2, "nchw"), (2, "nhwc"), (3, "nchw")])
def test_inputs_of_minus_inf_beside_the_padding_send_the_gradient_inside(rank: int,
                                                                         layout: str) -> None:
    """Where a window's inputs are all -inf they tie with its padding: torch's gradient goes to
    the window's first tap inside the input (never into the padding, cropped away)."""
    torch = pytest.importorskip("torch")
    size = (5, 4) if rank == 2 else (3, 4, 3)
    fields = dict(size=size, kernel=(3,) * rank, stride=(2,) + (1,) * (rank - 1), padding=1,
                  dtype="float64", layout=layout)
    bwd = PoolProblem("max", 2, 3, direction="bwd_data", **fields)
    rng = np.random.default_rng(rank)
    x = rng.standard_normal(bwd.input_shape)
    x[rng.random(x.shape) < 0.6] = -np.inf
    x[..., :2, :] = -np.inf  # whole windows of -inf inputs beside the padding
    grad_out = rng.standard_normal(PoolProblem("max", 2, 3, **fields).output_shape)
    inputs = torch.tensor(x, requires_grad=True)
    out = getattr(torch.nn.functional, f"max_pool{rank}d")(inputs, 3, bwd.stride, 1)
    out.backward(torch.tensor(grad_out))
    expected = inputs.grad.numpy()
    assert expected[..., :2, :].any()  # torch does send some there
    if layout == "nhwc":
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
        grad_out = np.moveaxis(np.ascontiguousarray(np.moveaxis(grad_out, 1, -1)), -1, 1)
    for name in ALGORITHMS:
        got = registry.get(bwd.op, name).run(bwd, grad_out, x)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=name)


# --- other array libraries, and the workspace model ----------------------------------------------
BACKEND_CASES = [
    pytest.param(name, case, direction, layout, id=f"{name}-{case}-{direction}-{layout}")
    for name in ALGORITHMS
    for case in ("3d-max-per-side-dilated-ceil", "3d-avg-per-side-exclude-pad-ceil",
                 "3d-max-global")
    for direction in ("fwd", "bwd_data") for layout in ("nchw", "nhwc")]


@pytest.mark.parametrize("name, case, direction, layout", BACKEND_CASES)
def test_rank_3_on_torch_tensors_and_array_api_strict(name: str, case: str, direction: str,
                                                       layout: str) -> None:
    """torch tensors (channels last stays so); array_api_strict, the standard only."""
    torch = pytest.importorskip("torch")
    xs = pytest.importorskip("array_api_strict")
    p = _problem(case, direction, layout)
    inputs = oracle.make_inputs(p)
    reference = oracle.reference(p, inputs)
    algorithm = registry.get(p.op, name)
    tensors = [torch.from_numpy(a) for a in inputs.arrays]  # the same strides
    y = algorithm.fn(p, *tensors)
    if layout == "nhwc":
        assert y.is_contiguous(memory_format=torch.channels_last_3d)
    assert oracle.check_algorithm(p, y.numpy(), reference, algorithm).ok
    y = algorithm.fn(p, *(xs.asarray(a) for a in inputs.arrays))
    assert oracle.check_algorithm(p, np.asarray(y), reference, algorithm).ok


MEMORY = {  # large enough that numpy's fixed buffers (up to ~70 KB here) stay small beside
    "3d-3x3x3-s2-p1": dict(n=2, c=16, size=(16, 28, 28), kernel=(3, 3, 3), stride=2, padding=1),
    "3d-ceil-mode-extends": dict(n=2, c=16, size=(16, 28, 28), kernel=(3, 3, 3), stride=2,
                                 ceil_mode=True),
    "3d-2x2x2": dict(n=4, c=32, size=(16, 28, 28), kernel=(2, 2, 2)),
    "3d-global": dict(n=32, c=512, size=(4, 7, 7), kernel=(4, 7, 7)),
    "2d-3x3-s2-p1-nhwc": dict(n=4, c=32, size=(56, 56), kernel=(3, 3), stride=2, padding=1,
                              layout="nhwc"),
    "3d-3x3x3-per-side-nhwc": dict(n=2, c=16, size=(16, 28, 28), kernel=(3, 3, 3), stride=2,
                                   padding=((1, 0), (0, 1), (1, 1)), layout="nhwc"),
}
SLACK_BYTES = 16 * 1024  # Python's and numpy's small objects, beside a model of ~0


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("direction", ["fwd", "bwd_data"])
@pytest.mark.parametrize("problem_id", MEMORY)
def test_windowed_workspace_matches_its_model_at_rank_3_and_channels_last(
        kind: str, direction: str, problem_id: str) -> None:
    p = PoolProblem(kind, direction=direction, **MEMORY[problem_id])
    algorithm = registry.get(p.op, "windowed")
    arrays = oracle.make_inputs(p).arrays
    algorithm.fn(p, *arrays)  # warm-up: numpy's caches outside the reading
    reading = peak_extra_bytes(lambda: algorithm.fn(p, *arrays))
    model = algorithm.workspace_bytes(p)
    assert reading.peak_extra_bytes is not None, reading.note
    measured = reading.peak_extra_bytes
    assert 0.75 * model <= measured <= 1.25 * model + SLACK_BYTES, (measured, model)


@pytest.mark.parametrize("direction", ["fwd", "bwd_data"])
def test_torch_avg_pool3d_declares_its_input_at_least_the_window(direction: str) -> None:
    """torch's avg_pool3d raises on an axis shorter than the window even where the padding
    covers it (found by `convbench fuzz`): its declaration says so, and naive still runs it."""
    op = "avg_pool2d" if direction == "fwd" else "avg_pool2d_backward"
    short = PoolProblem("avg", 1, 1, size=(1, 2, 2), kernel=(2, 1, 1), stride=1, padding=(1, 0, 0),
                        direction=direction)
    reason = registry.get(op, "torch").why_not(short)
    assert reason is not None and "at least the window" in reason
    assert registry.get(op, "naive").why_not(short) is None
    covered = PoolProblem("avg", 1, 1, size=(2, 3, 3), kernel=(2, 3, 1), direction=direction)
    assert registry.get(op, "torch").why_not(covered) is None
    inputs = oracle.make_inputs(covered, 0)
    y = registry.get(op, "torch").run(covered, *inputs.arrays)
    assert oracle.check(covered, y, oracle.reference(covered, inputs)).ok


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_torch_max_pool_backward_declares_windows_in_the_padding(rank: int) -> None:
    """torch's max pooling backward sends a window's gradient outside the input when the window
    lies wholly in the padding (found by `convbench fuzz`): its declaration refuses those."""
    torch_backward = registry.get("max_pool2d_backward", "torch")
    bwd = PoolProblem("max", 1, 1, direction="bwd_data", **ALL_PADDING[rank])
    reason = torch_backward.why_not(bwd)
    assert reason is not None and "wholly in the padding" in reason
    inside = PoolProblem("max", 1, 1, size=(5,) * rank, kernel=(2,) * rank, stride=1, padding=1,
                         dilation=2, direction="bwd_data")
    assert torch_backward.why_not(inside) is None
