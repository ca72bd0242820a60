"""Arrays stay on their device: every algorithm written against the array API, given inputs on
array_api_strict's second device, allocates its buffers there and returns its output there.
A buffer made without `device=` lands on the default device, and array_api_strict refuses to
combine arrays of two devices, as CuPy and torch do with two GPUs."""

from __future__ import annotations

import numpy as np
import pytest

from convbench import oracle
from convbench.algorithms import registry
from convbench.backends import ARRAY_API_BACKENDS, xp
from convbench.problems import ConvProblem

xs = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
OTHER_DEVICE = xs.Device("device1")

GENERIC = [a.name for a in registry.all_algorithms("conv2d") if a.backends == ARRAY_API_BACKENDS]
PROBLEMS = {
    "3x3_pad1_bias": ConvProblem(2, 4, 9, 9, 6, 3, 3, padding=1, bias=True),
    "5x5_groups": ConvProblem(1, 4, 10, 10, 4, 5, 5, padding=2, groups=2),
    "1x1": ConvProblem(2, 8, 5, 5, 4, 1, 1),
    "1x1_s2_per_image": ConvProblem(1, 4, 24, 24, 3, 1, 1, stride=2),
    "2x2_kernel": ConvProblem(1, 3, 9, 10, 2, 2, 2, padding=1),
    "2x4_kernel": ConvProblem(1, 3, 9, 10, 2, 2, 4, padding=(1, 2)),
    "6x6_kernel": ConvProblem(1, 3, 9, 9, 2, 6, 6, padding=3),
    "1x7_kernel": ConvProblem(1, 3, 6, 9, 2, 1, 7, padding=(0, 3)),
    "3x3_s2_groups_bias": ConvProblem(1, 4, 11, 12, 4, 3, 3, stride=2, padding=1, groups=2,
                                      bias=True),  # polyphase Winograd runs strided layers
    "7x7_s2": ConvProblem(1, 3, 16, 15, 2, 7, 7, stride=2, padding=3),
    "strided_dilated": ConvProblem(1, 6, 11, 13, 4, 3, 2, stride=(2, 1), padding=1, dilation=2,
                                   groups=2),
}
CASES = [(name, problem_id) for problem_id, p in PROBLEMS.items() for name in GENERIC
         if registry.get("conv2d", name).covers(p)]


def _on_other_device(a: np.ndarray | None):
    return None if a is None else xs.asarray(a, device=OTHER_DEVICE)


def _check(name: str, p: ConvProblem) -> None:
    algorithm = registry.get("conv2d", name)
    inputs = oracle.make_inputs(p, seed=41)
    y = algorithm.fn(p, *map(_on_other_device, inputs.arrays))
    assert y.device == OTHER_DEVICE
    host = np.asarray(xs.asarray(y, device=xs.Device("CPU_DEVICE")))
    check = oracle.check_algorithm(p, host, oracle.reference(p, inputs), algorithm)
    assert check.ok, check


def test_the_algorithms_declaring_every_backend_are_here() -> None:
    assert {"direct", "im2col", "fft", "winograd_f2x3", "winograd_f6x3"} <= set(GENERIC)
    assert {name for name, _ in CASES} == set(GENERIC)


@pytest.mark.parametrize("name, problem_id", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_buffers_and_output_stay_on_the_inputs_device(name: str, problem_id: str) -> None:
    _check(name, PROBLEMS[problem_id])


@pytest.mark.parametrize("name", [n for n in GENERIC if n.startswith("winograd")])
def test_winograd_chunks_stay_on_the_inputs_device(name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked input transform's buffers too (a budget of about one channel per chunk)."""
    monkeypatch.setattr(xp, "CPU_CHUNK_BYTES", 1)
    m, r = (int(v) for v in name.removeprefix("winograd_f").split("x"))
    _check(name, ConvProblem(1, 3, 8, 9, 2, r, r, padding=r // 2))


def test_prepared_weights_stay_on_the_inputs_device() -> None:
    for name in ("fft", "winograd_f4x3"):
        algorithm = registry.get("conv2d", name)
        p = PROBLEMS["3x3_pad1_bias"]
        inputs = oracle.make_inputs(p, seed=42)
        arrays = list(map(_on_other_device, inputs.arrays))
        prepared = algorithm.prepare(p, *arrays)
        y = algorithm.fn(p, *arrays, prepared=prepared)
        assert y.device == OTHER_DEVICE
        host = np.asarray(xs.asarray(y, device=xs.Device("CPU_DEVICE")))
        assert oracle.check_algorithm(p, host, oracle.reference(p, inputs), algorithm).ok
