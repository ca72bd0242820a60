"""Peak extra memory: what a call allocates beyond its inputs and its output, seen through
tracemalloc; and the built-in algorithms' workspace models checked against it."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from convbench.algorithms import registry
from convbench.measure.memory import MemoryReading, peak_extra_bytes
from convbench.problems import ConvProblem

TEMP_BYTES = 8 * 10**6  # np.ones(10**6) in float64


def temp_then_small_output() -> np.ndarray:
    temp = np.ones(10**6)  # 8e6 bytes, freed before returning
    del temp
    return np.zeros(10)  # 80 bytes of new output


def test_temporary_counted_output_excluded() -> None:
    reading = peak_extra_bytes(temp_then_small_output)
    assert reading.note == ""
    assert reading.peak_extra_bytes is not None
    assert TEMP_BYTES <= reading.peak_extra_bytes < TEMP_BYTES + 10**6


def test_output_alone_is_not_extra() -> None:
    reading = peak_extra_bytes(lambda: np.zeros(10**6))  # 8e6 bytes of output, nothing else
    assert reading.peak_extra_bytes is not None
    assert reading.peak_extra_bytes < 10**5


def test_non_array_result_reports_everything_seen() -> None:
    def fn() -> None:
        temp = np.ones(10**6)
        del temp

    reading = peak_extra_bytes(fn)
    assert reading.peak_extra_bytes is not None
    assert TEMP_BYTES <= reading.peak_extra_bytes < TEMP_BYTES + 10**6


def test_view_of_existing_array_is_not_visible() -> None:
    existing = np.ones(10**6)
    reading = peak_extra_bytes(lambda: existing[: 10**5])  # a view: nothing new allocated
    assert reading == MemoryReading(None, "allocations not visible to tracemalloc")


def test_reshaped_new_array_is_visible() -> None:
    # a freshly allocated output that the function reshapes before returning (as the built-in
    # algorithms do) is new memory, fully seen by tracemalloc: the reading must be a number.
    def fn() -> np.ndarray:
        temp = np.ones(10**6)
        del temp
        return np.zeros(10).reshape(2, 5)  # 80 bytes, a view of a new 1-D array

    reading = peak_extra_bytes(fn)
    assert reading.peak_extra_bytes is not None, reading.note
    assert TEMP_BYTES <= reading.peak_extra_bytes < TEMP_BYTES + 10**6


@pytest.mark.parametrize("already_tracing", [False, True])
def test_tracing_state_restored(already_tracing: bool) -> None:
    assert not tracemalloc.is_tracing()
    if already_tracing:
        tracemalloc.start()
    try:
        reading = peak_extra_bytes(temp_then_small_output)
        assert tracemalloc.is_tracing() is already_tracing
        assert reading.peak_extra_bytes is not None
        assert TEMP_BYTES <= reading.peak_extra_bytes < TEMP_BYTES + 10**6
    finally:
        if already_tracing:
            tracemalloc.stop()


# --- built-in algorithms against their workspace models ---------------------------------------


def inputs(p: ConvProblem) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(p.input_shape).astype(p.dtype)
    w = rng.standard_normal(p.weight_shape).astype(p.dtype)
    return x, w


MID = ConvProblem(2, 16, 20, 20, 16, 3, 3, padding=1)


@pytest.mark.parametrize("name", ["direct", "im2col"])
def test_measured_workspace_matches_model(name: str) -> None:
    algorithm = registry.get("conv2d", name)
    x, w = inputs(MID)
    algorithm.fn(MID, x, w, None)  # warm-up: BLAS and numpy caches outside the measurement
    reading = peak_extra_bytes(lambda: algorithm.fn(MID, x, w, None))
    model = algorithm.workspace_bytes(MID)
    assert model > 0
    assert reading.peak_extra_bytes is not None, f"{name}: {reading.note}"
    measured = reading.peak_extra_bytes
    assert 0.75 * model <= measured <= 1.25 * model, (
        f"{name} on {MID}: measured {measured} B, model {model} B "
        f"({measured / model:.2f}x the model)"
    )


def test_im2col_pointwise_makes_no_copy() -> None:
    p = ConvProblem(2, 64, 32, 32, 64, 1, 1)  # 1x1, stride 1, unpadded: input is the column
    algorithm = registry.get("conv2d", "im2col")
    assert algorithm.workspace_bytes(p) == 0
    x, w = inputs(p)
    algorithm.fn(p, x, w, None)
    reading = peak_extra_bytes(lambda: algorithm.fn(p, x, w, None))
    assert reading.peak_extra_bytes is not None, reading.note
    assert reading.peak_extra_bytes < 0.01 * x.nbytes, (reading.peak_extra_bytes, x.nbytes)


def test_im2col_strided_pointwise_copies_only_the_subsampled_input() -> None:
    """A strided 1x1 layer with enough outputs per image (ResNet's downsampling) takes
    per-image GEMMs on the subsampled input: that copy is all its workspace, and the result is
    right, with groups too."""
    from convbench import oracle
    from convbench.algorithms.conv.im2col import PER_IMAGE_MIN_COLUMNS, is_subsampled_pointwise

    algorithm = registry.get("conv2d", "im2col")
    for p in (ConvProblem(2, 32, 24, 24, 48, 1, 1, stride=2),
              ConvProblem(2, 32, 36, 24, 16, 1, 1, stride=(3, 2), groups=4)):
        assert p.out_h * p.out_w >= PER_IMAGE_MIN_COLUMNS and is_subsampled_pointwise(p)
        inputs = oracle.make_inputs(p, seed=4)
        y = algorithm.fn(p, *inputs.arrays)
        check = oracle.check_algorithm(p, y, oracle.reference(p, inputs), algorithm)
        assert check.ok, check
        x, w = inputs.arrays[:2]
        reading = peak_extra_bytes(lambda: algorithm.fn(p, x, w, None))
        assert reading.peak_extra_bytes is not None, reading.note
        model = algorithm.workspace_bytes(p)
        assert model == p.n * p.c * p.out_h * p.out_w * p.itemsize
        assert 0.9 * model <= reading.peak_extra_bytes <= 1.1 * model, (reading, model)
    small = ConvProblem(2, 32, 14, 14, 48, 1, 1, stride=2)  # 7x7 outputs: the column matrix
    assert not is_subsampled_pointwise(small)
