"""benchdnn's descriptors (convbench.problems.benchdnn): benchdnn's own rules and traps (dilation 0
is dense, a pool's stride 1, `n` a name, mb 2, an output size that implies the padding after,
the padding derived from it toward zero), the options that change a problem, and repro lines
that read back to the same problem."""

from __future__ import annotations

import pytest

from convbench.problems import ConvProblem, ConvTransposeProblem, PoolProblem
from convbench.problems.benchdnn import (Options, Setting, Unmodelled, is_benchdnn,
                                         parse_descriptor, parse_repro, repro_line, to_problem)
from convbench.run.suite import load_suite


def problem(text: str, driver: str = "conv", **setting: object) -> object:
    return to_problem(parse_descriptor(text, driver), Setting(**setting))  # type: ignore[arg-type]


# --- benchdnn's rules and traps -----------------------------------------------------------------

def test_dilation_0_is_dense_and_d_is_one_more() -> None:
    assert problem("ic4ih9oc4kh3dh0").dilation == (1, 1)
    assert problem("ic4ih9oc4kh3dh1").dilation == (2, 2)  # benchdnn's 1 skips one pixel: d 2
    assert problem("ic4ih9oc4kh3dh1").out_size == (5, 5)  # 9 - 2*(3-1) = 5


def test_defaults_mb_2_and_n_is_a_name() -> None:
    desc = parse_descriptor('ic4ih8oc4kh3n"layer:1"')
    assert (desc.mb, desc.name, desc.groups) == (2, "layer:1", None)
    assert problem('ic4ih8oc4kh3n"layer:1"').n == 2
    assert problem("mb7ic4ih8oc4kh3", mb=3).n == 3  # --mb wins; --mb=0 keeps the descriptor's
    assert problem("mb7ic4ih8oc4kh3", mb=0).n == 7


def test_pool_stride_defaults_to_1_not_the_window() -> None:
    p = problem("mb2ic4ih8kh3", "pool")
    assert isinstance(p, PoolProblem) and p.stride == (1, 1) and p.out_size == (6, 6)


def test_square_cube_and_1d_rules_and_underscores() -> None:
    assert problem("ic4ih8oc4kh3").size == (8, 8)
    assert problem("ic4id8oc4kd3").size == (8, 8, 8)
    assert problem("ic4id8oc4kd3").kernel == (3, 3, 3)
    assert problem("ic4iw8oc4kw3").size == (8,)
    assert problem('mb2_g2ic4oc8_ih8oh8kh3ph1_n"a"').groups == 2
    with pytest.raises(ValueError, match="both h and w"):
        parse_descriptor("ic4id8ih8oc4kd3kh3")


def test_conv_default_direction_is_fwd_with_bias() -> None:
    assert problem("ic4ih8oc4kh3").bias  # FWD_B
    assert not problem("ic4ih8oc4kh3", dir="FWD_D").bias
    back = problem("ic4ih8oc4kh3", dir="BWD_D")
    assert back.direction == "bwd_data" and not back.bias
    assert problem("ic4ih8oc4kh3", dir="BWD_WB").bias
    assert problem("ic4ih8oc4kh3", dir="BWD_W", bia_dt="f32").bias  # --bia-dt adds one


def test_stated_output_implies_the_padding_after() -> None:
    # 13 -> 12 with a 3-window at stride 1 needs 1 pixel of padding after, none before
    p = problem("mb2ic32_ih13oh12_kh3", "pool")
    assert (p.padding, p.padding_after, p.out_size) == ((0, 0), (1, 1), (12, 12))
    # benchdnn's padding after is 2 for ResNet's stem; 3 reads the same pixels: symmetric
    stem = problem("ic3ih224oc64oh112kh7sh2ph3")
    assert stem.padding == stem.padding_after == (3, 3)
    # dilated_conv:11 of shapes_dilated: 2 after on h (1 would give 3 rows), 1 on w
    dilated = problem("mb20ic4ih8iw8oc6oh4ow8kh3kw3sh2sw1ph1pw1dh1dw0")
    assert dilated.padding_after == (2, 1) and dilated.out_size == (4, 8)


def test_padding_derived_from_the_output_rounds_toward_zero() -> None:
    # ((2-1)*2 - 6 + 3) / 2 = -1/2: C makes it 0 (Python's floor would say -1)
    p = problem("ic4ih6oc4oh2kh3sh2")
    assert p.padding == (0, 0) and p.out_size == (2, 2)
    odd = problem("ic4ih8oc4oh9kh3")  # total 3: 1 before, 2 after
    assert (odd.padding, odd.padding_after) == ((1, 1), (2, 2))


def test_an_output_that_cannot_be_met_raises_naming_the_line() -> None:
    with pytest.raises(ValueError, match=r"ic4ih8oc4oh3kh3ph0.*cut off"):
        problem("ic4ih8oc4oh3kh3ph0")  # 8 -> 3 at stride 1 would crop the input
    with pytest.raises(ValueError, match=r"ic1_ih32oh6kh6sh6ph2_iw2ow1kw1sw1pw0"):
        problem("ic1_ih32oh6kh6sh6ph2_iw2ow1kw1sw1pw0", "pool")


@pytest.mark.parametrize("text, says", [
    ("mb2ih8oc4kh3", "ic is not given"), ("ic4ih8kh3", "--pool"), ("ic4ih8oc4", "kh is not"),
    ("ic4ih8oc4kh3xx2", "unrecognised"), ("ic4ih8oc4kh3sh0", "sh must be positive"),
    ("ic4oc4", "no spatial axis"), ("ic4ih2oc4kh5", "oh is not given")])
def test_descriptors_benchdnn_refuses(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as info:
        parse_descriptor(text)
    assert text in str(info.value)


def test_pooling_algorithms() -> None:
    assert problem("ic4ih8oh4kh2sh2", "pool").kind == "max"
    avg_np = problem("ic4ih8oh4kh3sh2ph1", "pool", alg="avg_np")
    assert avg_np.kind == "avg" and not avg_np.count_include_pad
    assert problem("ic4ih8oh4kh3sh2ph1", "pool", alg="avg_p").count_include_pad
    assert problem("ic4ih8oh4kh2sh2", "pool", dir="BWD_D").direction == "bwd_data"


def test_deconv_output_and_its_output_padding() -> None:
    up = problem("ic8ih4oc4oh8kh4sh2ph1", "deconv")
    assert isinstance(up, ConvTransposeProblem) and up.out_size == (8, 8)
    odd = problem("ic8ih4oc4oh9kh3sh2ph1", "deconv")  # one more than 2P allows: output_padding
    assert odd.output_padding == (1, 1) and odd.out_size == (9, 9)
    back = problem("ic8ih4oc4oh8kh4sh2ph1", "deconv", dir="BWD_D")
    assert back == ConvProblem(2, 4, k=8, size=(8, 8), kernel=(4, 4), stride=2, padding=1)


def test_data_types() -> None:
    assert problem("ic4ih8oc4kh3", dt="f64").dtype == "float64"
    assert problem("ic4ih8oc4kh3", dt="f64:f64:f64").dtype == "float64"
    with pytest.raises(Unmodelled, match="bf16"):
        problem("ic4ih8oc4kh3", dt="bf16")


def test_channels_last_tags() -> None:
    assert problem("ic4ih8oc4kh3", tag="axb").layout == "nhwc"
    options = Options().with_option("--stag=axb,aBcd16b")
    assert options.tag == ("axb",) and options.ignored == ("--stag=aBcd16b",)


# --- options and repro lines -----------------------------------------------------------------

def test_options_reset_and_combinations() -> None:
    options = Options()
    for token in ("--dir=FWD_B,BWD_D", "--mb=16", "--attr-post-ops=relu", "--engine=gpu"):
        options = options.with_option(token)
    assert [labels for labels, _ in options.settings()] == [("fwd",), ("bwd_data",)]
    assert options.ignored == ("--attr-post-ops=relu",) and options.common == ("--engine=gpu",)
    reset = options.reset()
    assert reset.dir == (None,) and reset.mb == (0,) and reset.ignored == ()
    assert reset.common == ("--engine=gpu",)  # benchdnn's --reset keeps the global options
    assert options.with_option("--attr-post-ops=").ignored == ()  # the default again
    both = Options().with_option("--dir=FWD_B,FWD_D")
    assert [labels for labels, _ in both.settings()] == [("fwd_b",), ("fwd_d",)]


def test_repro_line_as_benchdnn_prints_it() -> None:
    p = ConvProblem(8, 64, k=64, size=(56, 56), kernel=(3, 3), padding=1, direction="bwd_data")
    assert repro_line(p, "name") == '--conv --dir=BWD_D mb8ic64ih56oc64oh56kh3ph1n"name"'
    avg = PoolProblem("avg", 2, 4, size=(8, 8), kernel=(2, 2), count_include_pad=False)
    assert repro_line(avg) == "--pool --alg=avg_np ic4ih8oh4kh2sh2ph0"
    wide = ConvProblem(1, 3, k=8, size=(8, 16), kernel=(3, 3), dtype="float64", layout="nhwc")
    assert repro_line(wide) == ("--conv --dir=FWD_D --dt=f64 --stag=axb --dtag=axb "
                                "mb1ic3ih8iw16oc8oh6ow14kh3kw3ph0pw0")  # not square: w too


@pytest.mark.parametrize("line", [
    '--conv --dir=BWD_D mb8ic64ih56oc64oh56kh3ph1n"name"',
    "--conv --dir=BWD_WB --dt=f64 g32mb1ic32ih112oc32oh112kh3ph1",
    "--conv mb2ic16ih1iw8oc6oh1kh1kw3sh1pw0ph0sw1dh0dw2",
    "--conv ic3iw224oc64ow112kw7sw2pw3",
    "--conv --stag=axb ic3id16ih112iw112oc64kd3kh3kw3pd1ph1pw1",
    "--pool --alg=avg_p --dir=BWD_D mb96ic64_ih114oh57_kh3sh2ph0",
    "--pool --tag=axb ic16id8ih8iw8od4oh4ow4kd2kh2kw2sd2sh2sw2",
    "--deconv --dir=FWD_D ic8ih4oc4oh9kh3sh2ph1",
    "--deconv g2ic8iw7oc4ow14kw4sw2pw1dw1",
])
def test_repro_lines_read_back_to_the_same_problem(line: str) -> None:
    first = parse_repro(line)
    (p,) = first.problems
    again = parse_repro(repro_line(p, first.name))
    assert again.problems == (p,) and again.name == first.name


def test_every_shipped_suite_problem_has_a_repro_line_that_reads_back() -> None:
    for name in ("resnet50", "pooling", "transposed", "conv1d", "conv3d", "tf_same", "backward"):
        for case in load_suite(name).cases:
            p = case.problem
            if isinstance(p, PoolProblem) and (p.divisor_override or p.ceil_mode):
                continue  # no divisor_override in benchdnn; ceil mode reads back as its padding
            (back,) = parse_repro(repro_line(p)).problems
            assert back.out_size == p.out_size and back.input_shape == p.input_shape, case.name
            assert (back.kernel, back.stride, back.padding) == (p.kernel, p.stride, p.padding)


def test_benchdnn_syntax_is_told_from_convbenchs() -> None:
    assert is_benchdnn('mb96ic3ih227oc96oh55kh11sh4ph0n"alexnet:conv1"')
    assert is_benchdnn("--pool mb1ic8ih4kh2") and is_benchdnn("g2_ic4oc4_ih8kh3")
    for own in ("n8c64h56k64r3p1", "maxpool_n1c64h112r3st2p1ci0", "deconv_n1c64h16k32r4st2p1"):
        assert not is_benchdnn(own)
