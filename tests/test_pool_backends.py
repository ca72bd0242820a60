"""Pooling on every array-API backend: each registered pooling algorithm that declares a backend,
forward and backward, max and average, on array_api_strict arrays (the standard only: a call that
would not port fails there) and on torch tensors (CPU; CUDA marked gpu), against the float64
oracle; the tie rule on tensors; the workspace models against numpy's measured peaks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from convbench import oracle
from convbench.algorithms import registry
from convbench.backends import ARRAY_API_BACKENDS, backend_why_not, to_backend
from convbench.measure.memory import peak_extra_bytes
from convbench.problems import PoolProblem

OPS = ("max_pool2d", "avg_pool2d", "max_pool2d_backward", "avg_pool2d_backward")

SHAPES = {  # PoolProblem fields beyond kind, n, c, direction
    "2x2": {"h": 6, "w": 7, "r": 2, "s": 2},
    "3x3_s2_p1": {"h": 9, "w": 8, "r": 3, "s": 3, "stride": 2, "padding": 1},
    "stride_over_window": {"h": 10, "w": 9, "r": 2, "s": 3, "stride": (3, 4)},
    "ceil_mode_padded": {"h": 7, "w": 8, "r": 3, "s": 2, "stride": (2, 3), "padding": 1,
                         "ceil_mode": True},
    "overlapping_s1": {"h": 5, "w": 6, "r": 3, "s": 2, "stride": 1, "padding": (1, 0)},
    "global": {"h": 5, "w": 4, "r": 5, "s": 4},  # fewer outputs than taps: no layout copies
}
MAX_ONLY = {
    "dilated_ceil": {"h": 10, "w": 9, "r": 3, "s": 2, "stride": 2, "padding": 1,
                     "dilation": (2, 1), "ceil_mode": True},
}
AVG_ONLY = {
    "exclude_pad": {"h": 8, "w": 7, "r": 3, "s": 3, "stride": 2, "padding": 1,
                    "count_include_pad": False},
    "exclude_pad_ceil": {"h": 7, "w": 7, "r": 2, "s": 2, "stride": 2, "padding": 1,
                         "ceil_mode": True, "count_include_pad": False},
}


def _grid() -> dict[str, PoolProblem]:
    grid = {}
    for kind, extra in (("max", MAX_ONLY), ("avg", AVG_ONLY)):
        for name, fields in {**SHAPES, **extra}.items():
            for direction in ("fwd", "bwd_data"):
                grid[f"{kind}-{name}-{direction}"] = PoolProblem(kind, 2, 3, direction=direction,
                                                                 **fields)
    return grid


GRID = _grid()


def _cases(backend: str) -> list[tuple[str, str, PoolProblem]]:
    """(algorithm, problem id, problem) for every pooling algorithm declaring `backend`; for
    array_api_strict, those written against the array API (declaring every such backend)."""
    def declares(algorithm: registry.Algorithm) -> bool:
        if backend == "array_api_strict":
            return algorithm.backends == ARRAY_API_BACKENDS
        return backend in algorithm.backends

    return [(a.name, problem_id, p) for problem_id, p in GRID.items()
            for a in registry.all_algorithms(p.op) if declares(a)]


def _ids(cases: list[tuple[str, str, PoolProblem]]) -> list[str]:
    return [f"{name}-{problem_id}" for name, problem_id, _ in cases]


def _check(name: str, p: PoolProblem, convert: Any, to_host: Any, backend: str) -> None:
    """Run `name` on the converted oracle inputs; the host copy of its result passes the oracle."""
    algorithm = registry.get(p.op, name)
    reason = algorithm.why_not(p, backend if backend in ARRAY_API_BACKENDS else "numpy")
    if reason:
        pytest.skip(reason)
    inputs = oracle.make_inputs(p)
    y = algorithm.fn(p, *(convert(a) for a in inputs.arrays))
    host = to_host(y)
    assert host.shape == (p.output_shape if p.direction == "fwd" else p.input_shape)
    assert host.dtype == np.dtype(p.dtype)
    check = oracle.check_algorithm(p, host, oracle.reference(p, inputs), algorithm)
    assert check.ok, check


def test_the_pooling_algorithms_declare_every_array_api_backend() -> None:
    for op in OPS:
        generic = {a.name for a in registry.all_algorithms(op) if a.backends == ARRAY_API_BACKENDS}
        assert {"naive", "windowed"} <= generic
        assert registry.get(op, "torch").backends == ("numpy", "torch", "torch-cuda")


STRICT = _cases("array_api_strict")


@pytest.mark.parametrize("name, problem_id, problem", STRICT, ids=_ids(STRICT))
def test_runs_on_array_api_strict(name: str, problem_id: str, problem: PoolProblem) -> None:
    """array_api_strict has only the standard: any call that would not port fails here."""
    xs = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")

    def to_host(y: Any) -> np.ndarray:
        assert type(y).__module__.startswith("array_api_strict")
        return np.asarray(y)

    _check(name, problem, xs.asarray, to_host, "array_api_strict")


TORCH = _cases("torch")


@pytest.mark.parametrize("name, problem_id, problem", TORCH, ids=_ids(TORCH))
def test_runs_on_torch_tensors(name: str, problem_id: str, problem: PoolProblem) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed")

    def to_host(y: Any) -> np.ndarray:
        assert isinstance(y, torch.Tensor) and y.device.type == "cpu"
        return y.numpy()

    _check(name, problem, lambda a: to_backend(a, "torch"), to_host, "torch")


CUDA = _cases("torch-cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("name, problem_id, problem", CUDA, ids=_ids(CUDA))
def test_runs_on_cuda_tensors(name: str, problem_id: str, problem: PoolProblem) -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    reason = backend_why_not("torch-cuda", probe=True)
    if reason:
        pytest.skip(reason)

    def to_host(y: Any) -> np.ndarray:
        assert y.is_cuda
        return y.cpu().numpy()

    _check(name, problem, lambda a: to_backend(a, "torch-cuda"), to_host, "torch-cuda")


@pytest.mark.parametrize("name", registry.algorithms("max_pool2d_backward"))
def test_ties_go_to_the_first_maximum_on_torch_tensors(name: str) -> None:
    """All-equal windows: each gradient goes to its window's first (top-left) pixel."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    p = PoolProblem("max", 1, 1, 5, 5, 2, 2, stride=1, direction="bwd_data")
    if registry.get(p.op, name).why_not(p, "torch"):
        pytest.skip(registry.get(p.op, name).why_not(p, "torch"))
    x, grad_out = torch.ones((1, 1, 5, 5)), torch.ones(p.output_shape)
    grad_x = registry.get(p.op, name).fn(p, grad_out, x)
    expected = torch.zeros((5, 5))
    expected[:4, :4] = 1  # window (i, j) starts at (i, j): its first pixel
    assert torch.equal(grad_x[0, 0], expected)


EXACT = [(n, i, p) for n, i, p in TORCH if registry.get(p.op, n).exact]


@pytest.mark.parametrize("name, problem_id, problem", EXACT, ids=_ids(EXACT))
def test_exact_algorithms_are_bit_exact_on_torch_tensors(name: str, problem_id: str,
                                                         problem: PoolProblem) -> None:
    """Integer-filled inputs (full of ties): bit for bit what the oracle says, torch's tie rule."""
    pytest.importorskip("torch", reason="torch is not installed")
    algorithm = registry.get(problem.op, name)
    if algorithm.why_not(problem, "torch"):
        pytest.skip(algorithm.why_not(problem, "torch"))
    inputs = oracle.make_inputs(problem, seed=2, exact=True)
    y = algorithm.fn(problem, *(to_backend(a, "torch") for a in inputs.arrays))
    assert oracle.check(problem, y.numpy(), oracle.reference(problem, inputs), exact=True).ok


MEMORY = {  # large enough that numpy's fixed ufunc buffers (8192 elements) stay small beside
    "3x3_s2_p1": PoolProblem("max", 4, 32, 56, 56, 3, 3, stride=2, padding=1),
    "ceil_mode_extends": PoolProblem("max", 4, 32, 56, 56, 3, 3, stride=2, ceil_mode=True),
    "ceil_mode_fits": PoolProblem("max", 4, 32, 55, 55, 3, 3, stride=2, ceil_mode=True),
    "2x2": PoolProblem("max", 4, 32, 56, 56, 2, 2),
    "3x3_s1_p1": PoolProblem("max", 4, 32, 28, 28, 3, 3, stride=1, padding=1),
    "global_7x7": PoolProblem("max", 4, 64, 7, 7, 7, 7),  # one reduction over the view
}
WORKSPACE = [(kind, direction, problem_id) for kind in ("max", "avg")
             for direction in ("fwd", "bwd_data") for problem_id in MEMORY]
SLACK_BYTES = 8 * 1024  # Python's and numpy's small objects, beside a model of 0 (no copy)


@pytest.mark.parametrize("kind, direction, problem_id", WORKSPACE)
def test_windowed_workspace_matches_its_model_on_numpy(kind: str, direction: str,
                                                       problem_id: str) -> None:
    p = replace(MEMORY[problem_id], kind=kind, direction=direction)
    algorithm = registry.get(p.op, "windowed")
    arrays = oracle.make_inputs(p).arrays
    algorithm.fn(p, *arrays)  # warm-up: numpy's caches outside the reading
    reading = peak_extra_bytes(lambda: algorithm.fn(p, *arrays))
    model = algorithm.workspace_bytes(p)
    assert reading.peak_extra_bytes is not None, reading.note
    measured = reading.peak_extra_bytes
    assert 0.75 * model <= measured <= 1.25 * model + SLACK_BYTES, (measured, model)
