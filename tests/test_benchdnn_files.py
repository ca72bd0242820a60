"""benchdnn's batch and shape files as suites (convbench.run.benchdnn_files): comments, nested
--batch, drivers, options, --reset, names and counts, what is not modelled said once; and
oneDNN's own files (tests/fixtures/benchdnn/): every descriptor read, its stated output sizes
met and its repro line read back, a sample run in the harness and from the command line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from convbench.problems import ConvTransposeProblem
from convbench.problems.benchdnn import parse_descriptor, parse_repro, repro_line, to_problem
from convbench.run.benchdnn_files import (BenchdnnFileError, default_driver, read_batch_file,
                                          split_name)
from convbench.run.rundir import read_results
from convbench.run.runner import RunOptions, run
from convbench.run.suite import Case, Suite, load_suite

from test_cli import ENV

FIXTURES = Path(__file__).parent / "fixtures" / "benchdnn"
FILES = sorted(p for p in FIXTURES.glob("*/*") if p.name.startswith("shapes_"))


# --- batch files --------------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_batch_file_with_options_nesting_and_names(tmp_path: Path) -> None:
    write(tmp_path / "shapes_x", '# x\nic4ih8oc4kh3n"x:a*3"\nic4ih8oc4kh3n"x:a"  # again\n')
    main = write(tmp_path / "set_x", "\n".join([
        "--reset --dir=FWD_B,BWD_D --attr-post-ops=relu",
        "--batch=shapes_x",
        "--reset",
        "--dt=f32,bf16 --mb=4",
        "ic8ih6oc8kh3ph1 \\",
        '  n"joined"',
        "--pool --alg=avg_np",
        "mb2ic4ih8oh4kh2sh2",
        "--ip mb2ic4oc4"]))
    read = read_batch_file(main)
    names = [c.name for c in read.cases]
    assert names == ["x:a_fwd", "x:a_bwd_data", "x:a_fwd#2", "x:a_bwd_data#2",
                     "joined_f32", "mb2ic4ih8oh4kh2sh2"]  # its bf16 twin skipped
    assert [c.count for c in read.cases[:4]] == [3, 3, 1, 1]
    assert read.cases[4].problem.n == 4 and read.cases[4].where == f"{main}:5"
    assert read.cases[5].problem.kind == "avg"
    notes = "\n".join(read.notes)
    assert "--attr-post-ops=relu: not modelled by convbench, ignored (2 descriptors)" in notes
    assert "--dt=bf16" in notes and "1 configuration skipped" in notes
    assert "--ip: not a driver convbench reads; 1 descriptor skipped" in notes


@pytest.mark.parametrize("text, says", [
    ("ic4ih8oc4\n", ":1: benchdnn conv descriptor 'ic4ih8oc4': kh is not given"),
    ("\n--batch=nowhere\n", ":2: --batch=nowhere: no such file"),
    ("--dir=SIDEWAYS\n", ":1: --dir=SIDEWAYS: unknown direction"),
    ("--batch=self\n", "includes itself"),
    ("# nothing\n", "no descriptor convbench can run"),
])
def test_bad_batch_files_name_the_file_and_line(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path / "self", text)
    with pytest.raises(BenchdnnFileError, match=re.escape(says)):
        read_batch_file(path)


def test_unrepresentable_lines_are_skipped_and_said(tmp_path: Path) -> None:
    path = write(tmp_path / "pool" / "odd", "ic4ih8oh11kh2ph2\nic4ih8oh4kh2sh2\n")
    read = read_batch_file(path)
    assert read.driver == "pool" and len(read.cases) == 1
    assert any(f"{path}:1:" in note and "half the window" in note for note in read.notes)


def test_the_driver_comes_from_the_folder(tmp_path: Path) -> None:
    assert default_driver(FIXTURES / "pool" / "shapes_alexnet") == "pool"
    assert default_driver(tmp_path / "mine") == "conv"
    assert split_name("resnet_50:res2a_branch2b*3") == ("resnet_50:res2a_branch2b", 3)
    assert split_name("a*b") == ("a*b", 1)


def test_load_suite_reads_benchdnn_files_and_keeps_toml(tmp_path: Path) -> None:
    suite = load_suite(str(FIXTURES / "conv" / "shapes_resnet_50"), batch=1)
    assert suite.syntax == "benchdnn" and suite.name == "shapes_resnet_50"
    assert suite.description == "benchdnn --conv file: resnet_50" and suite.notes == ()
    assert {c.problem.n for c in suite.cases} == {1}
    assert sum(c.count for c in suite.cases) == 53  # ResNet-50's convolutions, counted
    toml = write(tmp_path / "no_suffix", '[[case]]\nname = "a"\ndescriptor = "c4h8k4r3"\n')
    assert load_suite(str(toml)).syntax == "toml"


# --- oneDNN's files -------------------------------------------------------------------------------

def descriptors(path: Path) -> list[str]:
    """The descriptors of a shape file: tokens that are not options, comments cut."""
    return [token for line in path.read_text().splitlines()
            for token in line.split("#")[0].split() if not token.startswith("-")]


def stated_outputs(text: str) -> dict[str, int]:
    """The output sizes a descriptor states, by axis (the last one given wins, as in benchdnn)."""
    return {axis: int(v) for axis, v in re.findall(r"o([dhw])(\d+)", text.partition("n")[0])}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_line_of_onednns_files_reads_and_meets_its_outputs(path: Path) -> None:
    driver = path.parent.name
    lines = descriptors(path)
    assert lines
    for text in lines:
        desc = parse_descriptor(text, driver)
        p = to_problem(desc)
        assert p.out_size == desc.out, text
        if not isinstance(p, ConvTransposeProblem):
            axes = "dhw"[3 - p.rank:]
            for axis, size in stated_outputs(text).items():
                if axis in axes:
                    assert p.out_size[axes.index(axis)] == size, (text, axis)
        (back,) = parse_repro(repro_line(p, desc.name), driver).problems
        assert back == p, text


def test_onednns_set_files_nest_their_shape_files() -> None:
    conv = load_suite(str(FIXTURES / "conv" / "set_conv_all"))
    assert len(conv.cases) == sum(len(descriptors(FIXTURES / "conv" / line.split("=")[1]))
                                  for line in (FIXTURES / "conv" / "set_conv_all")
                                  .read_text().split())
    pool = load_suite(str(FIXTURES / "pool" / "set_topologies"))
    assert {c.problem.family for c in pool.cases} == {"pool"} and pool.notes == ()


def sample() -> list[Case]:
    """The smallest line of each of oneDNN's files, at batch 1, when it is small enough for a
    test (a few 3-D files have none: pool/shapes_3d_unet stands for them)."""
    cases = []
    for path in FILES:
        suite = load_suite(str(path), batch=1)
        small = [c for c in suite.cases if c.problem.flops < 2e8]
        small = sorted(small, key=lambda c: c.problem.flops)[:1]
        cases += [Case(f"{path.name}:{c.name}", c.problem, c.count) for c in small]
    return cases


def test_a_sample_of_onednns_lines_runs_in_the_harness(tmp_path: Path) -> None:
    suite = Suite(name="benchdnn_sample", path="", cases=tuple(sample()),
                  algorithms=("im2col", "torch"), budget_s=0.005, min_repeats=1, limit_s=5.0)
    frame = read_results(run(suite, tmp_path, RunOptions(processes=1)))
    assert set(frame["case"]) == {c.name for c in suite.cases}
    bad = frame[~frame["status"].isin(["ok", "unsupported", "skipped"])]
    assert bad.empty, bad[["case", "algo", "status", "reason"]]
    assert (frame["status"] == "ok").sum() >= len(suite.cases)  # torch at least, everywhere


def convbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convbench.cli", *args], capture_output=True,
                          text=True, timeout=300, env=ENV)


def test_cli_runs_benchdnn_files_and_says_what_it_does_not_model_once(tmp_path: Path) -> None:
    mine = write(tmp_path / "mine", "--pool --attr-post-ops=relu\nmb1ic4ih8oh4kh2sh2n\"a\"\n"
                 "mb1ic4ih6oh4kh3n\"b\"\n")
    result = convbench("run", str(FIXTURES / "pool" / "shapes_alexnet"), str(mine), "--batch",
                       "1", "--algo", "windowed,torch", "--out", str(tmp_path / "out"),
                       "--no-progress", "--budget", "0.01", "--processes", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    frame = read_results(tmp_path / "out" / "shapes_alexnet")
    assert set(frame["case"]) == {"alexnet:max_pool1", "alexnet:max_pool2", "alexnet:max_pool5"}
    assert set(read_results(tmp_path / "out" / "mine")["case"]) == {"a", "b"}
    assert result.stdout.count("--attr-post-ops=relu: not modelled") == 1


def test_cli_describes_benchdnn_descriptors_and_files() -> None:
    result = convbench("describe", 'mb96ic3ih227oc96oh55kh11sh4ph0n"alexnet:conv1"')
    assert result.returncode == 0, result.stderr
    assert "(96, 96, 55, 55)" in result.stdout and "alexnet:conv1" in result.stdout
    pool = convbench("describe", "--pool --alg=avg_np mb1ic8ih8oh4kh2sh2")
    assert pool.returncode == 0 and "avg_pool2d" in pool.stdout, pool.stderr
    suite = convbench("describe", str(FIXTURES / "pool" / "shapes_googlenet_v1"))
    assert suite.returncode == 0, suite.stderr
    assert '--pool mb96ic192ih57oh28kh3sh2ph0n"googlenet_v1:max_pool2/3x3_s2"' in suite.stdout
    bad = convbench("describe", "mb2ic4ih8kh3")
    assert bad.returncode == 2 and "--pool" in bad.stderr
