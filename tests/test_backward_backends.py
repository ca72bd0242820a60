"""The backward passes (bwd_data, bwd_weight) and the transposed convolution on every array
library: each registered algorithm that declares a backend runs on that library's arrays, from
array_api_strict (the standard only: a call that would not port fails here) to torch tensors,
CPU or (marked gpu) CUDA, and CuPy; checked against the float64 oracle. Exact algorithms stay
bit-exact on tensors, and the workspace models still match what numpy allocates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from convbench import oracle
from convbench.algorithms import registry
from convbench.algorithms.backward.direct import flipped_problem
from convbench.backends import ARRAY_API_BACKENDS, BACKENDS, backend_why_not, to_backend
from convbench.backends import to_numpy
from convbench.measure.memory import peak_extra_bytes
from convbench.problems import ConvProblem, Problem
from convbench.problems.transpose import ConvTransposeProblem

OPS = ("conv2d_backward", "conv_transpose2d")
FAST = ("fft", "winograd_f2x3", "winograd_f4x3", "winograd_f6x3", "winograd_f2x5")

# Forward shapes of the backward passes: Winograd's stride-1 3x3 and 5x5 (grouped), stride 2
# with padding, dilation and groups with a bias, a 1x1 with a bias, float64.
CONV = [
    ConvProblem(2, 4, 9, 9, 6, 3, 3, padding=1),
    ConvProblem(1, 6, 11, 13, 4, 3, 2, stride=(2, 1), padding=1, dilation=2, groups=2,
                bias=True),
    ConvProblem(2, 4, 10, 10, 4, 5, 5, padding=2, groups=2),
    ConvProblem(2, 8, 7, 7, 4, 1, 1, bias=True),
    ConvProblem(1, 3, 8, 8, 2, 3, 3, stride=2, padding=1, bias=True, dtype="float64"),
]
TRANSPOSED = [
    ConvTransposeProblem(2, 4, 5, 5, 6, 4, 4, stride=2, padding=1),
    ConvTransposeProblem(1, 4, 5, 6, 6, 3, 3, stride=2, padding=1, output_padding=1, groups=2,
                         bias=True),
    ConvTransposeProblem(1, 2, 3, 4, 2, 3, 3, dilation=2, output_padding=1),
]
GRID: list[Problem] = [replace(p, direction=d) for p in CONV
                       for d in ("bwd_data", "bwd_weight")] + TRANSPOSED


def _cases(declares: Callable[[registry.Algorithm], bool]) -> list[tuple[str, Problem]]:
    return [(a.name, p) for p in GRID for a in registry.all_algorithms(p.op) if declares(a)]


# Only the pairs whose problem the algorithm's declaration covers on the backend: a skip then
# means "this backend cannot run here", never "this can never run".
GENERIC = [(n, p) for n, p in _cases(lambda a: a.backends == ARRAY_API_BACKENDS)
           if registry.get(p.op, n).covers(p, "numpy")]
ON_TORCH = [(n, p) for n, p in _cases(lambda a: "torch" in a.backends)
            if registry.get(p.op, n).covers(p, "torch")]
ON_CUDA = [(n, p) for n, p in _cases(lambda a: "torch-cuda" in a.backends)
           if registry.get(p.op, n).covers(p, "torch-cuda")]


def _ids(cases: list[tuple[str, Problem]]) -> list[str]:
    return [f"{p.op}-{name}-{p}" for name, p in cases]


def _runs(name: str, p: Problem, backend: str) -> registry.Algorithm:
    algorithm = registry.get(p.op, name)
    reason = algorithm.why_not(p, backend) or backend_why_not(backend, probe=True)
    if reason:
        pytest.skip(reason)
    return algorithm


def _outputs(y: Any) -> tuple[Any, ...]:
    return y if isinstance(y, tuple) else (y,)


def _check(p: Problem, algorithm: registry.Algorithm, arrays: Callable[[np.ndarray], Any],
           library: str, to_host: Callable[[Any], np.ndarray] = to_numpy) -> None:
    """Run on the library's arrays; the outputs are its arrays, of the oracle's shapes."""
    inputs = oracle.make_inputs(p, seed=5)
    reference = oracle.reference(p, inputs)
    y = algorithm.fn(p, *(None if a is None else arrays(a) for a in inputs.arrays))
    assert len(_outputs(y)) == len(reference.outputs)  # (grad_w, grad_bias) with a bias
    host = tuple(to_host(out) for out in _outputs(y))
    for out, ref in zip(_outputs(y), reference.outputs, strict=True):
        assert type(out).__module__.startswith(library), type(out)
        assert tuple(out.shape) == ref.shape
    assert all(out.dtype == np.dtype(p.dtype) for out in host)
    check = oracle.check_algorithm(p, host if isinstance(y, tuple) else host[0], reference,
                                   algorithm)
    assert check.ok, check


def test_every_algorithm_but_the_reference_is_written_against_the_array_api() -> None:
    for op in OPS:
        for algorithm in registry.all_algorithms(op):
            if not algorithm.fn.__module__.startswith("convbench."):
                continue  # a plugin's, which declares what it likes
            expected = ("numpy", "torch", "torch-cuda") if algorithm.name == "torch" \
                else ARRAY_API_BACKENDS
            assert algorithm.backends == expected, (op, algorithm.name, algorithm.backends)
    assert {name for name, _ in GENERIC} >= {"direct_naive", "direct", "im2col", *FAST}


def test_the_pairs_left_out_are_refused_with_a_reason() -> None:
    for name, p in _cases(lambda a: True):
        algorithm = registry.get(p.op, name)
        for backend in algorithm.backends:
            if not algorithm.covers(p, backend):
                reason = algorithm.why_not(p, backend)
                assert isinstance(reason, str) and len(reason) > 10, (name, p, backend)


@pytest.mark.parametrize("name, problem", GENERIC, ids=_ids(GENERIC))
def test_generic_code_runs_on_array_api_strict(name: str, problem: Problem) -> None:
    xs = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    _check(problem, _runs(name, problem, "numpy"), xs.asarray, "array_api_strict", np.asarray)


TORCH_PARAMS = [pytest.param(name, p, "torch", id=f"torch-{i}")
                for (name, p), i in zip(ON_TORCH, _ids(ON_TORCH))]
TORCH_PARAMS += [pytest.param(name, p, "torch-cuda", id=f"torch-cuda-{i}", marks=pytest.mark.gpu)
                 for (name, p), i in zip(ON_CUDA, _ids(ON_CUDA))]


@pytest.mark.parametrize("name, problem, backend", TORCH_PARAMS)
def test_runs_on_torch_tensors(name: str, problem: Problem, backend: str) -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    algorithm = _runs(name, problem, backend)
    _check(problem, algorithm, lambda a: to_backend(a, backend), "torch")


@pytest.mark.gpu
@pytest.mark.parametrize("name, problem", GENERIC, ids=_ids(GENERIC))
def test_runs_on_cupy_arrays(name: str, problem: Problem) -> None:
    algorithm = _runs(name, problem, "cupy")
    _check(problem, algorithm, lambda a: to_backend(a, "cupy"), "cupy")


EXACT = [(n, p) for n, p in ON_TORCH if registry.get(p.op, n).exact]


@pytest.mark.parametrize("name, problem", EXACT, ids=_ids(EXACT))
def test_exact_algorithms_are_bit_exact_on_torch_tensors(name: str, problem: Problem) -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    algorithm = _runs(name, problem, "torch")
    assert oracle.exact_mode_fits(problem)
    inputs = oracle.make_inputs(problem, seed=6, exact=True)
    y = algorithm.fn(problem, *(to_backend(a, "torch") for a in inputs.arrays))
    host = tuple(to_numpy(out) for out in _outputs(y))
    assert oracle.check(problem, host if isinstance(y, tuple) else host[0],
                        oracle.reference(problem, inputs), exact=True).ok


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", FAST)
def test_fast_bwd_data_answers_for_the_backend_asked(name: str, backend: str) -> None:
    """FFT and Winograd run bwd_data as their forward on the flipped conv: where that forward
    runs, on the backend asked, so do they, and they say why not in the forward's words. FFT
    runs bwd_weight too (a correlation by FFT); Winograd refuses it."""
    p = ConvProblem(2, 4, 9, 9, 6, 3, 3, padding=1, direction="bwd_data")
    backward, forward = registry.get(p.op, name), registry.get("conv2d", name)
    assert backward.why_not(p, backend) == forward.why_not(flipped_problem(p), backend)
    assert backward.why_not(replace(p, direction="bwd_weight"), "numpy") == (
        None if name == "fft" else "bwd_data only (bwd_weight is no convolution)")


MID = ConvProblem(2, 16, 20, 20, 16, 3, 3, padding=1)
MEASURED = [(name, replace(MID, direction=d)) for name in ("direct", "im2col")
            for d in ("bwd_data", "bwd_weight")]
MEASURED += [(name, replace(MID, direction="bwd_data")) for name in ("fft", "winograd_f4x3")]
MEASURED += [("fft", replace(MID, direction="bwd_weight"))]
MEASURED += [(name, ConvTransposeProblem(2, 16, 10, 10, 16, 4, 4, stride=2, padding=1))
             for name in ("direct", "im2col")]


@pytest.mark.parametrize("name, problem", MEASURED, ids=_ids(MEASURED))
def test_workspace_model_matches_numpy_measurement(name: str, problem: Problem) -> None:
    """The ported code allocates on numpy what the models say (tracemalloc's peak)."""
    algorithm = registry.get(problem.op, name)
    arrays = oracle.make_inputs(problem).arrays
    algorithm.fn(problem, *arrays)  # warm-up: caches outside the measurement
    reading = peak_extra_bytes(lambda: algorithm.fn(problem, *arrays))
    assert reading.peak_extra_bytes is not None, reading.note
    model = algorithm.workspace_bytes(problem)
    assert 0.8 * model <= reading.peak_extra_bytes <= 1.2 * model, (reading, model)
