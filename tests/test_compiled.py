"""The compiled (numba) channels-last Winograd kernels (winograd_nhwc_kernels.py): the same
results as the array-API version they stand in for, in both arrangements and both layouts
(an NCHW problem is put channels last and back), within the family's tolerance of the float64
oracle; switched off by CONVBENCH_COMPILED=0; run on the run's threads; loaded from numba's
cache by the next process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convbench import oracle
from convbench.algorithms import auto, cost, registry
from convbench.algorithms.registry import Algorithm
from convbench.algorithms.conv import depthwise_kernels, im2col, layout_kernels, polyphase
from convbench.algorithms.conv import winograd
from convbench.algorithms.conv import winograd_nhwc_kernels as kernels
from convbench.backends import compiled
from convbench.problems import Problem, parse
from convbench.run.processes import pinned_threads
from test_fast import assert_workspace_matches_the_model

pytestmark = pytest.mark.skipif(not compiled.enabled(),
                                reason="numba is not installed or CONVBENCH_COMPILED=0")

DESCRIPTORS = [
    "nhwc_n2c8h13k6r3p1b1",  # bias, a partial last tile
    "nhwc_n3c16h7w9k8r3p1",  # rectangular image
    "nhwc_n2c4h9w10k6r3pe1",  # padding at the end only
    "nhwc_n1c6h8k4r3p1g2",  # groups (staged only)
    "nhwc_n2c8h12k8r3",  # no padding
    "nhwc_n1c3h5w4k2r3",  # output smaller than one tile
    "n2c8h13k6r3p1b1",  # channels-first: put channels last and back
    "n1c6h8w11k4r3p1g2",
]
CASES = [*((d, name) for d in DESCRIPTORS
            for name in ("winograd_f2x3", "winograd_f4x3", "winograd_f6x3")),
         ("nhwc_n2c5h11w9k7r4s3p1", "winograd_f3x4"),  # 4x3: F(3,4) down, F(4,3) across
         ("nhwc_n2c4h12k6r5p2b1", "winograd_f2x5")]


@pytest.fixture(autouse=True)
def small_problems_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernels on the tests' small problems (by default they start at MIN_MACS)."""
    monkeypatch.setattr(compiled, "MIN_MACS", 0)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The problems the kernels ran (descriptors), the real kernels still running."""
    ran: list[str] = []
    original = kernels.convolution

    def convolution(p, *args, **kwargs):  # noqa: ANN001, ANN202
        ran.append(str(p))
        return original(p, *args, **kwargs)

    monkeypatch.setattr(kernels, "convolution", convolution)
    return ran


def _arrange(monkeypatch: pytest.MonkeyPatch, arrangement: str) -> None:
    """Fused for any problem of 4 tiles or more (blocks of one tile, any filters), or staged
    always."""
    if arrangement == "fused":
        monkeypatch.setattr(kernels, "FUSED_MAX_FILTER_BYTES", 1 << 40)
        monkeypatch.setattr(kernels, "FUSED_BLOCK_BYTES", 1)
    else:
        monkeypatch.setattr(kernels, "FUSED_MAX_FILTER_BYTES", 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("arrangement", ["fused", "staged"])
@pytest.mark.parametrize("descriptor, name", CASES)
def test_compiled_kernels_match_the_array_version(
        monkeypatch: pytest.MonkeyPatch, spy: list[str], descriptor: str, name: str,
        arrangement: str, dtype: str) -> None:
    p = parse(descriptor if dtype == "float32" else f"{descriptor}f64")
    algorithm = registry.get("conv2d", name)
    assert algorithm.why_not(p, "numpy") is None
    _arrange(monkeypatch, arrangement)
    m, r = winograd.FAMILY[name]
    alpha = m + r - 1
    with pinned_threads(2):
        expect_fused = (arrangement == "fused" and p.groups == 1
                        and kernels.tile_count(p, alpha) >= 4)
        assert kernels.fused(p, alpha, 2) == expect_fused
        inputs = oracle.make_inputs(p, seed=3)
        y = algorithm.run(p, *inputs.arrays)
        prepared = algorithm.run(p, *inputs.arrays,
                                 prepared=algorithm.prepared(p, *inputs.arrays))
    assert len(spy) == 2  # the kernels ran (per-side padding: on the padded problem)
    _assert_like_the_array_version(monkeypatch, spy, algorithm, p, inputs, y, prepared)


def _assert_like_the_array_version(monkeypatch: pytest.MonkeyPatch, spy: list[str],
                                   algorithm: Algorithm, p: Problem, inputs: oracle.Inputs,
                                   y: np.ndarray, prepared: np.ndarray) -> None:
    """The kernels' result y: laid out as the problem's layout says, equal to the prepared
    run's, within the family's floor of the oracle, and within 256 eps of the array version
    (run here with the kernels switched off: the spy sees no further kernel call)."""
    memory = np.moveaxis(y, 1, -1) if p.channels_last else y
    assert memory.flags.c_contiguous and y.shape == p.output_shape
    np.testing.assert_array_equal(prepared, y)
    check = oracle.check_algorithm(p, y, oracle.reference(p, inputs), algorithm)
    assert check.ok, check
    ran = len(spy)
    monkeypatch.setenv(compiled.SWITCH, "0")
    portable = algorithm.run(p, *inputs.arrays)
    assert len(spy) == ran  # the array version ran
    scale = float(np.abs(portable).max())
    eps = float(np.finfo(y.dtype).eps)
    np.testing.assert_allclose(y, portable, rtol=0, atol=256 * eps * scale)


def test_channels_first_memory_of_a_channels_last_problem_is_read_right(spy: list[str]) -> None:
    """An NHWC problem handed NCHW-contiguous arrays: the kernels take a channels-last copy."""
    p = parse("nhwc_n2c8h13k6r3p1b1")
    algorithm = registry.get("conv2d", "winograd_f4x3")
    x, w, b = oracle.make_inputs(p, seed=5).arrays
    y = algorithm.run(p, np.ascontiguousarray(x), w, b)
    np.testing.assert_allclose(y, algorithm.run(p, x, w, b), rtol=0, atol=0)
    assert len(spy) == 2


def test_the_switch_turns_the_kernels_and_their_model_off(
        monkeypatch: pytest.MonkeyPatch, spy: list[str]) -> None:
    p = parse("nhwc_n8c64h56k64r3p1")
    algorithm = registry.get("conv2d", "winograd_f4x3")
    assert kernels.modelled(p)
    compiled_cost = algorithm.cost_s(p)
    monkeypatch.setenv(compiled.SWITCH, "0")
    assert not compiled.enabled() and not kernels.modelled(p)
    assert algorithm.cost_s(p) != compiled_cost
    small = parse("nhwc_n1c3h5w4k2r3")
    algorithm.run(small, *oracle.make_inputs(small).arrays)
    assert spy == []


def test_the_fused_arrangement_runs_where_the_filters_stay_in_cache() -> None:
    """ResNet-50's layer1 (C = K = 64) fused at F(4,3); layer2 (C = K = 128: 2.4 MB of
    transformed filters) and grouped problems staged; too few blocks for the threads: staged."""
    assert kernels.fused(parse("nhwc_n8c64h56k64r3p1"), 6, 2)
    assert not kernels.fused(parse("nhwc_n8c128h28k128r3p1"), 6, 2)
    assert not kernels.fused(parse("nhwc_n8c64h56k64r3p1g2"), 6, 2)
    assert not kernels.fused(parse("nhwc_n1c64h8k64r3p1"), 6, 2)
    p = parse("nhwc_n8c64h56k64r3p1")
    per_block = kernels.block_tiles(p, 6)
    assert 36 * per_block * (64 + 64) * 4 <= kernels.FUSED_BLOCK_BYTES


def test_the_fused_arrangements_gemms_are_priced_at_the_kernels_blas_rate() -> None:
    """The fused kernels call numpy's BLAS (kernel_gemm_flops_per_s); the staged arrangement's
    GEMMs run on the engine (gemm_flops_per_s)."""
    fused_p, staged_p = parse("nhwc_n8c64h56k64r3p1"), parse("nhwc_n8c256h14k256r3p1")
    assert kernels.fused(fused_p, 6, 2) and not kernels.fused(staged_p, 6, 2)
    level = cost.MachineModel(gemm_flops_per_s=300e9, kernel_gemm_flops_per_s=300e9)
    slower = cost.MachineModel(gemm_flops_per_s=300e9, kernel_gemm_flops_per_s=150e9)
    with pinned_threads(2):
        priced = {}
        for name, model in (("level", level), ("slower", slower)):
            with cost.priced_by(model):
                priced[name] = [kernels.cost_s(p, 6) for p in (fused_p, staged_p)]
    count = kernels.tile_count(fused_p, 6)
    gemm_flops = 2 * 36 * count * 64 * 64
    smallest = min(count, 64)
    extra = gemm_flops / (150e9 * smallest / (smallest + level.gemm_half_size)) - gemm_flops / (
        300e9 * smallest / (smallest + level.gemm_half_size))
    assert priced["slower"][0] - priced["level"][0] == pytest.approx(extra)
    assert priced["slower"][1] == priced["level"][1]


def test_small_problems_keep_the_array_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below MIN_MACS neither im2col nor Winograd takes the kernels (nor loads numba)."""
    monkeypatch.setattr(compiled, "MIN_MACS", 1 << 24)
    small, large = parse("nhwc_n2c8h13k6r3p1b1"), parse("nhwc_n8c64h56k64r3p1")
    assert small.macs < compiled.MIN_MACS <= large.macs
    assert not kernels.modelled(small) and not im2col.compiled_path(small)
    assert kernels.modelled(large) and im2col.compiled_path(large)


def test_the_kernels_run_on_the_runs_threads() -> None:
    before = compiled.threads()
    with pinned_threads(1):
        assert compiled.threads() == 1
    assert compiled.threads() == before


CACHED_RUN = """
import sys
from convbench import oracle
from convbench.algorithms import registry
from convbench.algorithms.conv import winograd_nhwc_kernels as kernels
from convbench.backends import compiled
from convbench.problems import parse
p = parse("nhwc_n1c8h9k8r3p1")
compiled.MIN_MACS = 0
registry.get("conv2d", "winograd_f2x3").run(p, *oracle.make_inputs(p).arrays)
module = kernels._module(4, 3, 3, "float32")
stats = [getattr(module, name).stats for name in ("input_transform", "output_transform")]
print(sum(len(s.cache_hits) for s in stats), sum(len(s.cache_misses) for s in stats))
"""


@pytest.mark.slow
def test_a_second_process_loads_the_kernels_from_the_cache(tmp_path: Path) -> None:
    """The first process on a machine compiles the generated kernels; the next one loads what
    numba cached beside them (the generated module is importable by name for that)."""
    env = {**os.environ, "CONVBENCH_CACHE": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", CACHED_RUN], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    (hits1, misses1), (hits2, misses2) = (map(int, r.stdout.split()) for r in runs)
    assert (hits1, misses1) == (0, 2) and (hits2, misses2) == (2, 0)
    assert len(list((tmp_path / "kernels").glob("winograd_nhwc_a4r3s3_float32_*.py"))) == 1


IM2COL = [
    "n2c3h32k4r3st2p1b1",  # NCHW, stride 2, 256 outputs per image
    "n5c3h32k4r3p1b1",  # NCHW, stride 1: chunks of four images, then one
    "n3c2h60w57k3r3p1",  # NCHW, 3420 outputs an image: one image a chunk, no copy of results
    "n2c3h9k4r3p4b1",  # NCHW, padding past the kernel: whole rows and columns of zeros
    "n2c4h11w13k3r2s3p1d2",  # NCHW, dilation with a rectangular kernel
    "n2c3h12k5r1p1",  # NCHW, a padded 1x1
    "n1c2h20w64k3r3st2p1",  # NCHW, stride 2, 32 outputs wide: rows split into phases
    "n1c4h40w34k5r5s3sh2sw1p2",  # rectangular kernel and stride
    "n2c5h36k3r3st2p1d2",  # dilation (the per-tap copy)
    "n1c3h33k8r7st2p3",  # a 7x7 stem at small size
    "n3c6h9k4r1st2b1",  # NCHW, a strided 1x1: each image's subsample one run, bias
    "n2c5h11w8k3r1sh3sw2",  # NCHW, a 1x1 at strides 3 down and 2 across, odd sizes
    "n2c4h7w9k5r1sh1sw3",  # NCHW, a 1x1 at stride 3 across only
    "n2c3h24w26k4r1st2b1",  # NCHW, a strided 1x1 on 156 outputs an image: per-image GEMMs
    "nhwc_n2c8h13k6r3p1b1",  # channels last, stride 1
    "nhwc_n2c4h9w10k6r3st2pe1",  # per-side padding (made explicit before the kernels)
    "nhwc_n2c6h9k4r1st2",  # a strided 1x1 (the subsample)
    "nhwc_n2c6h9k4r1b1",  # a pointwise layer: the input is the column matrix
]


@pytest.mark.parametrize("descriptor", IM2COL)
def test_compiled_im2col_is_exact_and_matches_the_array_version(
        monkeypatch: pytest.MonkeyPatch, descriptor: str) -> None:
    """The column matrix and weights built by layout_kernels, one GEMM: bit-exact against the
    oracle on exactness-mode inputs, and equal to the array version within rounding."""
    p = parse(descriptor)
    algorithm = registry.get("conv2d", "im2col")
    assert im2col.compiled_path(p)
    ran: list[int] = []
    original = im2col._compiled
    monkeypatch.setattr(im2col, "_compiled", lambda *a: ran.append(1) or original(*a))
    exact = oracle.make_inputs(p, seed=4, exact=True)
    y = algorithm.run(p, *exact.arrays)
    assert oracle.check_algorithm(p, y, oracle.reference(p, exact), algorithm, exact=True).ok
    memory = np.moveaxis(y, 1, -1) if p.channels_last else y
    assert memory.flags.c_contiguous and ran
    _equal_to_the_array_version(monkeypatch, algorithm, p, 4, im2col.compiled_path)


def _equal_to_the_array_version(monkeypatch: pytest.MonkeyPatch, algorithm: Algorithm,
                                p: Problem, seed: int, takes_kernels: object) -> None:
    """The algorithm's output on `seed`'s inputs equals, within rounding, what it gives with
    the kernels switched off (where `takes_kernels(p)` is then false)."""
    inputs = oracle.make_inputs(p, seed=seed)
    y = algorithm.run(p, *inputs.arrays)
    monkeypatch.setenv(compiled.SWITCH, "0")
    assert not takes_kernels(p)
    portable = algorithm.run(p, *inputs.arrays)
    np.testing.assert_allclose(y, portable, rtol=0, atol=64 * 1.2e-7 * float(np.abs(y).max()))


def test_im2col_keeps_its_numpy_paths_where_they_are_faster() -> None:
    """Unpadded 1x1 layers at stride 1 in NCHW keep their GEMMs on the input, groups the
    array version; every other 2-D layer takes a compiled path, NCHW ones at stride 1, on
    small images, and strided 1x1 ones too."""
    for descriptor in ("n8c64h56k256r1", "n8c2048h7k512r1", "nhwc_n2c8h13k8r3p1g2",
                       "n8c64h56k64r3p1g2", "n8c64h28k64r1st2g2"):
        assert not im2col.compiled_path(parse(descriptor)), descriptor
    for descriptor in ("n8c128h56k128r3st2p1", "n8c512h7k512r3p1", "n8c512h14k512r3st2p1",
                       "n8c64h56k64r3p1", "n8c3h224k64r7st2p3", "nhwc_n8c512h7k512r3p1",
                       "n8c256h56k512r1st2", "n8c512h28k1024r1st2", "n8c1024h14k2048r1st2"):
        assert im2col.compiled_path(parse(descriptor)), descriptor
    # a strided 1x1 on large images: the subsample, then per-image GEMMs; on small ones every
    # image's subsample gathered for one GEMM
    assert im2col._subsampled(parse("n8c256h56k512r1st2"))
    assert not im2col._subsampled(parse("n8c1024h14k2048r1st2"))


@pytest.mark.parametrize("descriptor", ["n2c3h9k4r1st2", "n2c5h11w8k3r1sh3sw2",
                                        "n3c4h7w9k5r1sh1sw3", "n2c3h8w6k4r1sh2sw1",
                                        "n2c3h5k2r1"])
def test_the_pointwise_column_matrix_equals_numpys_unfold(descriptor: str) -> None:
    """layout_kernels.pointwise_columns (each image's plane, subsampled at the stride) writes
    exactly numpy's unfold (C, N*OH*OW) of an unpadded 1x1 problem; a wrong `out` is refused."""
    p = parse(descriptor)
    x = oracle.make_inputs(p, seed=5).arrays[0]
    out = np.full((p.c, p.n * p.out_h * p.out_w), np.nan, x.dtype)
    layout_kernels.pointwise_columns(p, x, out, 2)
    np.testing.assert_array_equal(out, im2col.unfold(p, x)[0])
    with pytest.raises(ValueError, match="pointwise_columns: out must be C-contiguous"):
        layout_kernels.pointwise_columns(p, x, out.T.copy().T, 2)
    images = np.full((p.n, p.c, p.out_h * p.out_w), np.nan, x.dtype)
    layout_kernels.pointwise_columns(p, x, images, 2, images_first=True)
    subsample = x[:, :, :: p.stride[0], :: p.stride[1]]
    np.testing.assert_array_equal(images, subsample.reshape(images.shape))
    with pytest.raises(ValueError, match="pointwise_columns: out must be C-contiguous"):
        layout_kernels.pointwise_columns(p, x, out, 2, images_first=True)


def test_the_column_kernels_refuse_an_input_they_would_misread() -> None:
    """The kernels read x unchecked: an input of another shape or dtype, or a problem padded
    unlike on its two sides, is refused before they run."""
    p = parse("n2c3h9k4r1st2")
    x = oracle.make_inputs(p, seed=5).arrays[0]
    out = np.empty((p.c, p.n * p.out_h * p.out_w), x.dtype)
    for bad in (x[:, :, :8], x.astype(np.float64)):
        with pytest.raises(ValueError, match="pointwise_columns: x must be the NCHW input"):
            layout_kernels.pointwise_columns(p, bad, out, 2)
    q = parse("n2c3h30w30k4r3st2pe1")
    columns = np.empty((q.c * 9, q.n * q.out_h * q.out_w), np.float32)
    with pytest.raises(ValueError, match="planar_columns: x must be the NCHW input"):
        layout_kernels.planar_columns(q, np.zeros(q.input_shape, np.float32), columns, 2)


@pytest.mark.parametrize("descriptor", ["n3c5h24w26k4r1st2b1f64", "n3c5h11k6r1st2b1f64",
                                        "n5c4h9k3r1st2b1"])
def test_both_strided_pointwise_routes_are_exact(monkeypatch: pytest.MonkeyPatch,
                                                 descriptor: str) -> None:
    """A strided 1x1 layer's two compiled routes, per-image GEMMs on the subsample (images of
    PER_IMAGE_MIN_COLUMNS outputs or more) and the gathered one-GEMM way (smaller ones, here
    in chunks of two images and a short last one), in both dtypes: bit-exact against the
    oracle on exactness-mode inputs."""
    p = parse(descriptor)
    monkeypatch.setattr(im2col, "COMPILED_CHUNK_BYTES", 2 * p.c * p.out_h * p.out_w * p.itemsize)
    gathered = not im2col._subsampled(p)
    assert gathered == (p.out_h * p.out_w < im2col.PER_IMAGE_MIN_COLUMNS)
    assert not gathered or im2col._nchw_images(p) == 2
    ran: list[str] = []
    for name in ("pointwise_columns", "swap_runs"):
        original = getattr(layout_kernels, name)
        monkeypatch.setattr(layout_kernels, name, lambda *a, f=original, n=name, **k:
                            ran.append(n) or f(*a, **k))
    algorithm = registry.get("conv2d", "im2col")
    exact = oracle.make_inputs(p, seed=6, exact=True)
    y = algorithm.run(p, *exact.arrays)
    assert y.dtype == np.dtype(p.dtype)
    assert oracle.check_algorithm(p, y, oracle.reference(p, exact), algorithm, exact=True).ok
    chunks = -(-p.n // 2)
    expected = (["pointwise_columns", "swap_runs"] * chunks if gathered
                else ["pointwise_columns"])
    assert ran == expected


def test_swapping_runs_is_a_transpose_of_the_first_two_axes() -> None:
    """swap_runs writes x (A, B, run) as (B, A, run), each run intact, on any thread count;
    a non-contiguous or misshapen `out` is refused."""
    x = np.arange(5 * 3 * 7, dtype=np.float32).reshape(5, 3, 7)
    for workers in (1, 2, 3):
        out = np.full((3, 5, 7), np.nan, np.float32)
        layout_kernels.swap_runs(x, out, workers)
        np.testing.assert_array_equal(out, x.transpose(1, 0, 2))
    with pytest.raises(ValueError, match="swap_runs"):
        layout_kernels.swap_runs(x, np.empty((5, 3, 7), np.float32), 2)
    with pytest.raises(ValueError, match="swap_runs"):
        layout_kernels.swap_runs(x, np.empty((7, 5, 3), np.float32).transpose(2, 1, 0), 2)
    with pytest.raises(ValueError, match="of one dtype"):
        layout_kernels.swap_runs(x, np.empty((3, 5, 7), np.float64), 2)


@pytest.mark.parametrize("phased", [False, True])
@pytest.mark.parametrize("descriptor", [
    "n2c3h32k4r3st2p1",  # ResNet's stride-2 3x3
    "n1c3h33k8r7st2p3",  # the stem's 7x7
    "n2c5h37w41k3r3s5sw3p2d2",  # stride 3 across, dilation, a rectangular kernel
    "n2c4h20k3r3st2p7",  # padding past the kernel: rows and runs of zeros only
    "n1c2h9w41k2r2s3sw2p1d3",  # dilation 3 at stride 2: taps in both phases
    "n1c2h9w40k2r2s3sw4",  # stride 4, unpadded
    "n1c2h6w70k2r3sh1sw2p1",  # stride 2 across, 1 down: 35 outputs wide, phased by default
])
def test_the_nchw_column_matrix_equals_numpys_unfold(monkeypatch: pytest.MonkeyPatch,
                                                     descriptor: str, phased: bool) -> None:
    """layout_kernels.planar_columns, read at the stride or split into phases first, writes
    exactly numpy's unfold (C*R*S, N*OH*OW) of the same input."""
    p = parse(descriptor)
    monkeypatch.setattr(layout_kernels, "PHASED_MIN_WIDTH", 0 if phased else 1 << 30)
    x = oracle.make_inputs(p, seed=3).arrays[0]
    out = np.full((p.c * p.r * p.s, p.n * p.out_h * p.out_w), np.nan, x.dtype)
    layout_kernels.planar_columns(p, x, out, 2)
    np.testing.assert_array_equal(out, im2col.unfold(p, x)[0])


@pytest.mark.parametrize("descriptor, images", [
    ("n8c64h56k64r3p1", 1),  # 3136 outputs an image
    ("n8c128h56k128r3st2p1", 4),  # 784
    ("n8c512h7k512r3p1", 8),  # 49: all the images in one GEMM
    ("n5c3h32k4r3p1", 4),  # 1024: chunks of four, then one
    ("n8c1024h14k2048r1st2", 8),  # a strided 1x1 on 7x7 outputs: all the images in one GEMM
    ("n8c64h56k64r1p1", 1),  # a padded 1x1 unfolds: chunks by its outputs, as a 3x3
])
def test_the_nchw_path_multiplies_chunks_of_whole_images(descriptor: str, images: int) -> None:
    """At least PLANAR_CHUNK_PIXELS outputs a GEMM, whole images, no more than the batch."""
    p = parse(descriptor)
    assert im2col._nchw_images(p) == images


def test_models_of_other_backends_describe_the_array_version(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernels take numpy arrays only: im2col's workspace and cost on torch's arrays are
    those of the array version (as with the kernels switched off), on numpy's the kernels'."""
    p = parse("n8c64h56k64r3p1")
    algorithm = registry.get("conv2d", "im2col")
    on_numpy = (algorithm.workspace(p), algorithm.modelled_s(p))
    on_torch = (algorithm.workspace(p, "torch"), algorithm.modelled_s(p, "torch"))
    assert im2col.compiled_path(p)
    monkeypatch.setenv(compiled.SWITCH, "0")
    array_version = (algorithm.workspace(p), algorithm.modelled_s(p))
    assert on_torch == array_version != on_numpy
    assert im2col.compiled_path(p) is False


def test_a_short_last_chunk_is_priced_as_its_images() -> None:
    """Five images at four a chunk: one GEMM over four images, then one over one, not a second
    one over four (which priced the fifth image as four more)."""
    five, four = parse("n5c128h28k128r3p1"), parse("n4c128h28k128r3p1")
    assert im2col._nchw_images(five) == 4 == im2col._nchw_images(four)
    five_s, four_s = im2col._nchw_cost(five), im2col._nchw_cost(four)
    assert four_s < five_s < 1.5 * four_s


@pytest.mark.parametrize("descriptor", ["n5c3h32k4r3p1", "n3c2h60w57k3r3p1",
                                        "n2c16h20k8r3st2p1", "n4c16h20k24r1st2",
                                        "n3c8h26k12r1st2"])
def test_the_nchw_compiled_path_workspace_matches_the_model(descriptor: str) -> None:
    """A chunk's columns and (several images a chunk) its GEMM result, against tracemalloc."""
    p = parse(descriptor)
    assert im2col.compiled_path(p)
    assert_workspace_matches_the_model(p, registry.get("conv2d", "im2col"))


POLYPHASE = [
    ("n2c8h13k6r3st2p1b1", "polyphase_winograd_a4"),  # a partial last tile, bias
    ("n2c8h13k6r3st2p1b1", "polyphase_winograd_a6"),
    ("n2c8h13k6r3st2p1b1", "polyphase_winograd_a8"),
    ("n1c3h32k8r7st2p3", "polyphase_winograd_a8"),  # the stem's shape: 4x4 sub-kernels
    ("n2c5h12w9k4r3st2pe1", "polyphase_winograd_a6"),  # padding at the end only
    ("n1c4h13w10k5r3s2sh2sw1p1", "polyphase_winograd_a4"),  # stride 2x1, a 3x2 kernel
    ("n2c4h14k6r5st3p2", "polyphase_winograd_a4"),  # stride 3, 2x2 sub-kernels
    ("n1c6h11k4r3st2p4", "polyphase_winograd_a6"),  # padding past the kernel
    ("n8c16h28k32r3st2p1", "polyphase_winograd_a6"),  # enough tiles for the fused arrangement
    ("nhwc_n2c8h13k6r3st2p1b1", "polyphase_winograd_a6"),  # channels last: no transposes
    ("nhwc_n1c3h32k8r7st2p3", "polyphase_winograd_a8"),
    # the only output's window lies all in the padding: no input may leak into it
    ("n1c4h3w14k1r4s3sh4sw1ph4pw1peh0pew2b1", "polyphase_winograd_a6"),
    ("nhwc_n1c4h3w14k1r4s3sh4sw1ph4pw1peh0pew2b1", "polyphase_winograd_a4"),
]


@pytest.mark.parametrize("descriptor, name, dtype", [
    *((d, name, "float32") for d, name in POLYPHASE),
    *((d, name, "float64") for d, name in POLYPHASE[:4])])  # each kernel compiles per dtype
def test_compiled_polyphase_matches_the_array_version(
        monkeypatch: pytest.MonkeyPatch, spy: list[str], descriptor: str, name: str,
        dtype: str) -> None:
    """The phases' space-to-depth input (layout_kernels.phases) through the compiled stride-1
    pipeline: within the family's floor of the oracle, equal to the array version within
    rounding, prepared filters giving the same output."""
    p = parse(descriptor if dtype == "float32" else f"{descriptor}f64")
    algorithm = registry.get("conv2d", name)
    assert algorithm.why_not(p, "numpy") is None and polyphase.compiled_path(p)
    with pinned_threads(2):
        inputs = oracle.make_inputs(p, seed=5)
        y = algorithm.run(p, *inputs.arrays)
        prepared = algorithm.run(p, *inputs.arrays,
                                 prepared=algorithm.prepared(p, *inputs.arrays))
    q = polyphase.phase_problem(p, polyphase.FAMILY[name])
    assert spy == [str(q)] * 2 and q.stride == (1, 1) and q.channels_last
    _assert_like_the_array_version(monkeypatch, spy, algorithm, p, inputs, y, prepared)
    assert not polyphase.compiled_path(p)  # the switch is off now


def test_the_phases_are_the_strided_pixels_in_phase_channel_order() -> None:
    """layout_kernels.phases against numpy's strided slices of the zero-padded input."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 11, 3)).astype(np.float32)  # NHWC
    (sh, sw), (ph, pw), (oh, ow) = (2, 3), (1, 2), (6, 5)
    got = layout_kernels.phases(x, (sh, sw), (2, 3), (ph, pw), (oh, ow), 2)
    padded = np.zeros((2, sh * oh + 2, sw * ow + 3, 3), np.float32)
    padded[:, ph : ph + 9, pw : pw + 11] = x
    want = np.concatenate([padded[:, a : a + sh * oh : sh, b : b + sw * ow : sw]
                           for a in range(2) for b in range(3)], axis=-1)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("descriptor, name", [
    ("n8c64h56k64r3st2p1", "polyphase_winograd_a6"),  # staged: U too large to stay in cache
    ("n8c16h28k32r3st2p1", "polyphase_winograd_a4"),  # fused
    ("n2c3h64k16r7st2p3", "polyphase_winograd_a8"),  # the stem's shape
    ("nhwc_n8c32h28k32r3st2p1", "polyphase_winograd_a6"),  # channels last
])
def test_compiled_polyphase_workspace_within_10_percent_of_the_model(descriptor: str,
                                                                      name: str) -> None:
    p = parse(descriptor)
    assert polyphase.compiled_path(p)
    with pinned_threads(2):
        assert_workspace_matches_the_model(p, registry.get("conv2d", name))


DEPTHWISE = [
    "n2c4h60w58k4r3p1g4b1",  # NCHW, outputs 56 wide or more: the NCHW kernel
    "n2c4h9k4r3p1g4",  # NCHW, narrow: through channels last (two transposes)
    "n2c4h9k8r3p1g4b1",  # a depth multiplier of 2
    "n1c6h11w13k6r3s2sh2sw1p1g6",  # a rectangular kernel, stride 2 down only
    "n2c5h12k10r5st2p2d2g5b1",  # dilation 2 at stride 2, multiplier 2
    "n1c3h9w10k3r3st3p4g3",  # stride 3, padding past the kernel: outputs all in the padding
    "n1c3h64w120k6r3st2p1g3",  # NCHW kernel at stride 2 across, multiplier 2
    "n1c3h10w180k3r3sh1sw3p2g3",  # NCHW kernel at stride 3 across
    "n1c2h7w120k2r3p4d2g2b1",  # NCHW kernel, dilation 2: rows all in the padding
    "n2c32h9k32r3p1g32",  # NCHW, narrow and 32 channels: through channels last
    "nhwc_n2c4h9k4r3p1g4",  # channels last
    "nhwc_n2c5h12k10r5st2p2d2g5b1",
    "nhwc_n1c6h11w13k12r3s2sh2sw1p1g6b1",
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("descriptor", DEPTHWISE)
def test_depthwise_kernels_are_exact(monkeypatch: pytest.MonkeyPatch, descriptor: str,
                                     dtype: str) -> None:
    """direct on a layer of one input channel a group takes the compiled depthwise kernels:
    bit-exact against the oracle on exactness-mode inputs, the result in the problem's own
    memory layout, and equal to the array version within rounding."""
    p = parse(descriptor if dtype == "float32" else f"{descriptor}f64")
    algorithm = registry.get("conv2d", "direct")
    assert depthwise_kernels.modelled(p)
    assert depthwise_kernels._through_channels_last(p) == (
        p.channels_last or (p.out_w < 56 and p.k >= 32))
    ran: list[bool] = []
    original = depthwise_kernels.convolution
    monkeypatch.setattr(depthwise_kernels, "convolution",
                        lambda *a: ran.append(depthwise_kernels._through_channels_last(a[0]))
                        or original(*a))
    exact = oracle.make_inputs(p, seed=7, exact=True)
    y = algorithm.run(p, *exact.arrays)
    assert len(ran) == 1
    assert y.dtype == np.dtype(p.dtype)
    assert oracle.check_algorithm(p, y, oracle.reference(p, exact), algorithm, exact=True).ok
    memory = np.moveaxis(y, 1, -1) if p.channels_last else y
    assert memory.flags.c_contiguous
    _equal_to_the_array_version(monkeypatch, algorithm, p, 7, depthwise_kernels.modelled)


def test_depthwise_kernels_take_depthwise_layers_from_a_sixteenth_of_min_macs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only layers of one input channel a group, padded alike on both sides; from
    MIN_MACS / WORTH_SCALE multiply-adds (memory-bound layers, MobileNetV2's at N=8 from 3.4
    M), where the other kernels start at MIN_MACS."""
    monkeypatch.setattr(compiled, "MIN_MACS", 1 << 24)
    assert depthwise_kernels.modelled(parse("n8c960h7k960r3p1g960"))  # 3.4 M
    assert not depthwise_kernels.modelled(parse("n1c960h7k960r3p1g960"))  # 0.4 M
    for descriptor in ("n8c512h14k512r3p1g2", "n8c512h14k512r3p1", "n8c960h7k960r3pe1g960"):
        assert not depthwise_kernels.modelled(parse(descriptor)), descriptor


@pytest.mark.parametrize("descriptor", ["n2c16h60k16r3p1g16", "n2c16h30k32r3p1g16b1",
                                        "nhwc_n2c16h30k16r3p1g16", "n2c16h120k16r3st2p1g16b1",
                                        "n1c64h7k256r7p3g64", "n4c32h24k64r3p1g32b1"])
def test_depthwise_workspace_matches_the_model(descriptor: str) -> None:
    """The bias's zeros; through channels last the reordered weights and, for an NCHW layer,
    the transposes' copies (the weights freed before the last); against tracemalloc."""
    p = parse(descriptor)
    assert depthwise_kernels.modelled(p)
    assert_workspace_matches_the_model(p, registry.get("conv2d", "direct"))


def test_auto_runs_the_depthwise_kernels_on_mobilenet_layers() -> None:
    """Priced by their memory, the kernels come first for auto on MobileNetV2's depthwise
    layers in both layouts, with the defaults' rates."""
    for descriptor in ("n8c32h112k32r3p1g32", "n8c960h7k960r3p1g960",
                       "nhwc_n8c144h56k144r3st2p1g144"):
        p = parse(descriptor)
        assert auto.ranked(p, "numpy", cost.DEFAULTS)[0].name == "direct", descriptor


def test_depthwise_kernels_read_only_what_fits_the_problem(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The kernels read their arrays unchecked: an input, weights or bias of other shapes, or
    of another (or non-native) dtype, run the array version instead, which says what is
    wrong or computes in its own way."""
    p = parse("n1c2h5k2r3p1g2b1")
    x, w, b = oracle.make_inputs(p).arrays
    assert depthwise_kernels.applies(p, x, w, b)
    for args in ((x[:, :1], w, b), (x, w[:1], b), (x, w, b[:1]), (x.astype(np.float64), w, b),
                 (x.astype(">f4"), w, b)):
        assert not depthwise_kernels.applies(p, *args)
    with pytest.raises(ValueError):
        registry.get("conv2d", "direct").run(p, x[:, :1], w, b)


def test_the_backward_direct_is_priced_as_the_array_version_it_runs() -> None:
    """direct's backward passes run per-tap GEMMs (or, for data, a flipped problem): they are
    priced as the array version, not as the depthwise kernels their forward problem takes."""
    from dataclasses import replace

    from convbench.algorithms.conv import direct

    p = parse("bwd_weight_n8c32h56k32r3p1g32")
    forward = replace(p, direction="fwd")
    assert depthwise_kernels.modelled(forward)
    backward = registry.get(p.op, "direct")
    assert backward.modelled_s(p) == direct.array_cost_s(forward) > direct.cost_s(forward)
