"""Descriptors: parsing examples, the canonical form, the round trip, and malformed input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convbench.problems.descriptor import format_descriptor, parse
from convbench.problems import ConvProblem, PoolProblem

# --- parsing examples ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "n8c64h56k64r3p1",
            ConvProblem(n=8, c=64, h=56, w=56, k=64, r=3, s=3, padding=(1, 1)),
        ),
        # n defaults to 1, w to h, s to r, stride 1, padding 0, dilation 1, float32, no bias
        ("c3h10k4r3", ConvProblem(n=1, c=3, h=10, w=10, k=4, r=3, s=3)),
        ("c3h10w12k4r3s5", ConvProblem(n=1, c=3, h=10, w=12, k=4, r=3, s=5)),
        ("c3h224k64r7st2p3", ConvProblem(1, 3, 224, 224, 64, 7, 7, stride=(2, 2), padding=(3, 3))),
        ("c3h10k4r3sh2sw1", ConvProblem(1, 3, 10, 10, 4, 3, 3, stride=(2, 1))),
        ("c3h10k4r3sh2", ConvProblem(1, 3, 10, 10, 4, 3, 3, stride=(2, 1))),  # sw default 1
        ("c3h10k4r3sw3", ConvProblem(1, 3, 10, 10, 4, 3, 3, stride=(1, 3))),  # sh default 1
        ("c3h10k4r3ph1pw2", ConvProblem(1, 3, 10, 10, 4, 3, 3, padding=(1, 2))),
        ("c3h10k4r3ph1", ConvProblem(1, 3, 10, 10, 4, 3, 3, padding=(1, 0))),  # pw default 0
        ("c3h20k4r3d2", ConvProblem(1, 3, 20, 20, 4, 3, 3, dilation=(2, 2))),
        ("c3h20k4r3dh2dw3", ConvProblem(1, 3, 20, 20, 4, 3, 3, dilation=(2, 3))),
        ("c3h20k4r3dw2", ConvProblem(1, 3, 20, 20, 4, 3, 3, dilation=(1, 2))),  # dh default 1
        ("c4h8k8r3g2", ConvProblem(1, 4, 8, 8, 8, 3, 3, groups=2)),
        ("c32h112k32r3p1g32", ConvProblem(1, 32, 112, 112, 32, 3, 3, padding=1, groups=32)),
        ("c3h8k4r3b1", ConvProblem(1, 3, 8, 8, 4, 3, 3, bias=True)),
        ("c3h8k4r3b0", ConvProblem(1, 3, 8, 8, 4, 3, 3, bias=False)),
        ("c3h8k4r3f64", ConvProblem(1, 3, 8, 8, 4, 3, 3, dtype="float64")),
        ("c3h8k4r3f32", ConvProblem(1, 3, 8, 8, 4, 3, 3, dtype="float32")),
        ("  n2c3h8k4r3  ", ConvProblem(2, 3, 8, 8, 4, 3, 3)),  # surrounding blanks stripped
        ("r3k4h8c3n2", ConvProblem(2, 3, 8, 8, 4, 3, 3)),  # key order is free
        ("n02c3h8k4r3", ConvProblem(2, 3, 8, 8, 4, 3, 3)),  # leading zeros are just digits
    ],
)
def test_parse_conv(text, expected):
    got = parse(text)
    assert isinstance(got, ConvProblem)
    assert got == expected


def test_parse_resnet_block_fields():
    p = parse("n8c64h56k64r3p1")
    assert (p.n, p.c, p.h, p.w, p.k, p.r, p.s) == (8, 64, 56, 56, 64, 3, 3)
    assert (p.stride, p.padding, p.dilation) == ((1, 1), (1, 1), (1, 1))
    assert (p.groups, p.bias, p.dtype) == (1, False, "float32")
    assert p.output_shape == (8, 64, 56, 56)  # (56 + 2 - 2 - 1)/1 + 1 = 56


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "maxpool_n1c64h112r3st2p1",
            PoolProblem("max", 1, 64, 112, 112, 3, 3, stride=(2, 2), padding=(1, 1)),
        ),
        # stride defaults to the window
        ("maxpool_c3h8r2", PoolProblem("max", 1, 3, 8, 8, 2, 2, stride=(2, 2))),
        ("avgpool_c3h8w9r2s3", PoolProblem("avg", 1, 3, 8, 9, 2, 3, stride=(2, 3))),
        ("avgpool_c3h7r2cm1", PoolProblem("avg", 1, 3, 7, 7, 2, 2, ceil_mode=True)),
        ("avgpool_c3h7r2ci0", PoolProblem("avg", 1, 3, 7, 7, 2, 2, count_include_pad=False)),
        (
            "avgpool_c3h7r2cm1ci0",
            PoolProblem("avg", 1, 3, 7, 7, 2, 2, ceil_mode=True, count_include_pad=False),
        ),
        ("avgpool_c3h7r2cm0ci1", PoolProblem("avg", 1, 3, 7, 7, 2, 2)),
        ("maxpool_c1h9r3st1d2", PoolProblem("max", 1, 1, 9, 9, 3, 3, stride=1, dilation=2)),
        ("maxpool_c1h9r3sh1sw2", PoolProblem("max", 1, 1, 9, 9, 3, 3, stride=(1, 2))),
        ("maxpool_c1h9r3f64", PoolProblem("max", 1, 1, 9, 9, 3, 3, dtype="float64")),
    ],
)
def test_parse_pool(text, expected):
    got = parse(text)
    assert isinstance(got, PoolProblem)
    assert got == expected


def test_parse_pool_with_only_sh_defaults_sw_to_the_window():
    # The key table: stride's default when omitted is the window (pool), as 1 is for conv, where
    # "sh2" alone gives stride (2, 1). So for a 3x5 window, "sh2" alone should give (2, 5).
    p = parse("maxpool_c1h20r3s5sh2")
    assert p.stride == (2, 5)


# --- canonical form --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "problem, text",
    [
        (ConvProblem(8, 64, 56, 56, 64, 3, 3, padding=1), "n8c64h56k64r3p1"),
        (ConvProblem(1, 3, 224, 224, 64, 7, 7, stride=2, padding=3), "n1c3h224k64r7st2p3"),
        (ConvProblem(1, 3, 10, 10, 4, 3, 3), "n1c3h10k4r3"),
        (ConvProblem(1, 3, 10, 10, 4, 3, 3, stride=1, padding=0, dilation=1), "n1c3h10k4r3"),
        (ConvProblem(1, 3, 10, 10, 4, 3, 3, padding="same"), "n1c3h10k4r3p1"),
        (
            ConvProblem(
                2, 4, 10, 12, 6, 3, 5, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2,
                bias=True, dtype="float64",
            ),
            "n2c4h10w12k6r3s5sh2sw1ph1pw2dh1dw2g2b1f64",
        ),
        (ConvProblem(1, 32, 112, 112, 32, 3, 3, padding=1, groups=32), "n1c32h112k32r3p1g32"),
        (PoolProblem("max", 1, 64, 112, 112, 3, 3, stride=2, padding=1), "maxpool_n1c64h112r3st2p1"),
        (PoolProblem("max", 1, 1, 9, 9, 3, 3, stride=3), "maxpool_n1c1h9r3"),  # stride == window
        (PoolProblem("max", 1, 1, 9, 9, 3, 3, stride=1, dilation=2), "maxpool_n1c1h9r3st1d2"),
        (
            PoolProblem("avg", 2, 3, 7, 9, 2, 3, ceil_mode=True, count_include_pad=False),
            "avgpool_n2c3h7w9r2s3cm1ci0",
        ),
        (PoolProblem("avg", 1, 3, 8, 8, 2, 2, stride=(1, 2), dtype="float64"),
         "avgpool_n1c3h8r2sh1sw2f64"),
    ],
)
def test_canonical_str(problem, text):
    assert str(problem) == text
    assert format_descriptor(problem) == text
    assert parse(text) == problem


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("r3k4h8c3", "n1c3h8k4r3"),
        ("c3h8w8k4r3s3st1p0d1g1b0f32", "n1c3h8k4r3"),
        ("c3h8k4r3sh2sw2", "n1c3h8k4r3st2"),
        ("maxpool_c3h8r2st2cm0ci1", "maxpool_n1c3h8r2"),
    ],
)
def test_parse_then_format_is_canonical(text, canonical):
    assert str(parse(text)) == canonical


# --- round trip (property) -------------------------------------------------------------------

_small = st.integers(1, 4)


@st.composite
def conv_problems(draw) -> ConvProblem:
    """Only valid ConvProblems: groups divide C and K, the kernel fits the padded input."""
    groups = draw(st.integers(1, 4))
    c = groups * draw(_small)
    k = groups * draw(_small)
    r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    # smallest input that the (dilated) kernel fits once padded: d(K-1)+1 <= I + 2P
    h = draw(st.integers(max(1, dh * (r - 1) + 1 - 2 * ph), 40))
    w = draw(st.integers(max(1, dw * (s - 1) + 1 - 2 * pw), 40))
    stride = draw(st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    return ConvProblem(
        n=draw(st.integers(1, 64)), c=c, h=h, w=w, k=k, r=r, s=s, stride=stride,
        padding=(ph, pw), dilation=(dh, dw), groups=groups, bias=draw(st.booleans()),
        dtype=draw(st.sampled_from(["float32", "float64"])),
    )


@st.composite
def pool_problems(draw) -> PoolProblem:
    """Only valid PoolProblems: padding at most half the window, window fits the padded input."""
    kind = draw(st.sampled_from(["max", "avg"]))
    r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dh, dw = (1, 1) if kind == "avg" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    eh, ew = dh * (r - 1) + 1, dw * (s - 1) + 1
    ph, pw = draw(st.integers(0, r // 2)), draw(st.integers(0, s // 2))  # torch: <= window // 2
    h = draw(st.integers(max(1, eh - 2 * ph), 40))
    w = draw(st.integers(max(1, ew - 2 * pw), 40))
    stride = draw(
        st.one_of(
            st.none(), st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4))
        )
    )
    return PoolProblem(
        kind=kind, n=draw(st.integers(1, 64)), c=draw(st.integers(1, 64)), h=h, w=w, r=r, s=s,
        stride=stride, padding=(ph, pw), dilation=(dh, dw), ceil_mode=draw(st.booleans()),
        count_include_pad=draw(st.booleans()),
        dtype=draw(st.sampled_from(["float32", "float64"])),
    )


@settings(max_examples=200, deadline=None, database=None)
@given(conv_problems())
def test_conv_round_trip(p):
    text = str(p)
    assert parse(text) == p
    assert str(parse(text)) == text


@settings(max_examples=200, deadline=None, database=None)
@given(pool_problems())
def test_pool_round_trip(p):
    text = str(p)
    assert text.startswith(f"{p.kind}pool_")
    assert parse(text) == p
    assert str(parse(text)) == text


# --- malformed -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("", r"descriptor '': cannot read ''"),
        ("   ", r"descriptor '': cannot read ''"),
        ("n8c64", r"descriptor 'n8c64': missing h \(or w alone for a 1-D problem\)"),
        ("x3", r"descriptor 'x3': unknown key 'x'"),
        ("c3h4k2r3c5", r"descriptor 'c3h4k2r3c5': key 'c' given twice"),
        ("c3h4k2r3f16", r"descriptor 'c3h4k2r3f16': f must be 32 or 64, got 16"),
        ("n8c64h56k64r3p1junk", r"descriptor 'n8c64h56k64r3p1junk': cannot read 'junk'"),
        ("n8 c64h56k64r3", r"cannot read ' c64h56k64r3'"),
        ("n8c64h56k64r3p", r"cannot read 'p'"),
        ("N8C64H56K64R3", r"cannot read 'N8C64H56K64R3'"),
        ("c3h4k2r3b2", r"b must be 0 or 1, got 2"),
        ("c3h8k2r3p1ph1", r"give either 'p' or 'ph'/'pw', not both"),
        ("c3h8k2r3st2sw1", r"give either 'st' or 'sh'/'sw', not both"),
        ("maxpool_c3h8k4r2", r"descriptor 'maxpool_c3h8k4r2': unknown key 'k'"),
        ("maxpool_c3h8r2g2", r"unknown key 'g'"),
        ("avgpool_c3h8r2b1", r"unknown key 'b'"),
        ("maxpool_c3h8", r"descriptor 'maxpool_c3h8': missing r"),
        ("maxpool_", r"descriptor 'maxpool_': cannot read ''"),
        ("avgpool_c3h8r2cm2", r"cm must be 0 or 1, got 2"),
        ("c3h8k4r3cm1", r"unknown key 'cm'"),
        # valid syntax, invalid problem: the problem's own validation speaks
        ("c3h4k2r5", r"kernel height 5 .*padded input height 4"),
        ("c3h8k2r3g2", r"groups=2 must divide the input channels C=3"),
        ("c3h8k4r3st0", r"stride must be >= 1, got \(0, 0\)"),
        ("n0c3h8k4r3", r"\bn must be a positive int, got 0"),
        ("maxpool_c3h8r3p2", r"padding=\(2, 2\) must be at most half the window"),
    ],
)
def test_malformed(text, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse(text)


def test_unknown_key_lists_known_keys():
    with pytest.raises(ValueError, match=re.escape("known: [")) as info:
        parse("c3h8k4r3z1")
    for key in ("n", "c", "h", "k", "st", "dh", "g", "b", "f"):
        assert repr(key) in str(info.value)
