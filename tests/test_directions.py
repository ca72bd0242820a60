"""The direction dimension and the other ops through the harness: problems (op, FLOPs per
direction, the transposed convolution's shapes), descriptors, the receptive-field calculator,
the shipped suites, runs with a `direction` column, and `convbench describe`."""

from __future__ import annotations

import csv
import dataclasses
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rich.console import Console

from convbench.cli import main
from convbench.problems.descriptor import parse
from convbench.problems import ConvProblem, PoolProblem
from convbench.problems.transpose import ConvTransposeProblem
from convbench.problems.receptive_field import receptive_fields
from convbench.run.rundir import COLUMNS, read_results
from convbench.run.runner import RunOptions, plan, run
from convbench.run.suite import SuiteError, load_suite
from convbench.analysis.table import comparison_table

REFERENCE = Path(__file__).parents[2] / "shared/reference"
CONV = ConvProblem(2, 8, 10, 10, 4, 3, 3, stride=2, padding=1, bias=True)

# --- problems ------------------------------------------------------------------------------------


def test_direction_names_the_op_and_defaults_to_fwd() -> None:
    assert CONV.direction == "fwd" and CONV.op == "conv2d"
    assert replace(CONV, direction="bwd_data").op == "conv2d_backward"
    assert replace(CONV, direction="bwd_weight").op == "conv2d_backward"
    pool = PoolProblem("max", 1, 2, 8, 8, 2, 2)
    assert (pool.op, replace(pool, direction="bwd_data").op) == ("max_pool2d",
                                                                 "max_pool2d_backward")
    assert replace(pool, kind="avg", direction="bwd_data").op == "avg_pool2d_backward"
    assert ConvTransposeProblem(1, 2, 4, 4, 3, 3, 3).op == "conv_transpose2d"
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONV.direction = "bwd_data"  # type: ignore[misc]


def test_bad_direction() -> None:
    with pytest.raises(ValueError, match=r"direction must be one of fwd, bwd_data, bwd_weight, "
                                         r"got 'backward'"):
        replace(CONV, direction="backward")
    with pytest.raises(ValueError, match=r"direction must be one of fwd, bwd_data, got "
                                         r"'bwd_weight'"):
        PoolProblem("max", 1, 2, 8, 8, 2, 2, direction="bwd_weight")


def test_flops_of_each_direction() -> None:
    # N*K*OH*OW = 2*4*5*5 = 200 outputs; MACs = 200 * C*R*S = 200 * 72 = 14,400
    assert CONV.macs == 14_400
    assert CONV.flops == 2 * 14_400 + 200  # + one bias add per output
    assert replace(CONV, direction="bwd_data").flops == 2 * 14_400  # no bias term
    assert replace(CONV, direction="bwd_weight").flops == 2 * 14_400 + 200  # bias gradient sum
    pool = PoolProblem("avg", 1, 2, 8, 8, 2, 2)  # 2*4*4 = 32 outputs, 4-pixel windows
    assert pool.flops == 32 * 3 + 32 and replace(pool, direction="bwd_data").flops == 32 * 5
    maxpool = replace(pool, kind="max")
    assert maxpool.flops == 32 * 3 and replace(maxpool, direction="bwd_data").flops == 32 * 4


TRANSPOSED = [
    ConvTransposeProblem(2, 4, 5, 6, 6, 4, 4, stride=2, padding=1),
    ConvTransposeProblem(1, 4, 5, 5, 6, 3, 3, stride=2, padding=1, output_padding=1, groups=2),
    ConvTransposeProblem(1, 2, 3, 4, 2, 3, 2, stride=(3, 1), padding=(2, 0), dilation=(1, 2),
                         output_padding=(2, 1)),
    ConvTransposeProblem(1, 3, 7, 7, 5, 1, 1, padding=0),
]


@pytest.mark.parametrize("p", TRANSPOSED, ids=str)
def test_transposed_shapes_match_torch(p: ConvTransposeProblem) -> None:
    y = F.conv_transpose2d(torch.zeros(p.input_shape), torch.zeros(p.weight_shape), None,
                           p.stride, p.padding, p.output_padding, p.groups, p.dilation)
    assert tuple(y.shape) == p.output_shape
    adjoint = p.adjoint  # maps our output shape back to (at least) our input shape
    assert adjoint.direction == "bwd_data" and adjoint.input_shape == p.output_shape
    assert adjoint.weight_shape == p.weight_shape
    assert adjoint.out_h >= p.h and adjoint.out_w >= p.w
    assert p.macs == p.n * p.c * p.h * p.w * (p.k // p.groups) * p.r * p.s


def test_transposed_rejects_what_torch_rejects() -> None:
    with pytest.raises(ValueError, match=r"output_padding=\(2, 2\) must be smaller than either"):
        ConvTransposeProblem(1, 2, 4, 4, 2, 3, 3, stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match="output padding must be smaller than either"):
        F.conv_transpose2d(torch.zeros(1, 2, 4, 4), torch.zeros(2, 2, 3, 3), stride=2,
                           output_padding=2)


# --- descriptors --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("bwd_data_n8c64h56k64r3p1", ConvProblem(8, 64, 56, 56, 64, 3, 3, padding=1,
                                             direction="bwd_data")),
    ("bwd_weight_c3h9k4r3b1", ConvProblem(1, 3, 9, 9, 4, 3, 3, bias=True,
                                          direction="bwd_weight")),
    ("bwd_data_maxpool_c64h112r3st2p1", PoolProblem("max", 1, 64, 112, 112, 3, 3, stride=2,
                                                    padding=1, direction="bwd_data")),
    ("deconv_c64h16k32r4st2p1", ConvTransposeProblem(1, 64, 16, 16, 32, 4, 4, stride=2,
                                                     padding=1)),
    ("deconv_c8h7k4r3st2p1op1g2b1", ConvTransposeProblem(1, 8, 7, 7, 4, 3, 3, stride=2,
                                                         padding=1, output_padding=1,
                                                         groups=2, bias=True)),
])
def test_parse_prefixed_descriptors(text: str, expected: object) -> None:
    assert parse(text) == expected
    assert parse(str(expected)) == expected


@pytest.mark.parametrize("text, pattern", [
    ("bwd_data_deconv_c4h5k4r3", r"a transposed convolution has only the fwd direction"),
    ("bwd_weight_maxpool_c4h8r2", r"direction must be one of fwd, bwd_data, got 'bwd_weight'"),
    ("deconv_c4h5k4r3st2op2", r"output_padding=\(2, 2\) must be smaller"),
    ("maxpool_c4h8r2op1", r"unknown key 'op'"),
])
def test_malformed_prefixed_descriptors(text: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        parse(text)


@st.composite
def transposed_problems(draw: st.DrawFn) -> ConvTransposeProblem:
    groups = draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    try:  # some draws leave no output (padding eats it): those are not valid problems
        return ConvTransposeProblem(
            n=draw(st.integers(1, 8)), c=groups * draw(st.integers(1, 4)),
            h=draw(st.integers(3, 20)), w=draw(st.integers(3, 20)),
            k=groups * draw(st.integers(1, 4)), r=r, s=s, stride=stride,
            padding=(draw(st.integers(0, r - 1)), draw(st.integers(0, s - 1))),
            output_padding=output_padding, dilation=dilation, groups=groups,
            bias=draw(st.booleans()), dtype=draw(st.sampled_from(["float32", "float64"])))
    except ValueError:
        assume(False)
        raise


@settings(max_examples=100, deadline=None, database=None)
@given(transposed_problems(), st.sampled_from(["fwd", "bwd_data", "bwd_weight"]))
def test_round_trip_of_every_op_and_direction(p: ConvTransposeProblem, direction: str) -> None:
    conv = replace(p.adjoint, direction=direction, bias=p.bias)
    pool = PoolProblem("max", p.n, p.c, p.h + 4, p.w + 4, 3, 2, stride=p.stride, padding=(1, 1),
                       direction="fwd" if direction == "bwd_weight" else direction)
    for problem in (p, conv, pool):
        assert parse(str(problem)) == problem
        assert str(parse(str(problem))) == str(problem)


# --- receptive field ----------------------------------------------------------------------------


def test_receptive_field_of_known_networks() -> None:
    vgg = receptive_fields([(c.name, c.problem) for c in load_suite("vgg16").cases])
    by_name = {f.name: f for f in vgg}
    assert by_name["vgg16_conv5_3"].field == (196, 196)  # the well-known VGG-16 figures
    assert vgg[-1].field == (212, 212) and vgg[-1].jump == (32, 32)
    alexnet = receptive_fields([(c.name, c.problem) for c in load_suite("alexnet").cases])
    # 11, +2*4 = 19, +4*8 = 51, +2*8 = 67, +2*16 = 99, 131, 163, +2*16 = 195
    assert [f.field[0] for f in alexnet] == [11, 19, 51, 67, 99, 131, 163, 195]


def test_receptive_field_uses_the_dilated_extent_per_axis() -> None:
    layers = [("a", ConvProblem(1, 1, 32, 32, 1, 3, 1, dilation=(2, 1), stride=(2, 1))),
              ("b", PoolProblem("max", 1, 1, 16, 32, 2, 3, stride=(2, 1))),
              ("c", ConvProblem(1, 1, 8, 30, 1, 3, 3, dilation=3))]
    fields = receptive_fields(layers)
    # height: k' = 5 -> 5, jump 2; 2 -> 5 + 1*2 = 7, jump 4; k' = 7 -> 7 + 6*4 = 31
    # width:  k' = 1 -> 1, jump 1; 3 -> 1 + 2 = 3, jump 1;   k' = 7 -> 3 + 6 = 9
    assert [f.field for f in fields] == [(5, 1), (7, 3), (31, 9)]
    assert [f.extent for f in fields] == [(5, 1), (2, 3), (7, 7)]
    with pytest.raises(ValueError, match="upsamples"):
        receptive_fields([("up", TRANSPOSED[0])])


# --- suites -------------------------------------------------------------------------------------

NEW_SUITES = ("vgg16", "mobilenet_v2", "alexnet", "overfeat", "pooling", "transposed", "backward")


@pytest.mark.parametrize("name", NEW_SUITES)
def test_new_suite_loads_and_plans(name: str) -> None:
    suite = load_suite(name)
    assert len({c.name for c in suite.cases}) == len(suite.cases)
    assert plan(suite, RunOptions())
    assert suite.network == (name in ("vgg16", "mobilenet_v2", "alexnet", "overfeat"))
    if suite.network:
        assert receptive_fields([(c.name, c.problem) for c in suite.cases])


def _csv(name: str) -> list[dict[str, str]]:
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"reference data not available: {path} is missing")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_backward_suite_is_resnet50_in_both_backward_directions() -> None:
    rows = _csv("resnet50_distinct_conv.csv")
    cases = load_suite("backward").cases
    assert len(cases) == 2 * len(rows) == 46
    for row, data, weight in zip(rows, cases[::2], cases[1::2], strict=True):
        assert (data.name, weight.name) == (f"{row['name']}_bwd_data", f"{row['name']}_bwd_weight")
        assert data.problem.direction == "bwd_data" and weight.problem.direction == "bwd_weight"
        assert replace(data.problem, direction="fwd") == replace(weight.problem, direction="fwd")
        assert (data.problem.c, data.problem.k, data.problem.h) == (int(row["C"]), int(row["K"]),
                                                                    int(row["H"]))


def test_mobilenet_v2_is_every_conv_in_order_with_its_depthwise_layers() -> None:
    rows = _csv("mobilenetv2_all_conv.csv")
    convs = [c for c in load_suite("mobilenet_v2").cases if isinstance(c.problem, ConvProblem)]
    assert [c.name for c in convs] == [row["name"] for row in rows]
    depthwise = [c for c in convs if c.problem.groups > 1]
    assert len(depthwise) == 17 and all(c.problem.groups == c.problem.c for c in depthwise)


def test_pooling_and_transposed_suites_cover_their_variants() -> None:
    pools = [c.problem for c in load_suite("pooling").cases]
    assert {p.kind for p in pools} == {"max", "avg"}
    assert {p.direction for p in pools} == {"fwd", "bwd_data"}
    assert any(p.ceil_mode for p in pools) and any(not p.count_include_pad for p in pools)
    deconvs = [c.problem for c in load_suite("transposed").cases]
    assert {(p.r, p.stride, p.padding, p.output_padding) for p in deconvs} == {
        (4, (2, 2), (1, 1), (0, 0)), (3, (2, 2), (1, 1), (1, 1))}
    assert all(p.out_h == 2 * p.h for p in deconvs)  # both families double the size


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mixed.toml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


MIXED = """
    [suite]
    algorithms = ["direct", "im2col", "windowed", "torch"]
    budget_s = 0.01
    min_repeats = 3
    limit_s = 5.0
    directions = ["bwd_data", "bwd_weight"]

    [[case]]
    name = "conv"
    descriptor = "n2c4h9k6r3st2p1b1"

    [[case]]
    name = "pool"
    descriptor = "maxpool_n2c3h9r3st2p1cm1"
    direction = ["fwd", "bwd_data"]

    [[case]]
    name = "deconv"
    descriptor = "deconv_n2c4h5k3r3st2p1op1"
    direction = "fwd"

    [[case]]
    name = "avg_back"
    descriptor = "bwd_data_avgpool_n2c3h8r2ci0"
"""


def test_case_and_suite_directions(tmp_path: Path) -> None:
    suite = load_suite(str(_write(tmp_path, MIXED)))
    got = [(c.name, c.problem.op, c.problem.direction) for c in suite.cases]
    assert got == [("conv_bwd_data", "conv2d_backward", "bwd_data"),
                   ("conv_bwd_weight", "conv2d_backward", "bwd_weight"),
                   ("pool_fwd", "max_pool2d", "fwd"),
                   ("pool_bwd_data", "max_pool2d_backward", "bwd_data"),
                   ("deconv", "conv_transpose2d", "fwd"),
                   ("avg_back", "avg_pool2d_backward", "bwd_data")]
    algos = {case.name: [t.algorithm.name for t in plan(suite, RunOptions()) if t.case == case]
             for case in suite.cases}
    assert algos["conv_bwd_data"] == algos["deconv"] == ["direct", "im2col", "torch"]
    assert algos["pool_fwd"] == ["windowed", "torch"]
    with pytest.raises(ValueError, match=r"algo='winograd_f9x9' is not registered for any op"):
        plan(suite, RunOptions(algorithms=("windowed", "winograd_f9x9")))


@pytest.mark.parametrize("case, line, pattern", [
    ('descriptor = "deconv_c4h5k3r3"\ndirection = "bwd_data"', 4,
     r"conv_transpose2d has only the fwd direction"),
    ('descriptor = "bwd_data_c4h5k3r3"\ndirection = "bwd_weight"', 4,
     r"the descriptor already names direction bwd_data"),
    ('descriptor = "maxpool_c4h8r2"\ndirection = "bwd_weight"', 4,
     r"direction must be one of fwd, bwd_data, got 'bwd_weight'"),
    ('descriptor = "c4h5k3r3"\ndirection = []', 4, r"non-empty list"),
])
def test_bad_case_direction_names_the_line(tmp_path: Path, case: str, line: int,
                                           pattern: str) -> None:
    path = _write(tmp_path, '[[case]]\nname = "x"\n' + case + "\n")
    with pytest.raises(SuiteError, match=pattern) as info:
        load_suite(str(path))
    assert f"{path}:{line}: field 'direction':" in str(info.value)


def test_bad_suite_directions_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[suite]\nbudget_s = 0.1\ndirections = ["bwd"]\n\n[[case]]\n'
                  'name = "x"\ndescriptor = "c4h5k3r3"\n')
    with pytest.raises(SuiteError, match=r":3: field 'directions': direction must be one of"):
        load_suite(str(path))


# --- runs and tables ----------------------------------------------------------------------------


def test_mixed_run_records_direction_and_op(tmp_path: Path) -> None:
    suite = load_suite(str(_write(tmp_path, MIXED)))
    frame = read_results(run(suite, tmp_path / "out"))
    assert list(frame.columns) == list(COLUMNS) and "direction" in COLUMNS
    assert set(frame["status"]) == {"ok"}, frame[["case", "algo", "status", "reason"]]
    by_case = frame.groupby("case")[["op", "direction"]].first()
    assert by_case.loc["conv_bwd_weight"].tolist() == ["conv2d_backward", "bwd_weight"]
    assert by_case.loc["pool_bwd_data"].tolist() == ["max_pool2d_backward", "bwd_data"]
    flops = frame.groupby("case")["flops"].first()
    assert flops["conv_bwd_data"] == flops["conv_bwd_weight"] - 2 * 6 * 5 * 5  # bias grad sum
    console = Console(width=200, record=True)
    console.print(comparison_table(frame, "torch"))
    text = console.export_text()
    assert "direction" in text and "bwd_weight" in text


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.mark.usefixtures("wide")
def test_describe_suite_shows_the_receptive_field(capsys: pytest.CaptureFixture) -> None:
    assert main(["describe", "alexnet"]) == 0
    out = capsys.readouterr().out
    assert "receptive field" in out and "195" in out and "alexnet_pool5" in out


@pytest.mark.usefixtures("wide")
def test_describe_shows_every_direction_and_transposed_sizes(
        capsys: pytest.CaptureFixture) -> None:
    assert main(["describe", "bwd_weight_n8c64h56k64r3p1"]) == 0
    out = capsys.readouterr().out
    assert "conv2d_backward, bwd_weight" in out
    assert "bwd_data 1,849,688,064" in out
    assert main(["describe", "deconv_n1c64h16k32r3st2p1op1"]) == 0
    out = capsys.readouterr().out
    assert "(16-1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 32" in out
