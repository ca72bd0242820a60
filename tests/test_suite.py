"""Suites: the shipped TOML files load and say what they claim, batch overrides, both case forms,
suite-level dtype; and every malformed suite raises SuiteError naming the file, the line and the
field (line numbers below are counted by hand from the text written, 1-based)."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest

from convbench.problems import ConvProblem
from convbench.run.suite import SuiteError, builtin_suites, load_suite, resolve

SHIPPED = ("smoke", "quick", "resnet50")
RESNET50_CSV = Path(__file__).parents[2] / "shared/reference/resnet50_distinct_conv.csv"

# A valid case, reused by the malformed suites whose error is elsewhere.
OK_CASE = '[[case]]\nname = "ok"\ndescriptor = "c4h8k4r3"\n'


def write(tmp_path: Path, *parts: str, name: str = "bad.toml") -> Path:
    """Each part dedented, the first without its leading newline, joined: line 1 is real text."""
    text = "".join(textwrap.dedent(part) for part in parts).lstrip("\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def suite_error(path: Path) -> str:
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    assert isinstance(info.value, ValueError)
    return str(info.value)


def assert_points_at(message: str, path: Path, line: int, field: str | None) -> None:
    assert f"{path}:{line}:" in message, message
    if field is not None:
        assert f"'{field}'" in message, message


# --- shipped suites ---------------------------------------------------------------------------


def test_shipped_suites_are_found() -> None:
    found = builtin_suites()
    assert set(SHIPPED) <= set(found)
    for name in SHIPPED:
        assert found[name].is_file()
        assert resolve(name) == found[name]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_suite_loads(name: str) -> None:
    suite = load_suite(name)
    assert suite.name == name
    assert suite.cases
    assert len({c.name for c in suite.cases}) == len(suite.cases)
    assert all(isinstance(c.problem, ConvProblem) for c in suite.cases)
    assert suite.budget_s > 0 and suite.limit_s > 0 and suite.min_repeats > 0


def test_quick_suite_sets_batch_4_on_every_case() -> None:
    suite = load_suite("quick")
    assert {c.problem.n for c in suite.cases} == {4}


def test_smoke_suite_fields_case() -> None:
    cases = {c.name: c.problem for c in load_suite("smoke").cases}
    assert cases["tiny_depthwise"] == ConvProblem(
        1, 8, 10, 10, 8, 3, 3, stride=2, padding=1, groups=8
    )
    assert cases["tiny_3x3"] == ConvProblem(2, 4, 9, 9, 6, 3, 3, padding=1)


def test_resnet50_has_23_cases_all_batch_8() -> None:
    suite = load_suite("resnet50")
    assert len(suite.cases) == 23
    assert [c.problem.n for c in suite.cases] == [8] * 23
    assert suite.algorithms == ("direct_naive", "direct", "im2col", "fft", "winograd_f2x3",
                                "winograd_f4x3", "winograd_f6x3", "polyphase_winograd_a4",
                                "auto", "torch_im2col", "torch")
    assert suite.reference == "torch"


def test_resnet50_matches_reference_csv() -> None:
    if not RESNET50_CSV.is_file():
        pytest.skip(f"reference data not available: {RESNET50_CSV} is missing")
    with RESNET50_CSV.open(newline="") as f:
        rows = list(csv.DictReader(f))
    cases = load_suite("resnet50").cases
    assert len(rows) == len(cases) == 23
    for row, case in zip(rows, cases, strict=True):
        p = case.problem
        assert case.name == row["name"]
        got = (p.c, p.h, p.w, p.k, p.r, p.s, p.stride, p.padding, p.dilation, p.groups)
        want = (
            int(row["C"]), int(row["H"]), int(row["W"]), int(row["K"]), int(row["R"]),
            int(row["S"]), (int(row["stride_h"]), int(row["stride_w"])),
            (int(row["pad_h"]), int(row["pad_w"])), (int(row["dilation"]),) * 2,
            int(row["groups"]),
        )
        assert got == want, case.name
        assert p.dtype == "float32" and not p.bias


@pytest.mark.parametrize("name", SHIPPED)
def test_batch_argument_overrides_every_case(name: str) -> None:
    original = load_suite(name)
    suite = load_suite(name, batch=3)
    assert [c.problem.n for c in suite.cases] == [3] * len(original.cases)
    # only N changes
    for before, after in zip(original.cases, suite.cases, strict=True):
        assert after.name == before.name
        assert after.problem.c == before.problem.c and after.problem.k == before.problem.k


def test_batch_zero_is_rejected_not_ignored() -> None:
    # load_suite(batch=0) must not silently fall back to the suite's own batch (8).
    with pytest.raises(ValueError, match="batch"):
        load_suite("resnet50", batch=0)


# --- case forms and defaults ------------------------------------------------------------------


def test_fields_case_with_pairs(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        budget_s = 0.1

        [[case]]
        name = "pairs"
        n = 2
        c = 4
        h = 9
        w = 11
        k = 6
        r = 3
        s = 1
        stride = [2, 1]
        padding = [1, 0]
        dilation = [2, 1]
        groups = 2
        bias = true

        [[case]]
        name = "minimal"
        c = 3
        h = 7
        k = 5
        r = 3
        """, name="fields.toml")
    suite = load_suite(str(path))
    assert suite.name == "fields"
    assert suite.budget_s == 0.1
    pairs, minimal = (c.problem for c in suite.cases)
    assert pairs == ConvProblem(
        2, 4, 9, 11, 6, 3, 1, stride=(2, 1), padding=(1, 0), dilation=(2, 1), groups=2,
        bias=True,
    )
    assert pairs.stride == (2, 1) and pairs.padding == (1, 0) and pairs.dilation == (2, 1)
    # defaults: n=1, w=h, s=r, float32
    assert minimal == ConvProblem(1, 3, 7, 7, 5, 3, 3)
    assert minimal.dtype == "float32"


def test_suite_dtype_applies_to_cases_without_f_token(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        dtype = "float64"

        [[case]]
        name = "plain"
        descriptor = "c4h8k4r3"

        [[case]]
        name = "explicit_f32"
        descriptor = "c4h8k4r3f32"

        [[case]]
        name = "explicit_f64"
        descriptor = "c4h8k4r3f64"

        [[case]]
        name = "fields"
        c = 4
        h = 8
        k = 4
        r = 3
        """)
    dtypes = {c.name: c.problem.dtype for c in load_suite(str(path)).cases}
    assert dtypes == {
        "plain": "float64", "explicit_f32": "float32", "explicit_f64": "float64",
        "fields": "float64",
    }


def test_suite_defaults_without_suite_table(tmp_path: Path) -> None:
    suite = load_suite(str(write(tmp_path, OK_CASE)))
    assert suite.algorithms is None
    assert suite.backends == ("numpy",)
    assert suite.cases[0].problem == ConvProblem(1, 4, 8, 8, 4, 3, 3)


# --- malformed suites -------------------------------------------------------------------------


def test_invalid_toml_names_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        budget_s = 0.1
        description = "unterminated
        """, OK_CASE)
    # line 3 holds the unterminated string
    message = suite_error(path)
    assert str(path) in message
    assert "line 3" in message, message


def test_unknown_suite_key(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        budget_s = 0.1
        colour = "blue"
        """, OK_CASE)
    # 1 [suite], 2 budget_s, 3 colour
    assert_points_at(suite_error(path), path, 3, "colour")


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, """
        # a comment line first
        [suite]
        description = "x"
        budget_s = "fast"
        """, OK_CASE)
    # 1 comment, 2 [suite], 3 description, 4 budget_s
    message = suite_error(path)
    assert_points_at(message, path, 4, "budget_s")
    assert "type" in message


@pytest.mark.parametrize("value", ["0", "-1.5"])
def test_non_positive_budget(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"""
        [suite]
        min_repeats = 3
        budget_s = {value}
        """, OK_CASE)
    # 1 [suite], 2 min_repeats, 3 budget_s
    message = suite_error(path)
    assert_points_at(message, path, 3, "budget_s")
    assert "positive" in message


def test_bool_is_not_an_int(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        min_repeats = true
        """, OK_CASE)
    assert_points_at(suite_error(path), path, 2, "min_repeats")


def test_unknown_algorithm(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        description = "x"
        budget_s = 0.1
        algorithms = ["direct", "winograd_magic"]
        """, OK_CASE)
    # 1 [suite], 2 description, 3 budget_s, 4 algorithms
    message = suite_error(path)
    assert_points_at(message, path, 4, "algorithms")
    assert "winograd_magic" in message


def test_unknown_reference(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        algorithms = ["direct"]
        reference = "nope"
        """, OK_CASE)
    message = suite_error(path)
    assert_points_at(message, path, 3, "reference")
    assert "'nope'" in message


def test_unknown_backend(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        backends = ["numpy", "tpu"]
        """, OK_CASE)
    message = suite_error(path)
    assert_points_at(message, path, 2, "backends")
    assert "'tpu'" in message


def test_unknown_key_in_case(tmp_path: Path) -> None:
    path = write(tmp_path, OK_CASE, """
        [[case]]
        name = "second"
        descriptor = "c4h8k4r3"
        colour = "red"
        """)
    # 1-3 first case, 4 blank, 5 [[case]], 6 name, 7 descriptor, 8 colour
    assert_points_at(suite_error(path), path, 8, "colour")


def test_case_missing_name(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        budget_s = 0.1

        [[case]]
        name = "ok"
        descriptor = "c4h8k4r3"

        [[case]]
        descriptor = "c4h8k4r3"
        """)
    # the second [[case]] header is line 8 (there is no name line to point at)
    assert_points_at(suite_error(path), path, 8, "name")


def test_duplicate_case_name(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [[case]]
        name = "same"
        descriptor = "c4h8k4r3"

        [[case]]
        name = "other"
        descriptor = "c4h8k4r1"

        [[case]]
        descriptor = "c4h8k4r3p1"
        name = "same"
        """)
    # 1 [[case]], 2 name same, 5 [[case]], 6 name other, 9 [[case]], 10 descriptor, 11 name
    message = suite_error(path)
    assert_points_at(message, path, 11, "name")
    assert "'same'" in message


def test_descriptor_that_does_not_parse(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [[case]]
        name = "bad_descriptor"
        descriptor = "c4h8k4r3zz"
        """)
    message = suite_error(path)
    assert_points_at(message, path, 3, "descriptor")
    assert "bad_descriptor" in message


def test_stride_zero_in_fields_case(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        budget_s = 0.1

        [[case]]
        name = "zero_stride"
        c = 4
        h = 8
        k = 4
        r = 3
        stride = 0
        padding = 1
        """)
    # 1 [suite], 2 budget_s, 3 blank, 4 [[case]], 5 name, 6 c, 7 h, 8 k, 9 r, 10 stride
    message = suite_error(path)
    assert_points_at(message, path, 10, "stride")
    assert "zero_stride" in message


def test_groups_not_dividing_c(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [[case]]
        name = "bad_groups"
        c = 6
        h = 8
        k = 8
        r = 3
        groups = 4
        """)
    # 1 [[case]], 2 name, 3 c, 4 h, 5 k, 6 r, 7 groups
    message = suite_error(path)
    assert_points_at(message, path, 7, "groups")
    assert "groups=4" in message


def test_both_descriptor_and_fields(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [[case]]
        name = "both"
        descriptor = "c4h8k4r3"
        stride = 2
        """)
    # the field that should not be there: stride, line 4
    message = suite_error(path)
    assert_points_at(message, path, 4, "stride")
    assert "not both" in message


def test_no_cases(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        description = "empty"
        budget_s = 0.1
        """)
    message = suite_error(path)
    assert str(path) in message
    assert "[[case]]" in message


def test_unknown_top_level_table(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        budget_s = 0.1

        [extra]
        x = 1

        [[case]]
        name = "ok"
        descriptor = "c4h8k4r3"
        """)
    # 1 [suite], 2 budget_s, 3 blank, 4 [extra]
    message = suite_error(path)
    assert "'extra'" in message
    assert_points_at(message, path, 4, None)


def test_invalid_suite_dtype_blames_the_suite_dtype_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [suite]
        budget_s = 0.1
        dtype = "float16"

        [[case]]
        name = "ok"
        descriptor = "c4h8k4r3"
        """)
    # 1 [suite], 2 budget_s, 3 dtype
    message = suite_error(path)
    assert_points_at(message, path, 3, "dtype")
    assert "float16" in message


# --- resolve ----------------------------------------------------------------------------------


def test_resolve_unknown_name_lists_shipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SuiteError) as info:
        resolve("nope")
    message = str(info.value)
    assert "'nope'" in message
    for name in SHIPPED:
        assert name in message


def test_resolve_missing_toml(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(SuiteError, match="does not exist") as info:
        resolve(str(missing))
    assert str(missing) in str(info.value)
    with pytest.raises(SuiteError):
        load_suite(str(missing))


def test_resolve_existing_path(tmp_path: Path) -> None:
    path = write(tmp_path, OK_CASE, name="mine.toml")
    assert resolve(str(path)) == path
    assert load_suite(str(path)).name == "mine"


def test_a_case_counts_how_often_its_layer_occurs(tmp_path: Path) -> None:
    """`count` (default 1) says how often a layer occurs in its network; it survives directions
    and layouts, and a bad one names the line."""
    path = tmp_path / "net.toml"
    path.write_text('[suite]\ndirections = ["fwd", "bwd_data"]\nlayouts = ["nchw", "nhwc"]\n\n'
                    '[[case]]\nname = "a"\ndescriptor = "c4h8k4r3p1"\ncount = 3\n\n'
                    '[[case]]\nname = "b"\ndescriptor = "c4h8k4r1"\n')
    counts = {c.name: c.count for c in load_suite(str(path)).cases}
    assert counts == {"a_fwd_nchw": 3, "a_fwd_nhwc": 3, "a_bwd_data_nchw": 3,
                      "a_bwd_data_nhwc": 3, "b_fwd_nchw": 1, "b_fwd_nhwc": 1, "b_bwd_data_nchw": 1,
                      "b_bwd_data_nhwc": 1}
    assert sum(c.count for c in load_suite("resnet50").cases) == 53  # ResNet-50's conv layers
    path.write_text('[[case]]\nname = "a"\ndescriptor = "c4h8k4r3p1"\ncount = 0\n')
    with pytest.raises(SuiteError, match=r"net\.toml:4: field 'count': count must be a positive"):
        load_suite(str(path))
