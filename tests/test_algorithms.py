"""Every registered conv2d algorithm x a grid of problems x every backend, against the oracle."""

from __future__ import annotations

import numpy as np
import pytest

import convbench
from convbench import oracle
from convbench.algorithms import registry
from convbench.backends import BACKENDS, GPU_BACKENDS, backend_why_not, library_of, to_backend
from convbench.backends import to_numpy
from convbench.problems import ConvProblem

# (id, problem): odd sizes, non-square kernels, inputs and strides, dilation, groups, bias.
GRID = {
    "3x3_pad1": ConvProblem(2, 3, 9, 9, 4, 3, 3, padding=1),
    "odd_nonsquare_input": ConvProblem(1, 5, 7, 11, 3, 3, 3),
    "nonsquare_kernel": ConvProblem(2, 4, 10, 9, 6, 2, 5, padding=(0, 2)),
    "stride2_pad1": ConvProblem(2, 4, 11, 11, 8, 3, 3, stride=2, padding=1),
    "nonsquare_stride": ConvProblem(1, 3, 13, 10, 5, 3, 2, stride=(3, 1), padding=(1, 0)),
    "dilation2": ConvProblem(1, 4, 12, 12, 4, 3, 3, padding=2, dilation=2),
    "nonsquare_dilation": ConvProblem(2, 2, 15, 9, 3, 3, 2, dilation=(3, 2), padding=(1, 1)),
    "groups2_bias": ConvProblem(2, 6, 8, 8, 4, 3, 3, padding=1, groups=2, bias=True),
    "depthwise_s2": ConvProblem(1, 8, 9, 9, 8, 3, 3, stride=2, padding=1, groups=8),
    "depthwise_multiplier": ConvProblem(1, 4, 7, 7, 8, 3, 3, padding=1, groups=4),
    "pointwise": ConvProblem(3, 16, 6, 5, 8, 1, 1),
    "pointwise_bias_groups": ConvProblem(2, 8, 5, 5, 12, 1, 1, groups=4, bias=True),
    "pointwise_s2": ConvProblem(2, 8, 7, 7, 4, 1, 1, stride=2),
    "kernel_equals_padded_input": ConvProblem(1, 3, 4, 4, 2, 6, 6, padding=1),
    "everything": ConvProblem(2, 6, 13, 11, 4, 3, 2, stride=(2, 1), padding=(2, 1),
                              dilation=(2, 3), groups=2, bias=True),
    "float64": ConvProblem(2, 4, 9, 8, 5, 3, 3, stride=2, padding=1, bias=True, dtype="float64"),
    "long_reduction": ConvProblem(1, 256, 6, 6, 4, 3, 3, padding=1),
    # stride-1 kernels of 2, 4 and 7 taps: the Winograd F(3,2), F(3,4) and F(2,7) run somewhere
    "2x2_kernel": ConvProblem(2, 3, 8, 9, 4, 2, 2, padding=1),
    "4x3_kernel": ConvProblem(1, 4, 9, 10, 3, 4, 3, padding=(2, 1), bias=True),
    "1x7_kernel": ConvProblem(1, 3, 7, 12, 4, 1, 7, padding=(0, 3)),
    # channels-last memory: the algorithms that declare it run it without a layout change
    # (Winograd through winograd_nhwc); the others refuse it with the lowering's reason
    "nhwc_3x3_pad1": ConvProblem(2, 3, 9, 9, 4, 3, 3, padding=1, layout="nhwc"),
    "nhwc_odd_input_bias": ConvProblem(1, 5, 7, 11, 3, 3, 3, padding=1, bias=True,
                                       layout="nhwc"),
    "nhwc_groups2": ConvProblem(2, 6, 8, 8, 4, 3, 3, padding=1, groups=2, layout="nhwc"),
    "nhwc_4x3_kernel": ConvProblem(1, 4, 9, 10, 3, 4, 3, padding=(2, 1), layout="nhwc"),
    "nhwc_stride2": ConvProblem(2, 4, 11, 11, 8, 3, 3, stride=2, padding=1, layout="nhwc"),
}

ALGORITHMS = [a.name for a in registry.all_algorithms("conv2d")]


def _skip_unless_runs(name: str, problem: ConvProblem, backend: str) -> registry.Algorithm:
    algorithm = registry.get("conv2d", name)
    reason = algorithm.why_not(problem, backend) or backend_why_not(backend, probe=True)
    if reason:
        pytest.skip(reason)
    return algorithm


def _run(name: str, p: ConvProblem, inputs: oracle.Inputs) -> np.ndarray:
    return convbench.conv2d(inputs.x, inputs.w, inputs.bias, p.stride, p.padding, p.dilation,
                            p.groups, algo=name)


def _run_on(backend: str, algorithm: registry.Algorithm, p: ConvProblem,
            inputs: oracle.Inputs) -> np.ndarray:
    """Through the library API on numpy; on other backends the algorithm on their arrays."""
    if backend == "numpy":
        return _run(algorithm.name, p, inputs)
    if backend == "torch-cuda":  # as a run does: cuDNN's reference in fp32, TF32 off
        from convbench.backends.torch_backend import configure

        configure()
    y = algorithm.fn(p, *(to_backend(a, backend) for a in inputs.arrays))
    assert type(y).__module__.split(".")[0] == library_of(backend)  # stays on its backend
    return to_numpy(y)


# Only the (algorithm, problem, backend) triples the algorithm's declaration covers: a skip then
# means "this backend cannot run here" (no GPU, cupy missing), never "this can never run".
# test_refusals_carry_the_registrys_reason checks the triples left out.
DECLARED = [(name, problem_id, backend) for name in ALGORITHMS for problem_id, p in GRID.items()
            for backend in BACKENDS if registry.get("conv2d", name).covers(p, backend)]
DECLARED_PARAMS = [
    pytest.param(name, GRID[problem_id], backend, id=f"{backend}-{problem_id}-{name}",
                 marks=[pytest.mark.gpu] if backend in GPU_BACKENDS else [])
    for name, problem_id, backend in DECLARED]


@pytest.mark.parametrize("name, problem, backend", DECLARED_PARAMS)
def test_matches_oracle(name: str, problem: ConvProblem, backend: str) -> None:
    algorithm = _skip_unless_runs(name, problem, backend)
    inputs = oracle.make_inputs(problem, seed=1)
    y = _run_on(backend, algorithm, problem, inputs)
    assert y.shape == problem.output_shape
    assert y.dtype == np.dtype(problem.dtype)
    check = oracle.check_algorithm(problem, y, oracle.reference(problem, inputs), algorithm)
    assert check.ok, check


EXACT = [pytest.param(a.name, p, id=f"{problem_id}-{a.name}")
         for a in registry.all_algorithms("conv2d") if a.exact
         for problem_id, p in GRID.items() if a.covers(p, "numpy")]


@pytest.mark.parametrize("name, problem", EXACT)
def test_exactness_mode_is_bit_exact(name: str, problem: ConvProblem) -> None:
    _skip_unless_runs(name, problem, "numpy")
    assert oracle.exact_mode_fits(problem)
    inputs = oracle.make_inputs(problem, seed=2, exact=True)
    y = _run(name, problem, inputs)
    reference = oracle.reference(problem, inputs)
    assert np.array_equal(y.astype(np.float64), reference.y)
    assert oracle.check(problem, y, reference, exact=True).ok


@pytest.mark.parametrize("name", ALGORITHMS)
def test_refusals_carry_the_registrys_reason(name: str) -> None:
    """The triples test_matches_oracle leaves out: the algorithm refuses each with a sentence,
    and the library API raises Unsupported with it (on numpy, where the problem is refused)."""
    algorithm = registry.get("conv2d", name)
    for problem_id, p in GRID.items():
        for backend in BACKENDS:
            if algorithm.covers(p, backend):
                continue
            reason = algorithm.why_not(p, backend)
            assert isinstance(reason, str) and len(reason) > 10, (problem_id, backend, reason)
            layout_only = "memory only, not" in reason  # the library API converts for it
            if backend == "numpy" and "numpy" in algorithm.backends and not layout_only:
                with pytest.raises(convbench.Unsupported) as refused:
                    _run(name, p, oracle.make_inputs(p))
                assert reason in str(refused.value)


def test_every_algorithm_is_checked_on_a_backend_it_declares() -> None:
    assert {name for name, _, _ in DECLARED} == set(ALGORITHMS)


def test_exact_inputs_are_scaled_small_integers() -> None:
    p = ConvProblem(1, 8, 5, 5, 4, 3, 3, bias=True)
    inputs = oracle.make_inputs(p, exact=True)
    for array, scale in ((inputs.x, 2), (inputs.w, 4), (inputs.bias, 8)):
        units = array * scale
        assert np.array_equal(units, np.round(units)) and np.abs(units).max() <= 2


def test_exactness_limit_follows_the_reduction_length() -> None:
    assert oracle.exact_mode_fits(ConvProblem(1, 512, 7, 7, 8, 3, 3))
    # 2**20 channels x 3x3 x 4 units: 37.7M units of 2^-3 > 2^24 representable in float32.
    assert not oracle.exact_mode_fits(ConvProblem(1, 2**20, 3, 3, 1, 3, 3))
    assert oracle.exact_mode_fits(ConvProblem(1, 2**20, 3, 3, 1, 3, 3, dtype="float64"))


def test_oracle_catches_a_single_wrong_tap() -> None:
    """A result off by one kernel tap in one output element must fail the check."""
    p = ConvProblem(1, 256, 6, 6, 4, 3, 3, padding=1)
    inputs = oracle.make_inputs(p, seed=3)
    reference = oracle.reference(p, inputs)
    y = reference.y.astype(np.float32)
    y[0, 1, 2, 3] += inputs.x[0, 5, 2, 3] * inputs.w[1, 5, 1, 1]  # one product counted twice
    assert not oracle.check(p, y, reference).ok


def test_oracle_accepts_float32_rounding_of_the_reference() -> None:
    p = ConvProblem(2, 64, 8, 8, 16, 3, 3, padding=1)
    inputs = oracle.make_inputs(p, seed=4)
    reference = oracle.reference(p, inputs)
    check = oracle.check(p, reference.y.astype(np.float32), reference)
    assert check.ok and check.max_abs_err > 0


def test_oracle_rejects_nan_and_wrong_shape() -> None:
    p = ConvProblem(1, 2, 4, 4, 2, 3, 3)
    inputs = oracle.make_inputs(p)
    reference = oracle.reference(p, inputs)
    y = reference.y.astype(np.float32)
    y[0, 0, 0, 0] = np.nan
    assert not oracle.check(p, y, reference).ok
    with pytest.raises(ValueError, match="output shape"):
        oracle.check(p, y[:, :1], reference)


def test_tolerance_scales_with_length_and_dtype() -> None:
    short = ConvProblem(1, 4, 5, 5, 2, 1, 1)
    long = ConvProblem(1, 400, 5, 5, 2, 1, 1)
    assert oracle.tolerance(long) == pytest.approx(oracle.tolerance(short) * 10)
    assert oracle.tolerance(ConvProblem(1, 4, 5, 5, 2, 1, 1, dtype="float64")) < \
        oracle.tolerance(short) / 1e8


def test_pointwise_im2col_makes_no_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """1x1 stride-1: the one batched GEMM reads the caller's input array itself, not a copy;
    unless the images have fewer than PER_IMAGE_MIN_COLUMNS outputs, all of them at least that
    many, and the layer has WIDE_MIN_WEIGHTS weights: then one wide GEMM of all images' columns
    (a copy) runs instead, which is faster there. A tiny layer keeps the per-image GEMMs."""
    from convbench.algorithms.conv import im2col

    operands = []
    real = np.matmul

    def recording(a, b, *args, **kwargs):
        operands.append(b)
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(np, "matmul", recording)
    assert 25 < im2col.PER_IMAGE_MIN_COLUMNS <= 8 * 25 and 64 * 64 >= im2col.WIDE_MIN_WEIGHTS
    for n, c, size, k, copied in ((2, 8, 12, 4, False), (2, 8, 5, 4, False), (8, 64, 5, 64, True)):
        p = ConvProblem(n, c, size, size, k, 1, 1)
        inputs = oracle.make_inputs(p)
        operands.clear()
        y = im2col.conv2d_im2col(p, inputs.x, inputs.w, None)
        assert len(operands) == 1 and np.shares_memory(operands[0], inputs.x) != copied
        assert operands[0].shape[-1] == (n * size * size if copied else size * size)
        assert oracle.check(p, y, oracle.reference(p, inputs)).ok


@pytest.mark.parametrize("problem", [GRID["3x3_pad1"], GRID["pointwise"], GRID["depthwise_s2"]],
                         ids=["3x3", "1x1", "depthwise"])
def test_auto_picks_a_supporting_algorithm(problem: ConvProblem) -> None:
    from convbench.algorithms.auto import choose

    assert choose(problem).why_not(problem, "numpy") is None


def test_auto_passes_over_an_algorithm_that_refuses() -> None:
    from dataclasses import replace

    from convbench.algorithms.auto import choose

    problem = GRID["3x3_pad1"]
    chosen = choose(problem)
    original = registry.replace(replace(chosen, checks=(lambda p: "refuses everything",)))
    try:
        assert choose(problem).name != chosen.name
        with pytest.raises(convbench.Unsupported, match="refuses everything"):
            _run(chosen.name, problem, oracle.make_inputs(problem))
    finally:
        registry.replace(original)
