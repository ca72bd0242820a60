"""Every op beyond the forward conv2d x every registered algorithm x a grid of problems x every
backend, against the op's float64 oracle (torch autograd / conv_transpose2d / pooling in
float64); exact algorithms also bit for bit in exactness mode (which, with integer inputs, is full
of ties: max pooling's tie rule is checked there too)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from convbench import oracle

from convbench.algorithms import registry
from convbench.backends import BACKENDS, GPU_BACKENDS, backend_why_not, library_of, to_backend
from convbench.backends import to_numpy
from convbench.problems import ConvProblem, PoolProblem, Problem
from convbench.problems.transpose import ConvTransposeProblem

# Forward shapes for the backward passes: odd sizes, non-square kernels, strides and dilations,
# groups, depthwise, 1x1, padding beyond the kernel, a kernel filling the padded input.
CONV = {
    "3x3_pad1": ConvProblem(2, 3, 9, 9, 4, 3, 3, padding=1),
    "odd_nonsquare_input": ConvProblem(1, 5, 7, 11, 3, 3, 3),
    "nonsquare_kernel": ConvProblem(2, 4, 10, 9, 6, 2, 5, padding=(0, 2)),
    "stride2_pad1": ConvProblem(2, 4, 11, 11, 8, 3, 3, stride=2, padding=1),
    "nonsquare_stride": ConvProblem(1, 3, 13, 10, 5, 3, 2, stride=(3, 1), padding=(1, 0)),
    "stride_over_kernel": ConvProblem(1, 2, 10, 9, 3, 2, 2, stride=3, padding=1),
    "nonsquare_dilation": ConvProblem(2, 2, 15, 9, 3, 3, 2, dilation=(3, 2), padding=(1, 1)),
    "groups2_bias": ConvProblem(2, 6, 8, 8, 4, 3, 3, padding=1, groups=2, bias=True),
    "depthwise_s2": ConvProblem(1, 8, 9, 9, 8, 3, 3, stride=2, padding=1, groups=8),
    "pointwise_bias": ConvProblem(3, 16, 6, 5, 8, 1, 1, bias=True),
    "pointwise_s2_groups": ConvProblem(2, 8, 7, 7, 4, 1, 1, stride=2, groups=2),
    "padding_beyond_kernel": ConvProblem(1, 2, 5, 6, 3, 1, 2, padding=2),
    "kernel_fills_padded_input": ConvProblem(1, 3, 4, 4, 2, 6, 6, padding=1),
    "everything_float64": ConvProblem(2, 6, 13, 11, 4, 3, 2, stride=(2, 1), padding=(2, 1),
                                      dilation=(2, 3), groups=2, bias=True, dtype="float64"),
    # stride-1 kernels of 4 and 7 taps: bwd_data of the Winograd F(3,4) and F(2,7) runs somewhere
    "4x3_kernel": ConvProblem(1, 4, 9, 10, 3, 4, 3, padding=(2, 1)),
    "1x7_kernel": ConvProblem(1, 3, 7, 12, 4, 1, 7, padding=(0, 3)),
}

TRANSPOSED = {
    "k4_s2_p1": ConvTransposeProblem(2, 4, 5, 5, 6, 4, 4, stride=2, padding=1),
    "k3_s2_p1_op1_bias": ConvTransposeProblem(2, 4, 5, 6, 6, 3, 3, stride=2, padding=1,
                                              output_padding=1, bias=True),
    "groups_nonsquare": ConvTransposeProblem(1, 4, 4, 5, 6, 3, 2, stride=(3, 2), padding=(2, 0),
                                             output_padding=(1, 1), groups=2),
    "dilated_op_below_dilation": ConvTransposeProblem(1, 2, 3, 4, 2, 3, 3, dilation=2,
                                                      output_padding=1),
    "stride1_pointwise": ConvTransposeProblem(2, 4, 3, 3, 4, 1, 1),
    "depthwise_float64": ConvTransposeProblem(1, 3, 4, 4, 3, 3, 3, stride=2, groups=3,
                                              bias=True, dtype="float64"),
}

POOL = {  # PoolProblem fields beyond kind, n, c
    "3x3_s2_p1": {"r": 3, "s": 3, "stride": 2, "padding": 1, "h": 9, "w": 9},
    "odd_nonsquare_window": {"r": 2, "s": 3, "stride": (2, 1), "h": 8, "w": 7},
    "ceil_mode": {"r": 2, "s": 2, "h": 5, "w": 5, "ceil_mode": True},
    "ceil_mode_padded_nonsquare": {"r": 3, "s": 2, "stride": (2, 3), "padding": 1, "h": 7,
                                   "w": 8, "ceil_mode": True},
    "overlapping_s1": {"r": 3, "s": 3, "stride": 1, "padding": 1, "h": 6, "w": 5},
    "window_is_input": {"r": 7, "s": 7, "h": 7, "w": 7},
    "float64": {"r": 3, "s": 3, "stride": 2, "h": 9, "w": 8, "dtype": "float64"},
}
MAX_ONLY = {
    "dilated": {"r": 3, "s": 2, "stride": 2, "padding": 1, "dilation": (2, 1), "h": 10, "w": 9,
                "ceil_mode": True},
}
AVG_ONLY = {
    "exclude_pad": {"r": 3, "s": 3, "stride": 2, "padding": 1, "h": 8, "w": 8,
                    "count_include_pad": False},
    "exclude_pad_ceil": {"r": 2, "s": 2, "stride": 2, "padding": 1, "h": 7, "w": 7,
                         "ceil_mode": True, "count_include_pad": False},
}


def _pool(kind: str, direction: str, fields: dict) -> PoolProblem:
    return PoolProblem(kind, 2, 3, direction=direction, **fields)


def _grid() -> list[tuple[str, Problem]]:
    grid = [(f"{name}-{d}", replace(p, direction=d)) for name, p in CONV.items()
            for d in ("bwd_data", "bwd_weight")]
    grid += list(TRANSPOSED.items())
    for kind, extra in (("max", MAX_ONLY), ("avg", AVG_ONLY)):
        for name, fields in {**POOL, **extra}.items():
            grid += [(f"{kind}-{name}-{d}", _pool(kind, d, fields)) for d in ("fwd", "bwd_data")]
    return grid


GRID = _grid()
OPS = sorted({p.op for _, p in GRID})
CASES = [(a.name, problem_id, p) for problem_id, p in GRID for a in registry.all_algorithms(p.op)]


def _runs(name: str, p: Problem, backend: str) -> registry.Algorithm:
    algorithm = registry.get(p.op, name)
    reason = algorithm.why_not(p, backend) or backend_why_not(backend, probe=True)
    if reason:
        pytest.skip(reason)
    return algorithm


# Only the (algorithm, problem, backend) triples the algorithm's declaration covers: a skip then
# means "this backend cannot run here" (no GPU, cupy missing), never "this can never run".
DECLARED = [
    pytest.param(name, problem_id, p, backend, id=f"{backend}-{p.op}-{name}-{problem_id}",
                 marks=[pytest.mark.gpu] if backend in GPU_BACKENDS else [])
    for name, problem_id, p in CASES for backend in BACKENDS
    if registry.get(p.op, name).covers(p, backend)]


def test_every_op_of_the_issue_is_registered_and_covered() -> None:
    expected = {"conv_transpose2d", "conv2d_backward", "max_pool2d", "avg_pool2d",
                "max_pool2d_backward", "avg_pool2d_backward"}
    assert expected <= set(registry.ops())
    assert set(OPS) == expected
    for op in expected:
        assert {"torch"} | ({"naive", "windowed"} if "pool" in op else
                            {"direct_naive", "direct", "im2col"}) <= set(
            registry.algorithms(op))


@pytest.mark.parametrize("name, problem_id, problem, backend", DECLARED)
def test_matches_oracle(name: str, problem_id: str, problem: Problem, backend: str) -> None:
    """On the backend's own arrays; the outputs come back on them."""
    algorithm = _runs(name, problem, backend)
    inputs = oracle.make_inputs(problem, seed=1)
    reference = oracle.reference(problem, inputs)
    y = algorithm.fn(problem, *(to_backend(a, backend) for a in inputs.arrays))
    outputs = y if isinstance(y, tuple) else (y,)
    for out in outputs:
        assert type(out).__module__.split(".")[0] == library_of(backend), type(out)
    outputs = tuple(to_numpy(out) for out in outputs)
    for out, ref in zip(outputs, reference.outputs, strict=True):
        assert out.shape == ref.shape
        assert out.dtype == np.dtype(problem.dtype)
    check = oracle.check_algorithm(problem, outputs if isinstance(y, tuple) else outputs[0],
                                   reference, algorithm)
    assert check.ok, check


@pytest.mark.parametrize("name", sorted({name for name, _, _ in CASES}))
def test_refusals_carry_the_registrys_reason(name: str) -> None:
    """The triples test_matches_oracle leaves out: each refused with the registry's sentence."""
    for _, problem_id, p in [c for c in CASES if c[0] == name]:
        algorithm = registry.get(p.op, name)
        for backend in BACKENDS:
            if not algorithm.covers(p, backend):
                reason = algorithm.why_not(p, backend)
                assert isinstance(reason, str) and len(reason) > 10, (problem_id, backend)


def test_every_algorithm_is_checked_on_a_backend_it_declares() -> None:
    checked = {(values[2].op, values[0]) for values in (d.values for d in DECLARED)}
    assert checked == {(p.op, name) for name, _, p in CASES}


EXACT = [(n, i, p) for n, i, p in CASES if registry.get(p.op, n).exact and
         registry.get(p.op, n).covers(p, "numpy")]


@pytest.mark.parametrize("name, problem_id, problem", EXACT,
                         ids=[f"{p.op}-{n}-{i}" for n, i, p in EXACT])
def test_exactness_mode_is_bit_exact(name: str, problem_id: str, problem: Problem) -> None:
    _runs(name, problem, "numpy")
    assert oracle.exact_mode_fits(problem)
    inputs = oracle.make_inputs(problem, seed=2, exact=True)
    reference = oracle.reference(problem, inputs)
    y = registry.get(problem.op, name).fn(problem, *inputs.arrays)
    outputs = y if isinstance(y, tuple) else (y,)
    for out, ref in zip(outputs, reference.outputs, strict=True):
        assert np.array_equal(out.astype(np.float64), ref)
    assert oracle.check(problem, y, reference, exact=True).ok


@pytest.mark.parametrize("name", registry.algorithms("max_pool2d_backward"))
def test_max_pool_ties_go_to_the_first_maximum_in_scan_order(name: str) -> None:
    """All-equal windows: torch sends each gradient to the window's first (top-left) pixel."""
    p = PoolProblem("max", 1, 1, 5, 5, 2, 2, stride=1, direction="bwd_data")
    x = np.ones((1, 1, 5, 5), dtype=np.float32)
    grad_out = np.ones(p.output_shape, dtype=np.float32)
    grad_x = registry.get(p.op, name).fn(p, grad_out, x)
    expected = np.zeros((5, 5), dtype=np.float32)
    expected[:4, :4] = 1  # window (i, j) starts at (i, j): its first pixel
    assert np.array_equal(grad_x[0, 0], expected)


def test_bwd_weight_with_bias_returns_the_bias_gradient() -> None:
    p = replace(CONV["groups2_bias"], direction="bwd_weight")
    inputs = oracle.make_inputs(p)
    assert inputs.names == ("grad_out", "x")
    assert len(oracle.reference(p, inputs).outputs) == 2
    for name in registry.algorithms(p.op):
        if registry.get(p.op, name).why_not(p, "numpy"):
            continue  # bwd_data-only algorithms (FFT, Winograd) say so
        grad_w, grad_bias = registry.get(p.op, name).fn(p, *inputs.arrays)
        assert grad_w.shape == p.weight_shape and grad_bias.shape == (p.k,)


def test_oracle_catches_a_gradient_routed_to_the_wrong_pixel() -> None:
    p = _pool("max", "bwd_data", POOL["3x3_s2_p1"])
    inputs = oracle.make_inputs(p, seed=3)
    reference = oracle.reference(p, inputs)
    grad_x = reference.y.astype(np.float32)
    won = tuple(np.argwhere(grad_x != 0)[0])  # a pixel that is some window's maximum
    lost = tuple(np.argwhere(grad_x == 0)[0])  # and one that is none's
    grad_x[lost], grad_x[won] = grad_x[won], 0.0
    assert not oracle.check(p, grad_x, reference).ok
