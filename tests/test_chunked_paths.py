"""The paths that only big problems take, reached with small ones.

Winograd's input transform runs chunk by chunk of channels once the transformed input passes
xp.CPU_CHUNK_BYTES (512 KiB: every ResNet layer); im2col's strided 1x1 takes per-image GEMMs
once the output has PER_IMAGE_MIN_COLUMNS pixels. The test grid's problems are too small for
either. Here the thresholds are lowered for the test (the constants the code reads at call time),
so a few channels make several chunks, and a mistake in those paths (a chunk reading the wrong
channels, a row shifted by one) fails against the oracle. These are the array-API paths: numpy
arrays take the compiled kernels by default (tests/test_compiled.py), so here they are switched
off."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from convbench import oracle
from convbench.algorithms import registry
from convbench.algorithms.conv import im2col, winograd
from convbench.backends import compiled, to_backend, to_numpy, xp
from convbench.problems import ConvProblem

WINOGRAD = list(winograd.FAMILY)

# 7 channels: chunks of 1, 2 or 3 channels leave a last, smaller chunk (7 = 3 + 3 + 1).
CHUNKED = {
    "3x3_pad1": ConvProblem(2, 7, 9, 10, 5, 3, 3, padding=1),
    "groups_bias": ConvProblem(1, 6, 8, 9, 4, 3, 3, padding=1, groups=2, bias=True),
    "float64": ConvProblem(1, 7, 9, 9, 3, 3, 3, padding=1, dtype="float64"),
}


def _winograd_problem(name: str, p: ConvProblem) -> ConvProblem:
    """`p` with the kernel of the algorithm's F(m, r) (r x r, padded to keep the size)."""
    _, r = winograd.FAMILY[name]
    return replace(p, r=r, s=r, padding=(r // 2, r // 2))


def _alpha(name: str) -> int:
    m, r = winograd.FAMILY[name]
    return m + r - 1


def _bytes_per_channel(p: ConvProblem, alpha: int) -> int:
    """What one channel's gathered tiles take: alpha^2 values per tile, N * th * tw tiles."""
    mh, mw = alpha - p.r + 1, alpha - p.s + 1
    tiles = p.n * math.ceil(p.out_h / mh) * math.ceil(p.out_w / mw)
    return alpha * alpha * tiles * p.itemsize


@pytest.fixture(autouse=True)
def array_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compiled.SWITCH, "0")


@pytest.fixture
def chunks_of(monkeypatch: pytest.MonkeyPatch):
    """Lower the CPU chunk budget so that a chunk of Winograd's input transform holds `channels`
    channels of problem `p` (the chunked path, as on a ResNet layer); spy on the chunks taken."""
    taken: list[int] = []
    real = winograd._chunk_channels

    def spy(p: ConvProblem, alpha: int, budget: int = xp.CPU_CHUNK_BYTES) -> int:
        step = real(p, alpha, budget)
        taken.append(step)
        return step

    monkeypatch.setattr(winograd, "_chunk_channels", spy)

    def set_chunk(p: ConvProblem, alpha: int, channels: int) -> list[int]:
        monkeypatch.setattr(xp, "CPU_CHUNK_BYTES", channels * _bytes_per_channel(p, alpha))
        return taken

    return set_chunk


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("problem_id", CHUNKED)
@pytest.mark.parametrize("name", WINOGRAD)
def test_winograd_chunked_input_transform_matches_oracle(name: str, problem_id: str,
                                                         channels: int, chunks_of) -> None:
    p = _winograd_problem(name, CHUNKED[problem_id])
    algorithm = registry.get("conv2d", name)
    assert algorithm.why_not(p, "numpy") is None
    taken = chunks_of(p, _alpha(name), channels)
    inputs = oracle.make_inputs(p, seed=11)
    y = algorithm.fn(p, *inputs.arrays)
    assert taken == [channels] and channels < p.c  # the chunked path, several chunks
    check = oracle.check_algorithm(p, y, oracle.reference(p, inputs), algorithm)
    assert check.ok, check


@pytest.mark.parametrize("channels, chunks", [(1, 7), (2, 4), (3, 3), (6, 2)])
def test_winograd_takes_each_channel_in_one_chunk(channels: int, chunks: int, chunks_of,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """ceil(C / step) chunks, each written once into V, at its own channels."""
    name = "winograd_f4x3"
    p = _winograd_problem(name, CHUNKED["3x3_pad1"])  # 7 channels
    written: list[tuple[int, int]] = []
    real = winograd.matmul_into_part

    def recording(a, b, dst, index, shape):
        written.append((index[1].start, index[1].stop))
        return real(a, b, dst, index, shape)

    monkeypatch.setattr(winograd, "matmul_into_part", recording)
    chunks_of(p, _alpha(name), channels)
    winograd.input_transform(p, oracle.make_inputs(p).x, _alpha(name))
    assert len(written) == chunks
    assert [c for start, stop in written for c in range(start, stop)] == list(range(p.c))


@pytest.mark.parametrize("name", ["winograd_f2x3", "winograd_f6x3", "winograd_f3x2"])
def test_winograd_chunks_give_what_one_chunk_gives(name: str, chunks_of) -> None:
    """Chunked or not, the transformed input holds the same values, channel for channel (the
    per-axis and the Kronecker transforms round differently: close, not equal)."""
    p = _winograd_problem(name, CHUNKED["3x3_pad1"])
    alpha = _alpha(name)
    x = oracle.make_inputs(p, seed=12).x
    whole = winograd.input_transform(p, x, alpha)
    chunks_of(p, alpha, 3)
    chunked = winograd.input_transform(p, x, alpha)
    assert chunked.shape == whole.shape
    scale = np.abs(whole).max()
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=16 * np.finfo(p.dtype).eps * scale)


def test_winograd_chunked_path_on_torch_tensors(chunks_of) -> None:
    """torch takes matmul_into_part's own branch (matmul with out= into V's slice)."""
    pytest.importorskip("torch", reason="torch is not installed")
    name = "winograd_f4x3"
    p = _winograd_problem(name, CHUNKED["3x3_pad1"])
    algorithm = registry.get("conv2d", name)
    taken = chunks_of(p, _alpha(name), 2)
    inputs = oracle.make_inputs(p, seed=13)
    y = algorithm.fn(p, *(to_backend(a, "torch") for a in inputs.arrays))
    assert taken == [2]
    check = oracle.check_algorithm(p, to_numpy(y), oracle.reference(p, inputs), algorithm)
    assert check.ok, check


def test_winograd_chunked_path_on_array_api_strict(chunks_of) -> None:
    """The standard only: the chunked path's calls port (its last, smaller chunk included)."""
    xs = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    name = "winograd_f2x3"
    p = _winograd_problem(name, CHUNKED["groups_bias"])
    algorithm = registry.get("conv2d", name)
    taken = chunks_of(p, _alpha(name), 4)  # 6 channels: 4 + 2
    inputs = oracle.make_inputs(p, seed=14)
    y = algorithm.fn(p, *(None if a is None else xs.asarray(a) for a in inputs.arrays))
    assert taken == [4]
    check = oracle.check_algorithm(p, np.asarray(y), oracle.reference(p, inputs), algorithm)
    assert check.ok, check


@pytest.mark.parametrize("name", ["winograd_f2x3", "winograd_f4x3"])
def test_winograd_bwd_data_through_the_chunked_path(name: str, chunks_of) -> None:
    """bwd_data runs the forward on the flipped problem: its chunks too."""
    p = ConvProblem(2, 5, 9, 9, 7, 3, 3, padding=1, direction="bwd_data")
    algorithm = registry.get(p.op, name)
    assert algorithm.why_not(p, "numpy") is None
    # The flipped forward has K=7 input channels and the same 9x9 size.
    taken = chunks_of(replace(p, c=7, k=5, direction="fwd"), _alpha(name), 3)
    inputs = oracle.make_inputs(p, seed=15)
    y = algorithm.fn(p, *inputs.arrays)
    assert taken == [3]
    check = oracle.check_algorithm(p, y, oracle.reference(p, inputs), algorithm)
    assert check.ok, check


# --- im2col's strided 1x1: per-image GEMMs on the subsampled input --------------------------

STRIDED_POINTWISE = {
    "s2": ConvProblem(2, 5, 24, 24, 3, 1, 1, stride=2),  # 12x12 = 144 outputs: over the limit
    "s2x3_odd": ConvProblem(2, 4, 25, 37, 6, 1, 1, stride=(2, 3)),  # 13x13, odd sizes
    "groups_bias": ConvProblem(1, 6, 23, 23, 4, 1, 1, stride=2, groups=2, bias=True),
    "float64": ConvProblem(2, 3, 24, 26, 2, 1, 1, stride=(2, 1), dtype="float64"),
    "s1x2": ConvProblem(1, 3, 12, 24, 2, 1, 1, stride=(1, 2)),  # strided across only
}


@pytest.mark.parametrize("problem_id", STRIDED_POINTWISE)
def test_im2col_strided_pointwise_matches_oracle(problem_id: str) -> None:
    p = STRIDED_POINTWISE[problem_id]
    assert im2col.is_subsampled_pointwise(p)  # the per-image path, as on ResNet's downsamples
    algorithm = registry.get("conv2d", "im2col")
    inputs = oracle.make_inputs(p, seed=16)
    y = algorithm.fn(p, *inputs.arrays)
    assert y.shape == p.output_shape
    check = oracle.check_algorithm(p, y, oracle.reference(p, inputs), algorithm)
    assert check.ok, check


def test_im2col_takes_per_image_gemms_from_the_column_limit_on() -> None:
    """At least PER_IMAGE_MIN_COLUMNS (128) outputs per image: 8x16 is in, 127 is not."""
    assert im2col.PER_IMAGE_MIN_COLUMNS == 128
    assert im2col.is_subsampled_pointwise(ConvProblem(1, 2, 16, 32, 2, 1, 1, stride=2))
    assert not im2col.is_subsampled_pointwise(ConvProblem(1, 2, 127, 2, 2, 1, 1, stride=(1, 2)))
    assert im2col.is_subsampled_pointwise(ConvProblem(1, 2, 128, 2, 2, 1, 1, stride=(1, 2)))
    assert not im2col.is_subsampled_pointwise(ConvProblem(1, 2, 32, 32, 2, 1, 1))  # stride 1
    assert not im2col.is_subsampled_pointwise(ConvProblem(1, 2, 32, 32, 2, 1, 1, stride=2,
                                                          padding=1))


def test_im2col_strided_pointwise_is_bit_exact_in_exactness_mode() -> None:
    p = STRIDED_POINTWISE["s2x3_odd"]
    inputs = oracle.make_inputs(p, seed=17, exact=True)
    y = registry.get("conv2d", "im2col").fn(p, *inputs.arrays)
    assert np.array_equal(y.astype(np.float64), oracle.reference(p, inputs).y)


def test_im2col_paths_meet_at_the_column_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same strided 1x1 problem through the unfold (below the limit) and through the
    per-image GEMMs (the limit lowered): both bit-exact on integer inputs."""
    p = ConvProblem(2, 4, 7, 9, 3, 1, 1, stride=2)  # 4x5 = 20 outputs: under the limit
    assert not im2col.is_subsampled_pointwise(p)
    inputs = oracle.make_inputs(p, seed=18, exact=True)
    reference = oracle.reference(p, inputs).y
    unfolded = im2col.conv2d_im2col(p, *inputs.arrays)
    assert im2col._route(p) == "unfolded"
    monkeypatch.setattr(im2col, "PER_IMAGE_MIN_COLUMNS", 1)
    assert im2col.is_subsampled_pointwise(p)
    im2col._route.cache_clear()  # the route is decided once per problem
    try:
        assert im2col._route(p) == "per_image"
        per_image = im2col.conv2d_im2col(p, *inputs.arrays)
    finally:
        im2col._route.cache_clear()
    assert np.array_equal(unfolded.astype(np.float64), reference)
    assert np.array_equal(per_image.astype(np.float64), reference)


def test_im2col_strided_pointwise_on_torch_tensors() -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    p = STRIDED_POINTWISE["s2x3_odd"]
    inputs = oracle.make_inputs(p, seed=19)
    y = im2col.conv2d_im2col(p, *(to_backend(a, "torch") for a in inputs.arrays))
    algorithm = registry.get("conv2d", "im2col")
    check = oracle.check_algorithm(p, to_numpy(y), oracle.reference(p, inputs), algorithm)
    assert check.ok, check
