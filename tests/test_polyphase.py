"""Polyphase Winograd (a strided layer as one stride-1 Winograd convolution of its input's
phases) against the float64 oracle: strides, paddings (per side too), odd and even sizes,
kernels 3, 5 and 7, bias and groups; its refusals; its declared workspace against tracemalloc;
its prepared filters; its chunked input transform."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from convbench import oracle
from convbench.algorithms import registry
from convbench.algorithms.conv import polyphase
from convbench.backends import compiled, xp
from convbench.problems import ConvProblem
from convbench.problems.descriptor import parse
from test_fast import assert_workspace_matches_the_model

NAMES = list(polyphase.FAMILY)


def _problems() -> dict[str, ConvProblem]:
    """Kernels 3, 5, 7 x strides 2, 3 x paddings none, symmetric and per side x even and odd
    sizes, with bias and groups on some; and the shapes a square grid misses."""
    grid = {}
    paddings = {"p0": {}, "p1": {"padding": 1}, "same": None, "per_side": {"padding": (0, 1),
                                                                          "padding_end": (2, 0)}}
    for r, s, (pad_id, pad), (h, w) in itertools.product(
            (3, 5, 7), (2, 3), paddings.items(), ((12, 16), (13, 11))):
        pad = {"padding": r // 2} if pad is None else pad
        groups, bias = (2, True) if (r + s + h) % 2 else (1, False)
        grid[f"{r}x{r}_s{s}_{pad_id}_{h}x{w}"] = ConvProblem(
            2, 4, h, w, 6, r, r, stride=s, groups=groups, bias=bias, **pad)
    grid.update({
        "nonsquare_stride": ConvProblem(1, 3, 13, 10, 5, 3, 2, stride=(3, 1), padding=(1, 0)),
        "stride_h_only": ConvProblem(1, 3, 9, 12, 4, 3, 3, stride=(2, 1), padding=1),
        "nonsquare_kernel": ConvProblem(2, 4, 11, 14, 3, 5, 3, stride=2, padding=(2, 1)),
        "depthwise": ConvProblem(1, 8, 13, 13, 8, 3, 3, stride=2, padding=1, groups=8),
        "depth_multiplier": ConvProblem(1, 4, 10, 10, 8, 3, 3, stride=2, groups=4, bias=True),
        "stem_like": ConvProblem(1, 3, 32, 32, 8, 7, 7, stride=2, padding=3),
        "padding_past_kernel": ConvProblem(1, 2, 7, 7, 3, 3, 3, stride=2, padding=4),
        "one_output": ConvProblem(1, 3, 5, 5, 2, 5, 5, stride=2),
        "float64": ConvProblem(2, 4, 9, 8, 5, 3, 3, stride=2, padding=1, bias=True,
                               dtype="float64"),
        "long_reduction": ConvProblem(1, 256, 8, 8, 4, 3, 3, stride=2, padding=1),
        # the only output's window lies all in the padding: the input must not leak into it
        "window_in_padding": parse("n1c4h3w14k1r4s3sh4sw1ph4pw1peh0pew2b1"),
        "nhwc_window_in_padding": parse("nhwc_n1c4h3w14k1r4s3sh4sw1ph4pw1peh0pew2b1"),
        # channels last: the phases' input side by side, the channels-last pipeline
        "nhwc": ConvProblem(2, 5, 13, 11, 6, 3, 3, stride=2, padding=1, bias=True,
                            layout="nhwc"),
        "nhwc_stem_like": ConvProblem(1, 3, 20, 18, 4, 7, 7, stride=2, padding=3,
                                      layout="nhwc"),
        "nhwc_per_side": ConvProblem(1, 4, 12, 9, 3, 5, 3, stride=(3, 2), padding=(0, 1),
                                     padding_end=(2, 0), layout="nhwc"),
        "nhwc_float64": ConvProblem(2, 4, 9, 8, 5, 3, 3, stride=2, padding=1, bias=True,
                                    dtype="float64", layout="nhwc"),
    })
    return grid


PROBLEMS = _problems()


def _run_checked(name: str, p: ConvProblem, **options: object) -> None:
    algorithm = registry.get("conv2d", name)
    reason = algorithm.why_not(p)
    if reason:
        pytest.skip(reason)
    inputs = oracle.make_inputs(p)
    y = algorithm.run(p, *inputs.arrays, **options)
    check = oracle.check_algorithm(p, y, oracle.reference(p, inputs), algorithm)
    assert y.dtype == np.dtype(p.dtype)
    assert check.ok, (name, str(p), check)


@pytest.mark.parametrize("problem_id", PROBLEMS)
@pytest.mark.parametrize("name", NAMES)
def test_matches_the_oracle(name: str, problem_id: str) -> None:
    _run_checked(name, PROBLEMS[problem_id])


def test_the_grid_reaches_every_algorithm() -> None:
    for name in NAMES:
        runs = [p for p in PROBLEMS.values() if registry.get("conv2d", name).why_not(p) is None]
        assert len(runs) >= 20, name


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("name", NAMES)
def test_prepared_filters_give_the_same_output(name: str, layout: str) -> None:
    groups = 2 if layout == "nchw" else 1  # channels last: one group
    p = ConvProblem(2, 6, 15, 14, 4, 3, 3, stride=2, padding=1, groups=groups, bias=True,
                    layout=layout)
    algorithm = registry.get("conv2d", name)
    arrays = oracle.make_inputs(p).arrays
    state = algorithm.prepared(p, *arrays)
    assert state.shape[0] == polyphase.FAMILY[name] ** 2  # alpha^2 frequency points
    np.testing.assert_array_equal(algorithm.run(p, *arrays, prepared=state),
                                  algorithm.run(p, *arrays))


@pytest.mark.parametrize("problem, reason", [
    (ConvProblem(1, 3, 9, 9, 4, 3, 3, padding=1), "stride 1 has one phase"),
    (ConvProblem(1, 3, 12, 12, 4, 3, 3, stride=2, dilation=2), "dilation 1 only"),
    (ConvProblem(1, 3, 12, 12, 4, 2, 2, stride=2), "windows that do not overlap"),
    (ConvProblem(1, 3, 12, 12, 4, 1, 1, stride=2), "leave Winograd no multiplies to save"),
    (ConvProblem(1, 3, 32, 32, 4, 7, 7, stride=2, padding=3), "must be at most 3 per axis"),
    (ConvProblem(1, 3, 32, 32, 4, 11, 11, stride=2), "sub-kernel 6x6"),  # past the tile
    (ConvProblem(1, 4, 12, 12, 4, 3, 3, stride=2, groups=2, layout="nhwc"),
     "channels-last memory with one group only, got groups=2"),
])
def test_says_why_not(problem: ConvProblem, reason: str) -> None:
    assert reason in registry.get("conv2d", "polyphase_winograd_a4").why_not(problem, "numpy")


def test_rank_3_is_refused_with_the_lowering_reason() -> None:
    p = ConvProblem(1, 2, size=(6, 6, 6), k=2, kernel=(3, 3, 3), stride=2)
    assert "2-D problems only" in registry.get("conv2d", "polyphase_winograd_a6").why_not(p)


def test_phase_kernels_are_the_strided_slices() -> None:
    """Row (k, c, a, b) of the phase kernels is w[k, c, a::s, b::s], zero-padded at its end."""
    p = ConvProblem(1, 2, 12, 12, 3, 3, 3, stride=2)
    w = np.arange(3 * 2 * 9, dtype=np.float32).reshape(3, 2, 3, 3)
    phases = polyphase.phase_kernels(p, w, 6).reshape(3, 2, 2, 2, 2, 2)
    for a, b in itertools.product(range(2), repeat=2):
        part = w[:, :, a::2, b::2]
        padded = np.zeros((3, 2, 2, 2), np.float32)
        padded[:, :, : part.shape[2], : part.shape[3]] = part
        np.testing.assert_array_equal(phases[:, :, a, b], padded)


def test_summary_counts_the_multiplies() -> None:
    """At stride 2 a 3x3 kernel takes 4 phases of F(alpha-1, 2): 4 alpha^2 / (alpha-1)^2
    multiplies per output and channel, against 9."""
    summaries = {n: registry.get("conv2d", n).summary for n in NAMES}
    assert "7.11 multiplies" in summaries["polyphase_winograd_a4"]
    assert "5.76 multiplies" in summaries["polyphase_winograd_a6"]
    assert "5.22 multiplies" in summaries["polyphase_winograd_a8"]


MEMORY_CASES = ["n2c16h20k16r3st2p1", "n8c64h56k64r3st2p1", "n1c3h56k16r7st2p3",
                "n2c16h21k16r3st2p1g4b1", "n2c64h14k128r3st2p1", "n2c8h23k8r5st3p2",
                "nhwc_n2c16h20k16r3st2p1", "nhwc_n1c3h56k16r7st2p3", "nhwc_n2c64h14k128r3st2p1",
                "nhwc_n1c4h30k64r3st2p1",  # K = 64: the output stage's blocks count
                "nhwc_n8c64h56k64r3st2p1"]  # the last: the compiled kernels


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("descriptor", MEMORY_CASES)
def test_measured_workspace_within_10_percent_of_the_model(name: str, descriptor: str) -> None:
    p = parse(descriptor)
    algorithm = registry.get("conv2d", name)
    reason = algorithm.why_not(p, "numpy")
    if reason:
        pytest.skip(reason)
    assert_workspace_matches_the_model(p, algorithm)


@pytest.mark.parametrize("name", ["polyphase_winograd_a6", "polyphase_winograd_a8"])
def test_the_array_version_on_the_stem_within_10_percent_of_the_model(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """ResNet-50's stem in channels-last memory, the compiled kernels off: the phase
    problem's tiles reach past its output (the crop's copy beside the products)."""
    monkeypatch.setenv(compiled.SWITCH, "0")
    assert_workspace_matches_the_model(parse("nhwc_n1c3h224k64r7st2p3"),
                                       registry.get("conv2d", name))


@pytest.mark.parametrize("name", NAMES)
def test_chunked_input_transform_matches_the_oracle(name: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk budget of a few channels (as every ResNet layer takes with the real one): 7
    channels in chunks that leave a smaller last one."""
    p = ConvProblem(2, 7, 13, 12, 5, 3, 3, stride=2, padding=1, bias=True)
    alpha = polyphase.FAMILY[name]
    pl = polyphase.plan(p, alpha)
    per_channel = alpha * alpha * pl.phase_count * p.n * pl.tile_count * p.itemsize
    monkeypatch.setattr(xp, "CPU_CHUNK_BYTES", 3 * per_channel)
    assert polyphase._chunk_channels(p, alpha, xp.cache_bytes(np.zeros(1))) == 3
    _run_checked(name, p)


def test_cost_prices_the_fused_gemms_below_im2col_on_a_wide_layer() -> None:
    """The declared cost counts the stages: on a wide stride-2 3x3 layer its channel GEMMs do
    fewer multiplies than im2col's one GEMM, on a 3-channel layer the transforms dominate."""
    wide, narrow = parse("n8c256h28k256r3st2p1"), parse("n8c3h28k8r3st2p1")
    pp = registry.get("conv2d", "polyphase_winograd_a6")
    assert pp.modelled_s(wide) > 0 and pp.modelled_s(narrow) > 0
    per_gflop = {p: pp.modelled_s(p) / p.macs for p in (wide, narrow)}
    assert per_gflop[wide] < per_gflop[narrow]
