"""Shape math, counts, normalisation and validation of ConvProblem / PoolProblem.

Every expected number below is worked out by hand in the comment beside it; none is computed
with the formula under test.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from convbench.problems import ConvProblem, PoolProblem, conv_out_size, dilated_extent
from convbench.problems.transpose import ConvTransposeProblem


CONV = dict(n=1, c=3, h=8, w=8, k=4, r=3, s=3)


def conv(**kw) -> ConvProblem:
    """A ConvProblem with small defaults, overridden by keyword."""
    fields = dict(CONV)
    fields.update(kw)
    return ConvProblem(**fields)


def pool(**kw) -> PoolProblem:
    fields = dict(kind="max", n=1, c=2, h=8, w=8, r=2, s=2)
    fields.update(kw)
    return PoolProblem(**fields)


# --- convolution output size ----------------------------------------------------------------

# (I, K, S, P, D, expected O), O = floor((I + 2P - D(K-1) - 1) / S) + 1, worked by hand.
CONV_SIZES = [
    (224, 7, 2, 3, 1, 112),  # ResNet-50 conv1: (224 + 6 - 6 - 1)/2 = 223/2 = 111.5 -> 111, +1 = 112
    (56, 3, 1, 1, 1, 56),  # (56 + 2 - 2 - 1)/1 = 55, +1 = 56
    (56, 1, 2, 0, 1, 28),  # (56 + 0 - 0 - 1)/2 = 55/2 = 27.5 -> 27, +1 = 28
    (32, 3, 1, 2, 2, 32),  # (32 + 4 - 2*2 - 1)/1 = 31, +1 = 32
    (227, 11, 4, 0, 1, 55),  # AlexNet conv1: (227 - 10 - 1)/4 = 216/4 = 54, +1 = 55
    (7, 3, 2, 0, 1, 3),  # (7 - 2 - 1)/2 = 4/2 = 2, +1 = 3
    (8, 3, 2, 1, 1, 4),  # (8 + 2 - 2 - 1)/2 = 7/2 = 3.5 -> 3, +1 = 4
    (13, 3, 3, 0, 1, 4),  # (13 - 2 - 1)/3 = 10/3 = 3.33 -> 3, +1 = 4
    (10, 3, 1, 0, 3, 4),  # (10 - 3*2 - 1)/1 = 3, +1 = 4
    (5, 5, 1, 0, 1, 1),  # kernel == input: (5 - 4 - 1)/1 = 0, +1 = 1
    (1, 1, 1, 0, 1, 1),  # (1 - 0 - 1)/1 = 0, +1 = 1
    (9, 4, 2, 1, 1, 4),  # even kernel, odd size: (9 + 2 - 3 - 1)/2 = 7/2 = 3.5 -> 3, +1 = 4
    (15, 3, 2, 2, 3, 7),  # (15 + 4 - 3*2 - 1)/2 = 12/2 = 6, +1 = 7
]


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, expected", CONV_SIZES)
def test_conv_out_size_hand_computed(size, kernel, stride, padding, dilation, expected):
    assert conv_out_size(size, kernel, stride, padding, dilation) == expected
    p = ConvProblem(
        n=1, c=1, h=size, w=size, k=1, r=kernel, s=kernel,
        stride=stride, padding=padding, dilation=dilation,
    )
    assert (p.out_h, p.out_w) == (expected, expected)
    assert p.output_shape == (1, 1, expected, expected)


def test_resnet50_conv1_shapes():
    p = ConvProblem(n=8, c=3, h=224, w=224, k=64, r=7, s=7, stride=2, padding=3)
    assert p.input_shape == (8, 3, 224, 224)
    assert p.weight_shape == (64, 3, 7, 7)
    assert p.output_shape == (8, 64, 112, 112)


def test_non_square_kernel_stride_padding():
    p = ConvProblem(n=2, c=3, h=17, w=10, k=8, r=3, s=5, stride=(2, 1), padding=(1, 2))
    # height: (17 + 2 - 2 - 1)/2 = 16/2 = 8, +1 = 9
    # width:  (10 + 4 - 4 - 1)/1 = 9, +1 = 10
    assert p.output_shape == (2, 8, 9, 10)
    assert p.weight_shape == (8, 3, 3, 5)


def test_non_square_dilation():
    p = ConvProblem(n=1, c=1, h=20, w=20, k=1, r=3, s=3, dilation=(1, 4))
    # height: extent 3, (20 - 2 - 1)/1 = 17, +1 = 18
    # width:  extent 4*2 + 1 = 9, (20 - 8 - 1)/1 = 11, +1 = 12
    assert (p.out_h, p.out_w) == (18, 12)


def test_odd_sizes_even_kernel_unequal_strides():
    p = ConvProblem(n=1, c=1, h=7, w=9, k=1, r=2, s=4, stride=(3, 2))
    # height: (7 - 1 - 1)/3 = 5/3 = 1.67 -> 1, +1 = 2
    # width:  (9 - 3 - 1)/2 = 5/2 = 2.5 -> 2, +1 = 3
    assert (p.out_h, p.out_w) == (2, 3)


@pytest.mark.parametrize(
    "kernel, dilation, expected",
    [
        (3, 1, 3),  # 1*(3-1) + 1 = 3
        (3, 2, 5),  # 2*(3-1) + 1 = 5
        (7, 3, 19),  # 3*(7-1) + 1 = 19
        (1, 5, 1),  # 5*(1-1) + 1 = 1
        (2, 4, 5),  # 4*(2-1) + 1 = 5
    ],
)
def test_dilated_extent(kernel, dilation, expected):
    assert dilated_extent(kernel, dilation) == expected


def test_kernel_extent_per_axis():
    p = ConvProblem(n=1, c=1, h=20, w=20, k=1, r=3, s=5, dilation=(2, 3))
    # r: 2*(3-1) + 1 = 5; s: 3*(5-1) + 1 = 13
    assert p.kernel_extent == (5, 13)


# --- counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, params_no_bias, params_bias",
    [
        # ResNet conv1: 3*7*7 = 147 per filter; 147*64 = 9408; (147 + 1)*64 = 9472
        (dict(n=1, c=3, h=224, w=224, k=64, r=7, s=7, stride=2, padding=3), 9408, 9472),
        # 3x3 64->64: 64*9 = 576; 576*64 = 36864; 577*64 = 36928
        (dict(n=1, c=64, h=56, w=56, k=64, r=3, s=3, padding=1), 36864, 36928),
        # depthwise c=k=g=32: 1*9 = 9; 9*32 = 288; 10*32 = 320
        (dict(n=1, c=32, h=112, w=112, k=32, r=3, s=3, padding=1, groups=32), 288, 320),
        # groups 2, c8 k6: C/g = 4, 4*3*3 = 36; 36*6 = 216; 37*6 = 222
        (dict(n=1, c=8, h=8, w=8, k=6, r=3, s=3, groups=2), 216, 222),
        # 1x1 with non-square fields: c16 k32 r1s1: 16*32 = 512; 17*32 = 544
        (dict(n=1, c=16, h=7, w=9, k=32, r=1, s=1), 512, 544),
    ],
)
def test_params(fields, params_no_bias, params_bias):
    assert ConvProblem(**fields).params == params_no_bias
    assert ConvProblem(**fields, bias=True).params == params_bias


def test_resnet50_conv1_macs_and_flops():
    p = ConvProblem(n=1, c=3, h=224, w=224, k=64, r=7, s=7, stride=2, padding=3)
    # outputs: 64*112*112 = 64*12544 = 802816; per output 3*7*7 = 147 MACs
    # 802816*147 = 80281600 + 37732352 = 118013952
    assert p.macs == 118_013_952
    assert p.flops == 236_027_904  # 2*118013952
    pb = ConvProblem(n=1, c=3, h=224, w=224, k=64, r=7, s=7, stride=2, padding=3, bias=True)
    assert pb.macs == 118_013_952
    assert pb.bias_flops == 802_816  # one add per output element
    assert pb.flops == 236_830_720  # 236027904 + 802816


# Small case: n2 c3 h5 w5 k4 r3, no padding -> output 3x3 ((5 - 2 - 1)/1 + 1 = 3).
# input 2*3*5*5 = 150, weights 4*3*3*3 = 108, bias 4, output 2*4*3*3 = 72.
# MACs = 72 outputs * 27 = 1944; FLOPs = 3888 (+72 bias adds = 3960).
@pytest.mark.parametrize(
    "dtype, bias, flops, bytes_moved",
    [
        ("float32", False, 3888, 1320),  # (150 + 108 + 72) = 330 elements * 4
        ("float64", False, 3888, 2640),  # 330 * 8
        ("float32", True, 3960, 1336),  # (150 + 108 + 4 + 72) = 334 * 4
        ("float64", True, 3960, 2672),  # 334 * 8
    ],
)
def test_small_counts_bytes_intensity(dtype, bias, flops, bytes_moved):
    p = ConvProblem(n=2, c=3, h=5, w=5, k=4, r=3, s=3, bias=bias, dtype=dtype)
    assert p.output_shape == (2, 4, 3, 3)
    assert p.macs == 1944
    assert p.flops == flops
    assert p.itemsize == (4 if dtype == "float32" else 8)
    assert p.bytes_moved == bytes_moved
    assert p.intensity == pytest.approx(flops / bytes_moved)


def test_small_intensity_literal():
    p = ConvProblem(n=2, c=3, h=5, w=5, k=4, r=3, s=3)
    # 3888 / 1320 = 2.94545...
    assert p.intensity == pytest.approx(2.945454545)


def test_mobilenet_depthwise():
    p = ConvProblem(n=1, c=32, h=112, w=112, k=32, r=3, s=3, padding=1, groups=32)
    assert p.weight_shape == (32, 1, 3, 3)  # C/g = 32/32 = 1
    assert p.output_shape == (1, 32, 112, 112)  # (112 + 2 - 2 - 1)/1 + 1 = 112
    assert p.reduction_length == 9  # 1*3*3
    assert p.params == 288  # 9*32
    # 32*112*112 = 32*12544 = 401408 outputs, 9 MACs each = 3612672
    assert p.macs == 3_612_672
    assert p.flops == 7_225_344  # 2*3612672
    # input 401408 + output 401408 + weights 288 = 803104 elements; *4 = 3212416
    assert p.bytes_moved == 3_212_416
    assert p.intensity == pytest.approx(7_225_344 / 3_212_416)


def test_grouped_conv_shapes():
    p = ConvProblem(n=1, c=8, h=8, w=8, k=6, r=3, s=3, groups=2)
    assert p.weight_shape == (6, 4, 3, 3)  # (K, C/g = 8/2, R, S)
    assert p.reduction_length == 36  # 4*3*3
    # outputs 6*6*6 = 216 ((8 - 2 - 1)/1 + 1 = 6); 216*36 = 7776
    assert p.macs == 7776


# --- pooling output size ---------------------------------------------------------------------

# (I, K, S, P, D, expected floor mode, expected ceil mode)
POOL_SIZES = [
    # ResNet maxpool: span 112 + 2 - 3 = 111; floor 111/2 = 55 -> 56; ceil 56 -> 57;
    # last start (57-1)*2 = 112 < 112 + 1 = 113, kept
    (112, 3, 2, 1, 1, 56, 57),
    # span 5 - 2 = 3; floor 3/2 -> 1, +1 = 2; ceil 2, +1 = 3; last start 4 < 5, kept
    (5, 2, 2, 0, 1, 2, 3),
    # span 8 - 3 = 5; floor 2 + 1 = 3; ceil 3 + 1 = 4; last start 6 < 8, kept
    (8, 3, 2, 0, 1, 3, 4),
    # torch's rule: span 3 + 2 - 2 = 3; floor 1 + 1 = 2; ceil 2 + 1 = 3, but the last window
    # would start at (3-1)*2 = 4 >= 3 + 1 = 4 (entirely in the right padding): dropped -> 2
    (3, 2, 2, 1, 1, 2, 2),
    # span 6 + 2 - 3 = 5; floor 5/4 -> 1, +1 = 2; ceil 2 + 1 = 3; last start 8 >= 6 + 1: -> 2
    (6, 3, 4, 1, 1, 2, 2),
    # span divisible: 8 - 2 = 6; 6/2 = 3, +1 = 4 in both modes
    (8, 2, 2, 0, 1, 4, 4),
    # dilated: extent 2*2 + 1 = 5; span 9 + 2 - 5 = 6; 6/1 + 1 = 7 in both modes
    (9, 3, 1, 1, 2, 7, 7),
    # dilated: extent 5; span 10 - 5 = 5; floor 5/2 -> 2, +1 = 3; ceil 3 + 1 = 4; 6 < 10, kept
    (10, 3, 2, 0, 2, 3, 4),
]


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, floor_o, ceil_o", POOL_SIZES)
def test_pool_out_size_hand_computed(size, kernel, stride, padding, dilation, floor_o, ceil_o):
    for ceil_mode, expected in ((False, floor_o), (True, ceil_o)):
        p = pool(
            h=size, w=size, r=kernel, s=kernel, stride=stride, padding=padding,
            dilation=dilation, ceil_mode=ceil_mode,
        )
        assert (p.out_h, p.out_w) == (expected, expected)
        assert p.output_shape == (1, 2, expected, expected)


def test_pool_stride_defaults_to_window():
    p = pool(h=8, w=9, r=2, s=3)
    assert p.stride == (2, 3)
    # height (8 - 2)/2 = 3, +1 = 4; width (9 - 3)/3 = 2, +1 = 3
    assert p.output_shape == (1, 2, 4, 3)
    assert p.params == 0


def _torch_pool_shape(kind, size, kernel, stride, padding, dilation, ceil_mode):
    x = torch.zeros(1, 1, size, size)
    if kind == "max":
        y = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    else:
        y = F.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
    return tuple(y.shape[2:])


# A small grid, restricted to padding <= kernel // 2 (torch's pad rule, on the undilated kernel;
# see test_pool_padding_rule_matches_torch_with_dilation for the dilated case).
POOL_GRID = [
    (kind, size, kernel, stride, padding, dilation, ceil_mode)
    for kind in ("max", "avg")
    for size in (1, 2, 3, 4, 5, 7, 8)
    for kernel in (1, 2, 3)
    for stride in (1, 2, 3)
    for padding in range(kernel // 2 + 1)
    for dilation in ((1, 2) if kind == "max" else (1,))
    for ceil_mode in (False, True)
]


def test_pool_shapes_match_torch_on_a_grid():
    """Where both accept, the shapes agree; whatever torch rejects, convbench rejects too.

    convbench is deliberately stricter in one place: a window larger than the padded input is
    an error, where torch's ceil mode (stride > 1) still produces one clipped window.
    """
    mismatches = []
    for kind, size, kernel, stride, padding, dilation, ceil_mode in POOL_GRID:
        args = dict(
            kind=kind, n=1, c=1, h=size, w=size, r=kernel, s=kernel, stride=stride,
            padding=padding, dilation=dilation, ceil_mode=ceil_mode,
        )
        try:
            expected = _torch_pool_shape(kind, size, kernel, stride, padding, dilation, ceil_mode)
        except RuntimeError:
            expected = None
        try:
            p = PoolProblem(**args)
            got = (p.out_h, p.out_w)
        except ValueError:
            got = None
        extent = dilation * (kernel - 1) + 1
        stricter = got is None and expected is not None and extent > size + 2 * padding
        if got != expected and not stricter:
            mismatches.append((args, got, expected))
    assert not mismatches, mismatches[:5]


def test_pool_padding_rule_matches_torch_with_dilation():
    # torch checks pad <= kernel_size // 2 on the *undilated* kernel: 3 // 2 = 1, so pad 2 is
    # rejected even though the dilated window extent is 2*(3-1) + 1 = 5.
    with pytest.raises(RuntimeError, match="pad should be smaller than or equal to half"):
        F.max_pool2d(torch.zeros(1, 1, 9, 9), 3, 1, 2, 2)
    with pytest.raises(ValueError, match="padding"):
        pool(h=9, w=9, r=3, s=3, stride=1, padding=2, dilation=2)


# --- normalisation ---------------------------------------------------------------------------


def test_ints_become_pairs():
    p = conv(stride=2, padding=1, dilation=1)
    assert (p.stride, p.padding, p.dilation) == ((2, 2), (1, 1), (1, 1))
    q = conv(stride=[2, 1], padding=(0, 1))
    assert (q.stride, q.padding) == ((2, 1), (0, 1))
    assert conv(stride=2) == conv(stride=(2, 2))
    assert hash(conv(stride=2)) == hash(conv(stride=(2, 2)))
    pp = pool(stride=1, padding=1, dilation=2)
    assert (pp.stride, pp.padding, pp.dilation) == ((1, 1), (1, 1), (2, 2))


def test_bias_normalised_to_bool():
    assert conv(bias=1).bias is True
    assert conv(bias=0).bias is False


@pytest.mark.parametrize(
    "r, s, dilation, expected",
    [
        (3, 3, 1, (1, 1)),  # (3 - 1)/2 = 1
        (3, 5, 1, (1, 2)),  # (3 - 1)/2 = 1, (5 - 1)/2 = 2
        (1, 1, 1, (0, 0)),  # (1 - 1)/2 = 0
        (7, 7, 1, (3, 3)),  # (7 - 1)/2 = 3
        (3, 3, 2, (2, 2)),  # extent 5: (5 - 1)/2 = 2
        (2, 2, 2, (1, 1)),  # even kernel, dilation 2: extent 2*1 + 1 = 3, (3 - 1)/2 = 1
    ],
)
def test_same_padding(r, s, dilation, expected):
    p = conv(h=16, w=16, r=r, s=s, dilation=dilation, padding="same")
    assert p.padding == expected
    assert (p.out_h, p.out_w) == (16, 16)  # 'same' keeps the size at stride 1


def test_valid_padding():
    p = conv(h=8, w=8, r=3, s=3, padding="valid")
    assert p.padding == (0, 0)
    assert (p.out_h, p.out_w) == (6, 6)  # (8 - 2 - 1)/1 + 1 = 6


def test_same_padding_with_stride_2_rejected():
    with pytest.raises(ValueError, match=r"padding='same' needs stride 1.*\(2, 2\)"):
        conv(padding="same", stride=2)


@pytest.mark.parametrize("r, s, before, after", [(2, 2, (0, 0), (1, 1)), (3, 4, (1, 1), (1, 2))])
def test_same_padding_with_an_even_kernel_pads_the_odd_pixel_after(r, s, before, after):
    """torch's rule: the total d(K-1) split, the odd pixel at the bottom and right."""
    p = conv(h=9, w=9, r=r, s=s, padding="same")
    assert (p.padding, p.padding_after) == (before, after)
    assert p.out_size == (9, 9) and not p.symmetric


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, pattern",
    [
        ("n", 0, r"\bn must be a positive int, got 0"),
        ("n", -2, r"\bn must be a positive int, got -2"),
        ("n", True, r"\bn must be a positive int, got True"),
        ("c", 0, r"\bc must be a positive int, got 0"),
        ("h", 0, r"\bh must be a positive int, got 0"),
        ("w", 0, r"\bw must be a positive int, got 0"),
        ("k", 0, r"\bk must be a positive int, got 0"),
        ("r", 0, r"\br must be a positive int, got 0"),
        ("s", 2.0, r"\bs must be a positive int, got 2\.0"),
        ("groups", 0, r"groups must be a positive int, got 0"),
        ("stride", 0, r"stride must be >= 1, got 0"),
        ("stride", (1, 0), r"stride must be >= 1, got \(1, 0\)"),
        ("stride", -1, r"stride must be >= 1, got -1"),
        ("stride", 1.5, r"stride must be an int or a pair of ints, got 1\.5"),
        ("stride", (1, 2, 3), r"stride must be an int or a pair of ints, got \(1, 2, 3\)"),
        ("padding", -1, r"padding must be >= 0, got -1"),
        ("padding", (0, -2), r"padding must be >= 0, got \(0, -2\)"),
        ("padding", "bogus", r"padding must be .*got 'bogus'"),
        ("dilation", 0, r"dilation must be >= 1, got 0"),
        ("dtype", "int32", r"dtype must be one of .*got 'int32'"),
        ("dtype", "float16", r"dtype must be one of .*got 'float16'"),
    ],
)
def test_conv_invalid_field(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        conv(**{field: value})


@pytest.mark.parametrize(
    "fields, pattern",
    [
        (dict(c=4, k=6, groups=3), r"groups=3 must divide the input channels C=4"),
        (dict(c=4, k=3, groups=2), r"groups=2 must divide the output channels K=3"),
        # extent 5 > 3 + 2*0
        (dict(h=3, w=8, r=5, s=3), r"kernel height 5 .*padded input height 3 \+ 2\*0"),
        # extent 7 > 4 + 2*1
        (dict(h=8, w=4, r=3, s=7, padding=1), r"kernel width 7 .*padded input width 4 \+ 2\*1"),
        # dilated extent 3*(3-1) + 1 = 7 > 5 + 0
        (dict(h=5, w=5, r=3, s=3, dilation=3), r"kernel height 3 \(dilated extent 7\)"),
    ],
)
def test_conv_invalid_combination(fields, pattern):
    with pytest.raises(ValueError, match=pattern):
        conv(**fields)


def test_kernel_fits_exactly_in_padded_input():
    # extent 5 == 3 + 2*1: allowed, output (3 + 2 - 4 - 1)/1 + 1 = 1
    p = conv(h=3, w=3, r=5, s=5, padding=1)
    assert (p.out_h, p.out_w) == (1, 1)


@pytest.mark.parametrize(
    "fields, pattern",
    [
        (dict(kind="min"), r"kind must be 'max' or 'avg', got 'min'"),
        (dict(n=0), r"\bn must be a positive int, got 0"),
        (dict(r=0), r"\br must be a positive int, got 0"),
        (dict(stride=0), r"stride must be >= 1, got 0"),
        (dict(padding=-1), r"padding must be >= 0, got -1"),
        (dict(dtype="int32"), r"dtype must be one of .*got 'int32'"),
        # window 3: 2*2 = 4 > 3
        (dict(r=3, s=3, padding=2), r"padding=\(2, 2\) must be at most half the window"),
        # window 2: 2*2 = 4 > 2 (on the width axis only)
        (dict(r=3, s=2, padding=(1, 2)), r"padding=\(1, 2\) must be at most half the window"),
        # extent 3 > 2 + 2*0
        (dict(h=2, w=8, r=3, s=3), r"pool window extent 3 is larger than the padded input 2"),
        # dilated extent 2*(2-1) + 1 = 3 > 2 + 0
        (dict(h=8, w=2, r=2, s=2, dilation=2), r"window extent 3 is larger .*input 2"),
        (dict(kind="avg", dilation=2), r"average pooling has no dilation, got dilation=\(2, 2\)"),
    ],
)
def test_pool_invalid(fields, pattern):
    with pytest.raises(ValueError, match=pattern):
        pool(**fields)


# --- frozen ----------------------------------------------------------------------------------


@pytest.mark.parametrize("problem", [conv(), pool()], ids=["conv", "pool"])
@pytest.mark.parametrize("field, value", [("n", 5), ("stride", (3, 3)), ("dtype", "float64")])
def test_frozen(problem, field, value):
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(problem, field, value)



# --- hashing (computed once per object: problems key the algorithms' caches) ---------------

TRANSPOSE = dict(n=2, c=4, h=5, w=5, k=6, r=3, s=3, stride=2)


@pytest.mark.parametrize("make", [conv, pool, lambda: ConvTransposeProblem(**TRANSPOSE)],
                         ids=["conv", "pool", "transpose"])
def test_hash_once_equal_problems(make):
    a, b = make(), make()
    assert a == b and hash(a) == hash(b) and hash(a) == hash(a)
    assert len({a, b}) == 1
    other = dataclasses.replace(a, n=a.n + 1)
    assert other != a and len({a, other}) == 2
    # a problem that differs in a string field only (hashes of str differ between processes)
    assert dataclasses.replace(a, dtype="float64") not in {a}


def test_hash_once_stays_out_of_pickles():
    """A problem hashed here, then sent to a process with another hash seed (as runs send them
    to their timing processes), must hash as that process's own equal problem does."""
    p = conv()
    hash(p)
    assert "_hash" in p.__dict__ and "_hash" not in pickle.loads(pickle.dumps(p)).__dict__
    script = (
        "import pickle, sys\n"
        "from convbench.problems import ConvProblem\n"
        "p = pickle.loads(sys.stdin.buffer.read())\n"
        f"fresh = ConvProblem(**{CONV!r})\n"
        "print(hash(p) == hash(fresh) and p in {fresh: 1})\n")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(p), env=env,
                         capture_output=True, check=True).stdout
    assert out.strip() == b"True"
