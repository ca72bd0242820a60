"""Faults a user or a CI pipeline meets, each ending cleanly: the version, `python -m
convbench`, optional extras that are missing, and what a run records about the code under test."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import convbench
from convbench.measure import environment
from convbench.report import exports
from convbench.run.rundir import read_results

ROOT = Path(__file__).resolve().parents[1]


def convbench_cli(*args: str, cwd: Path | None = None,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "convbench", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


def test_version_and_python_dash_m() -> None:
    done = convbench_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"convbench {convbench.__version__}"


def test_python_dash_m_runs_the_command() -> None:
    done = convbench_cli("describe", "n1c3h8k4r3")
    assert done.returncode == 0 and "n1c3h8k4r3" in done.stdout


def test_reports_without_pyarrow_write_csv_only(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(exports, "parquet_available", lambda: False)
    frame = pd.DataFrame({"case": ["a"], "algo": ["im2col"], "time_median_s": [1e-3]})
    written = exports.write_exports(frame, tmp_path)
    assert written == [tmp_path / exports.CSV_FILE] and not (tmp_path / exports.PARQUET_FILE).exists()


def test_reports_with_pyarrow_write_parquet_too(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="pyarrow (convbench[parquet]) is not installed")
    frame = pd.DataFrame({"case": ["a"], "algo": ["im2col"], "time_median_s": [1e-3]})
    assert (tmp_path / exports.PARQUET_FILE) in exports.write_exports(frame, tmp_path)


def test_the_recorded_source_is_convbench_not_the_current_directory(tmp_path: Path,
                                                                     monkeypatch) -> None:
    """From an unrelated repository, a run records convbench's commit, not that repository's
    HEAD; the project's commit only when asked."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    for variable in environment.COMMIT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    meta = environment.collect(1)
    ours = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert meta["convbench"]["commit"] == ours and meta["convbench"]["version"]
    assert "git" not in meta
    monkeypatch.setenv("CONVBENCH_COMMIT", "release-7")
    assert environment.collect(1)["git"] == {"commit": "release-7", "ref": "release-7"}
    assert environment.collect(1, commit="HEAD~0")["git"]["ref"] == "HEAD~0"


def test_plugin_leaves_other_projects_alone(tmp_path: Path) -> None:
    """A pytest session in a project that never uses convbench: the plugin is loaded (entry
    point) but sets no variable and imports neither convbench nor numpy."""
    (tmp_path / "test_other.py").write_text(
        "import os, sys\n"
        "def test_untouched():\n"
        "    assert 'numpy' not in sys.modules and 'convbench' not in sys.modules\n"
        "    assert 'OPENBLAS_THREAD_TIMEOUT' not in os.environ\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


# --- every failure clean: one line, the right exit code, nothing half done -------------------
# (Exit codes, README "Command line": 0 ok, 1 a wrong result or a regression, 2 bad usage or bad
# input with nothing run, 130 interrupted.)

def tiny_suite(path: Path, budget_s: float = 0.002, cases: int = 2) -> Path:
    """A suite of small cases, its last a 1x1 kernel that winograd_f2x3 does not support."""
    lines = ["[suite]", 'algorithms = ["im2col", "direct", "torch", "winograd_f2x3"]',
             f"budget_s = {budget_s}", "min_repeats = 3", "limit_s = 5.0", ""]
    for i in range(cases):
        kernel = 3 if i < cases - 1 else 1
        lines += ["[[case]]", f'name = "case{i}"', f'descriptor = "n2c4h{8 + i}k4r{kernel}"', ""]
    path.write_text("\n".join(lines))
    return path


def one_error_line(err: str) -> str:
    """The single line a failing command printed on stderr."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OUT of one run of the tiny suite (OUT/tiny/ holds it)."""
    from convbench.cli import main

    root = tmp_path_factory.mktemp("tiny")
    assert main(["run", str(tiny_suite(root / "tiny.toml")), "--out", str(root / "out"),
                 "--threads", "1", "--quiet"]) == 0
    return root / "out"


@pytest.mark.parametrize("command", ["run", "report", "compare", "tune"])
@pytest.mark.parametrize("where", ["a_file", "/proc/convbench_out"])
def test_an_output_directory_that_cannot_be_one_is_refused_first(
        command: str, where: str, tiny_run: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """--out naming a file, or a place nothing can be created in: one line and exit 2, before
    any work (a run would otherwise fail after its first case)."""
    from convbench.cli import main

    out = tmp_path / "a_file" if where == "a_file" else Path(where)
    (tmp_path / "a_file").write_text("not a directory")
    suite = str(tiny_suite(tmp_path / "tiny.toml"))
    argv = {"run": ["run", suite], "tune": ["tune", suite],
            "report": ["report", str(tiny_run)],
            "compare": ["compare", str(tiny_run), str(tiny_run)]}[command]
    assert main([*argv, "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"convbench: error: --out {out}: ")
    assert ("is not a directory" if where == "a_file" else "cannot write in /proc") in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "tiny.toml"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "lots"])
def test_float_options_must_be_finite_and_positive(value: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from convbench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "smoke", "--budget", value])
    assert exit_info.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("convbench run: error: argument --budget:") and "--help" in line


def test_non_finite_settings_in_a_suite_file_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from convbench.cli import main

    suite = tiny_suite(tmp_path / "nan.toml")
    suite.write_text(suite.read_text().replace("budget_s = 0.002", "budget_s = nan"))
    assert main(["describe", str(suite)]) == 2
    assert "budget_s must be finite and positive, got nan" in capsys.readouterr().err


@pytest.mark.parametrize("url, says", [
    ("mysql://user:secret@host/db", "mysql is not supported"),
    ("sqlite+pysqlcipher:///x.db", "driver is not installed"),
    ("nosuchdialect://x", "nosuchdialect is not supported"),
    ("sqlite:////proc/convbench/h.db", "cannot write in /proc"),
])
def test_an_unusable_results_database_is_refused_before_the_run(
        url: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from convbench.cli import main

    out = tmp_path / "out"
    assert main(["run", str(tiny_suite(tmp_path / "tiny.toml")), "--out", str(out),
                 "--store", url]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("convbench: error: --store ") and says in line
    assert "secret" not in line  # a password never reaches a log
    assert not out.exists()  # nothing ran


CORRUPT_RESULTS = {
    "garbage bytes": (b"\x87\xff\x00garbage\n", "not text"),
    "another header": (b"a,b,c\n1,2,3\n", "no 'suite' column"),
    "a row cut short": (None, "row 2 has"),
    "a last row cut short": (None, "last row is cut short"),
    "a status that is none": (None, "status 'fine' is not one of"),
    "a time that is no number": (None, "time_median_s 'fast' is not a number"),
    "empty": (b"", "empty file"),
    "a header only": (None, "no results in it"),
}


def corrupt(text: str, kind: str) -> bytes:
    """tiny_run's results.csv, spoiled in one way."""
    header, *rows = text.splitlines(keepends=True)
    spoiled = {
        "a row cut short": header + rows[0] + rows[1][:40] + "\n" + "".join(rows[2:]),
        "a last row cut short": text[:-10],
        "a status that is none": header + rows[0].replace(",ok,", ",fine,", 1),
        "a time that is no number": header + re.sub(r",ok,,[^,]*,", ",ok,,fast,", rows[0]),
        "a header only": header,
    }
    return spoiled[kind].encode()


@pytest.mark.parametrize("kind", CORRUPT_RESULTS)
@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_corrupt_results_csv_is_bad_input_naming_the_file(
        kind: str, command: str, tiny_run: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from convbench.cli import main

    directory = tmp_path / "run"
    shutil.copytree(tiny_run / "tiny", directory)
    data, says = CORRUPT_RESULTS[kind]
    original = (directory / "results.csv").read_text()
    (directory / "results.csv").write_bytes(data if data is not None else corrupt(original, kind))
    argv = ["report", str(directory), "--out", str(tmp_path / "report")] if command == "report" \
        else ["compare", str(tiny_run / "tiny"), str(directory), "--out", str(tmp_path / "cmp")]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "results.csv: " in line and says in line, line
    assert not (tmp_path / "report").exists() and not (tmp_path / "cmp").exists()


def test_a_meta_json_of_the_wrong_shape_is_bad_input(tiny_run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from convbench.cli import main

    directory = tmp_path / "run"
    shutil.copytree(tiny_run / "tiny", directory)
    (directory / "meta.json").write_text('{"suite": "tiny", "cpu": 5}')
    assert main(["report", str(directory), "--out", str(tmp_path / "report")]) == 2
    assert "'suite' should be an object" in one_error_line(capsys.readouterr().err)


def test_ctrl_c_says_what_was_kept_in_one_line_and_exits_130(tiny_run: Path,
                                                             tmp_path: Path) -> None:
    """SIGINT part-way through a run: one line on stderr naming the rows kept and how to go on;
    exit 130 (128 + SIGINT); the rows are all there and --resume completes them."""
    suite = tiny_suite(tmp_path / "slow.toml", budget_s=0.2, cases=2)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "convbench", "run", str(suite), "--out", str(out),
               "--threads", "1"]
    # SIGINT restored to its default in the child, whatever the test runner's parent set
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                           signal.SIG_DFL))
    results = out / "slow" / "results.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            results.exists() and len(results.read_text().splitlines()) >= 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    line = one_error_line(err)
    found = re.fullmatch(r"convbench: interrupted; (\d+) rows? kept in (.+) \(resume with "
                         r"--resume\)", line)
    assert found and Path(found[2]) == results, line
    kept = int(found[1])
    assert 1 <= kept < 8 and len(read_results(results)) == kept
    from convbench.cli import main  # in-process: this process knows the machine's peaks

    assert main(["run", str(suite), "--out", str(out), "--threads", "1", "--resume", "-q"]) == 0
    assert len(read_results(results)) == 8


RESUMED_OTHERWISE = [
    (["--threads", "2"], "threads = 1, this run has 2 (--threads)"),
    (["--budget", "0.01"], "suite.budget_s = 0.002, this run has 0.01 (--budget)"),
    (["--no-interleave"], "interleave = True, this run has False (--interleave"),
    (["--exact"], "suite.exact = False, this run has True (--exact)"),
    (["--batch", "3"], "holds case 'case0' as n2c4h8k4r3, but this run plans n3c4h8k4r3"),
]


def test_resume_refuses_rows_measured_otherwise(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A resumed run must measure as the rows it keeps were measured: a setting that changes a
    number differs -> exit 2 naming it and both values, and results.csv is untouched."""
    from convbench.cli import main

    suite, out = str(tiny_suite(tmp_path / "tiny.toml")), tmp_path / "out"
    first = ["run", suite, "--out", str(out), "--threads", "1", "--quiet"]
    assert main([*first, "--algo", "im2col"]) == 0
    before = (out / "tiny" / "results.csv").read_bytes()
    capsys.readouterr()
    for change, setting in RESUMED_OTHERWISE:
        assert main([*first, "--algo", "im2col", "--resume", *change]) == 2, change
        assert setting in one_error_line(capsys.readouterr().err)
        assert (out / "tiny" / "results.csv").read_bytes() == before
    # other algorithms are not another measurement: each row stands alone
    assert main([*first, "--algo", "im2col,direct", "--resume"]) == 0
    assert len(read_results(out / "tiny")) == 4


def test_compare_keeps_rows_not_timed_in_either_run_out_of_unchanged(
        tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """winograd_f2x3 is unsupported on the 1x1 case in both runs: "not timed", counted apart
    from "unchanged" in every output of compare, and left out of the terminal table."""
    from convbench.cli import main

    assert main(["compare", str(tiny_run), str(tiny_run), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "compare.csv").set_index(["case", "algo"])
    assert table.loc[("case1", "winograd_f2x3"), "change"] == "not timed"
    assert set(table.drop(("case1", "winograd_f2x3"))["change"]) == {"unchanged"}
    counts = "7 unchanged, 1 not timed"
    assert counts in printed and counts in (tmp_path / "compare.md").read_text()
    assert counts in (tmp_path / "compare.html").read_text()
    assert "| not timed | case1 | winograd_f2x3 |" in (tmp_path / "compare.md").read_text()
    assert "unsupported in both runs" not in printed.split("compare.csv")[0]  # not in the table


def test_output_for_a_log_is_readable(tiny_run: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Not a terminal (capsys): tables at their own width, nothing cut to "…"; a progress line
    for each result that ran, and the others listed once after the table with their reason."""
    from convbench.cli import main

    suite = tiny_suite(tmp_path / "tiny.toml")
    assert main(["run", str(suite), "--out", str(tmp_path), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "…" not in printed and "winograd_f2x3" in printed.split("┃")[5]
    progress = [line for line in printed.splitlines() if line.startswith("[")]
    assert len(progress) == 7 and not any("unsupported" in line for line in progress)
    assert "not run (1 results):" in printed
    assert re.search(r"^  unsupported: winograd_f2x3 on case1: .*3", printed, re.MULTILINE)
    assert printed.rstrip().splitlines()[-1] == "convbench run: ok (7 ok, 1 unsupported)"
    assert main(["compare", str(tiny_run), str(tmp_path), "--out", str(tmp_path)]) in (0, 1)
    assert "…" not in capsys.readouterr().out


def test_ci_set_means_a_log_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from convbench.commands import output

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert not output.writing_a_log()
    monkeypatch.setenv("CI", "true")
    assert output.writing_a_log() and output.stdout_console().width == output.LOG_WIDTH


def test_quiet_prints_the_verdict_and_verbose_every_result(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from convbench.cli import main

    suite = str(tiny_suite(tmp_path / "tiny.toml"))
    assert main(["run", suite, "--out", str(tmp_path / "q"), "--quiet"]) == 0
    assert capsys.readouterr().out == "convbench run: ok (7 ok, 1 unsupported)\n"
    assert main(["run", suite, "--out", str(tmp_path / "v"), "--verbose"]) == 0
    printed = capsys.readouterr().out
    assert len([line for line in printed.splitlines() if line.startswith("[")]) == 8
    assert "not run (" not in printed  # each was on its own line already
    assert main(["compare", str(tmp_path / "q"), str(tmp_path / "v"), "-q",
                 "--threshold", "900%"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "convbench compare: no regression (7 unchanged, 1 not timed)"]


def test_json_format_is_one_document_on_stdout(tiny_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from convbench.cli import main

    suite = str(tiny_suite(tmp_path / "tiny.toml"))
    assert main(["run", suite, "--out", str(tmp_path / "new"), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 0 and document["verdict"].startswith("convbench run: ok")
    (tiny,) = document["suites"]
    assert tiny["counts"] == {"ok": 7, "unsupported": 1} and len(tiny["rows"]) == 8
    assert tiny["rows"][0]["case"] == "case0" and "im2col" in tiny["geomean_speedups"]
    assert main(["compare", str(tiny_run), str(tmp_path / "new"), "--format", "json",
                 "--threshold", "900%", "--out", str(tmp_path)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["counts"] == {"unchanged": 7, "not timed": 1} and len(document["rows"]) == 8
    assert {"change", "ratio", "p_value", "note"} <= set(document["rows"][0])


def test_a_github_job_summary_gets_the_table_and_the_decision(
        tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convbench.cli import main

    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    suite = str(tiny_suite(tmp_path / "tiny.toml"))
    assert main(["run", suite, "--out", str(tmp_path / "new"), "--quiet"]) == 0
    text = summary.read_text()
    assert text.startswith("## convbench run: ok (7 ok, 1 unsupported)")
    assert "| case | im2col | direct | torch | winograd_f2x3 |" in text
    assert re.search(r"\| case1 \|.*\| unsupported \|", text)
    assert main(["compare", str(tiny_run), str(tmp_path / "new"), "--quiet",
                 "--threshold", "900%", "--out", str(tmp_path)]) == 0
    assert "## convbench compare: no regression" in summary.read_text()[len(text):]


@pytest.mark.parametrize("argv", [
    ["describe", "{suite}.missing.toml"],
    ["describe", "{tmp}"],
    ["run", "{suite}", "--algo", ","],
    ["run", "{suite}", "--backend", "cuda"],
    ["run", "{suite}", "--algo", "nosuch"],
    ["tune", "{suite}", "--algo", "torch"],
    ["compare", "{tmp}/nowhere", "{tmp}"],
    ["compare", "{run}", "{run}", "--confirms", "{tmp}/confirms", "--out", "{tmp}/cmp"],
    ["compare", "{run}", "{run}", "--threshold", "nan"],
    ["report", "{tmp}/nowhere"],
])
def test_bad_usage_is_one_line_and_exit_2(argv: list[str], tiny_run: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from convbench.cli import main

    (tmp_path / "confirms").mkdir()
    (tmp_path / "confirms" / "compare.csv").write_bytes(b"\x9b\x00not a table")
    names = {"suite": str(tiny_suite(tmp_path / "tiny.toml")), "tmp": str(tmp_path),
             "run": str(tiny_run)}
    try:
        code = main([a.format(**names) for a in argv])
    except SystemExit as exit_info:  # argparse's own usage errors
        code = exit_info.code
    assert code == 2
    assert one_error_line(capsys.readouterr().err).startswith("convbench")


def test_run_records_the_project_commit_only_when_given(tmp_path: Path, monkeypatch) -> None:
    import json

    from convbench.cli import main

    for variable in environment.COMMIT_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    args = ["run", "smoke", "--algo", "im2col", "--batch", "1", "--processes", "1", "-q"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "git" not in json.loads((tmp_path / "a" / "smoke" / "meta.json").read_text())
    assert main([*args, "--out", str(tmp_path / "b"), "--commit", "v1.2"]) == 0
    meta = json.loads((tmp_path / "b" / "smoke" / "meta.json").read_text())
    assert meta["git"]["ref"] == "v1.2" and meta["convbench"]["version"]
