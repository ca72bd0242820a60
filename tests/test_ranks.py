"""Ranks 1-3, padding before and after an axis, and channels-last memory: the problem model's
formulas, the bridges (lowering) that let every algorithm take what it does not declare, and
the suites that use them."""

from __future__ import annotations

import math

import numpy as np
import pytest

import convbench
from convbench import oracle
from convbench.algorithms import registry
from convbench.problems import ConvProblem, PoolProblem, parse
from convbench.run.suite import load_suite


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("size", [5, 6, 7, 8, 11, 12])
def test_tf_same_and_valid_give_the_course_output_sizes(size: int, kernel: int, stride: int):
    """SAME: out = ceil(I/S), the odd pixel of padding after; VALID: ceil((I - K + 1)/S)."""
    same = convbench.tf_padding("SAME", (size, size), kernel, stride)
    (before, after), _ = same
    assert after - before in (0, 1)
    conv = ConvProblem(1, 1, k=1, size=(size, size), kernel=(kernel, kernel), stride=stride,
                       padding=same)
    assert conv.out_size == (math.ceil(size / stride),) * 2
    pool = PoolProblem("max", 1, 1, size=(size, size), kernel=(kernel, kernel), stride=stride,
                       padding=same)
    assert pool.out_size == (math.ceil(size / stride),) * 2
    if kernel <= size:
        valid = convbench.tf_padding("VALID", (size, size), kernel, stride)
        conv = ConvProblem(1, 1, k=1, size=(size, size), kernel=(kernel, kernel),
                           stride=stride, padding=valid)
        assert conv.out_size == (math.ceil((size - kernel + 1) / stride),) * 2


def test_onnx_pads_and_auto_pad() -> None:
    assert convbench.onnx_padding((224, 224), 3, 2, pads=[0, 1, 1, 2]) == ((0, 1), (1, 2))
    assert convbench.onnx_padding((224, 224), 3, 2, auto_pad="SAME_UPPER") == ((0, 1), (0, 1))
    assert convbench.onnx_padding((224, 224), 3, 2, auto_pad="SAME_LOWER") == ((1, 0), (1, 0))
    assert convbench.onnx_padding((7,), 3, auto_pad="VALID") == ((0, 0),)
    with pytest.raises(ValueError, match=r"auto_pad must be .* got 'SAME'"):
        convbench.onnx_padding((7,), 3, auto_pad="SAME")


@pytest.mark.parametrize("descriptor", [
    "n4c16w1000k32s3p4d4", "n1c3id16h112k64r3p1", "n1c3id8h9w10k4kd1r3s2sd1sh2sw3pd0ph1pw2",
    "n1c32h224k64r3st2pe1", "n1c3h9k4r3ph0pw1peh2pew1", "nhwc_n8c64h56k64r3p1",
    "bwd_weight_nhwc_n2c8id5h6k4r3p1b1", "deconv_n1c4w9k2s4st2p1pe2op1",
    "avgpool_n2c4id5h5r3st2p1ci0dv7", "bwd_data_maxpool_n1c2w9s3st2pe1",
])
def test_descriptors_of_every_rank_round_trip(descriptor: str) -> None:
    p = parse(descriptor)
    assert parse(str(p)) == p and str(p) == descriptor


def test_a_problem_states_each_rank_and_side() -> None:
    p = parse("n1c32h224k64r3st2pe1")
    assert (p.padding, p.padding_after, p.out_size) == ((0, 0), (1, 1), (112, 112))
    assert p.op == "conv2d" and not p.symmetric
    assert parse("n4c16w1000k32s3p4d4").op == "conv1d"
    assert parse("bwd_data_maxpool_n1c2id5h5r3").op == "max_pool3d_backward"
    with pytest.raises(TypeError, match=r"h is a 2-D field; this problem has rank 3"):
        _ = parse("n1c3id16h112k64r3p1").h
    with pytest.raises(ValueError, match=r"layout must be one of nchw, nhwc .* got 'chwn'"):
        ConvProblem(1, 2, 3, 3, 2, 1, 1, layout="chwn")
    with pytest.raises(ValueError, match=r"padding as per-side pairs needs 2 \(before, after\)"):
        ConvProblem(1, 2, 5, 5, 2, 3, 3, padding=((1, 1),))


# Problems no built-in 2-D algorithm takes natively: rank 1, per-side padding, both, and a
# transposed convolution cropped unequally; each through the bridges, checked by the oracle.
BRIDGED = ["n2c6w17k4s3st2p1", "n2c4h9w10k6r3st2pe1", "n2c6w13k4s3p2pe0d2",
           "bwd_data_n2c4h9k6r3st2p0pe1", "bwd_weight_n2c4h9k6r3p1pe2b1",
           "deconv_n2c4h6k6r3st2p1pe2", "maxpool_n2c3h9r3st2pe1", "avgpool_n2c3h9r3st2pe1ci0",
           "bwd_data_avgpool_n2c3w11s3st2pe1", "maxpool_n2c3w12s2",
           # 3-D and channels last, natively (direct, im2col, their backward and transposed)
           "n2c4id5h6k6r3st2p1b1", "bwd_data_n2c4id5h6k6r3st2p1", "bwd_weight_n2c4id4h5k6r3p1b1",
           "deconv_n2c4id4h5k6r3st2p1op1", "nhwc_n2c4id5h6k6r2d2",
           "bwd_weight_nhwc_n2c4h9k6r3st2p1g2b1",
           "bwd_data_nhwc_n2c4w11k6s3st2p1", "nhwc_deconv_n2c4h5k6r4st2p1",
           # 3-D Winograd (winograd_nd: per-axis transforms), square and mixed kernels
           "n2c4id6h7w8k5r3p1b1", "n1c3id5h6k4kd1r3p1", "n1c4id9h9k4r5p2g2", "n2c4id5h5k4r2",
           "bwd_data_n2c4id6h7k5r3p1"]


@pytest.mark.parametrize("descriptor", BRIDGED)
def test_every_algorithm_that_takes_a_bridged_problem_matches_the_oracle(descriptor: str):
    p = parse(descriptor)
    inputs = oracle.make_inputs(p)
    ref = oracle.reference(p, inputs)
    ran = []
    for algorithm in registry.all_algorithms(p.op):
        if algorithm.why_not(p, "numpy"):
            continue
        result = algorithm.run(p, *inputs.arrays)
        check = oracle.check_algorithm(p, result, ref, algorithm)
        assert check.ok, (algorithm.name, check)
        ran.append(algorithm.name)
    assert len(ran) >= 2, ran


def test_channels_last_inputs_and_results_stay_channels_last() -> None:
    p = parse("nhwc_n2c4h9k6r3st2p1")
    x, w, _ = oracle.make_inputs(p).arrays
    assert np.moveaxis(x, 1, -1).flags.c_contiguous  # the activations lie channels last
    ref = oracle.reference(p, oracle.make_inputs(p)).outputs[0]
    for name in ("direct", "im2col", "torch"):
        y = registry.get("conv2d", name).run(p, x, w, None)
        assert np.moveaxis(y, 1, -1).flags.c_contiguous, name
        np.testing.assert_allclose(y, ref, atol=1e-5)
    reason = registry.get("conv2d", "winograd_f4x3").why_not(parse("nhwc_n2c4id5h6k6r3p1"))
    assert reason and "channels-last memory in 2-D only" in reason


@pytest.mark.parametrize("name", ["winograd_f2x3", "winograd_f4x3", "winograd_f6x3"])
@pytest.mark.parametrize("descriptor", ["nhwc_n2c8h13k6r3p1b1", "nhwc_n3c16h7w9k8r3p1",
                                        "nhwc_n1c6h8k4r3p1g2", "nhwc_n2c4h9w10k6r3pe1"])
def test_winograd_runs_channels_last_without_a_layout_change(descriptor: str, name: str):
    """The channels-last pipeline (winograd_nhwc): NHWC in, NHWC out, within the family's
    tolerance floor (a 3-D input, its stride-1 path being channels-first, is refused with
    the reason); its prepared filters give the same result."""
    p = parse(descriptor)
    inputs = oracle.make_inputs(p, seed=7)
    algorithm = registry.get("conv2d", name)
    assert algorithm.why_not(p) is None
    y = algorithm.run(p, *inputs.arrays)
    assert np.moveaxis(y, 1, -1).flags.c_contiguous and y.shape == p.output_shape
    check = oracle.check_algorithm(p, y, oracle.reference(p, inputs), algorithm)
    assert check.ok, check
    state = algorithm.prepared(p, *inputs.arrays)
    np.testing.assert_array_equal(algorithm.run(p, *inputs.arrays, prepared=state), y)


def test_a_suites_layouts_make_one_case_per_layout() -> None:
    suite = load_suite("resnet50_nhwc")
    names = [c.name for c in suite.cases]
    assert len(names) == 46 and names[0].endswith("_nchw") and names[1].endswith("_nhwc")
    assert {c.problem.layout for c in suite.cases} == {"nchw", "nhwc"}


@pytest.mark.parametrize("name, ranks", [("conv1d", {1}), ("conv3d", {3}),
                                         ("tf_same", {2}), ("resnet50_nhwc", {2})])
def test_the_new_suites_load(name: str, ranks: set[int]) -> None:
    suite = load_suite(name)
    assert {c.problem.rank for c in suite.cases} == ranks
    if name == "tf_same":
        assert sum(not c.problem.symmetric for c in suite.cases) >= 8


EXACT = ["n2c4w11k6s3st2p1", "n2c4id5h6k6r3st2p1b1", "nhwc_n2c4h9k6r3st2p1g2",
         "bwd_data_n2c4id5h6k6r3st2p1", "bwd_weight_nhwc_n2c4id4h5k6r3p1b1",
         "deconv_n2c4id4h5k6r3st2p1op1", "n2c4h9w10k6r3st2pe1"]


@pytest.mark.parametrize("descriptor", EXACT)
def test_the_direct_methods_are_exact_at_every_rank_and_layout(descriptor: str) -> None:
    """Exactness mode (integer-valued inputs whose every partial sum is representable): the
    direct methods, and im2col, match the oracle bit for bit, natively or bridged."""
    p = parse(descriptor)
    assert oracle.exact_mode_fits(p)
    inputs = oracle.make_inputs(p, exact=True)
    ref = oracle.reference(p, inputs)
    exact = [a for a in registry.all_algorithms(p.op) if a.exact and not a.why_not(p)]
    assert {"direct", "im2col"} <= {a.name for a in exact}
    for algorithm in exact:
        check = oracle.check(p, algorithm.run(p, *inputs.arrays), ref, exact=True)
        assert check.ok, (algorithm.name, check)


def test_torch_im2col_runs_torchs_own_im2col_not_onednn() -> None:
    """The production counterpart of im2col: aten's unfold + GEMM kernels, oneDNN off for the
    call and back on after it."""
    torch = pytest.importorskip("torch")
    p = parse("n2c16h20k16r3p1")
    x, w, _ = oracle.make_inputs(p).arrays
    algorithm = registry.get("conv2d", "torch_im2col")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        algorithm.run(p, x, w, None)
    names = {event.name for event in profile.events()}
    assert "aten::_slow_conv2d_forward" in names and not any("mkldnn" in n for n in names)
    assert torch._C._get_mkldnn_enabled()
