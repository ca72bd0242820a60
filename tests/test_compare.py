"""`convbench compare`: the classification table, the statistics behind it, normalization to the
reference, the Markdown/HTML output and the exit codes. Runs are written by hand (results.csv,
samples.jsonl, meta.json) with synthetic samples, so every expected verdict is known."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from convbench.analysis.compare import (
    CompareOptions,
    bootstrap_ratio_ci,
    compare,
    gate_failed,
    mann_whitney_p,
    smallest_p,
)
from convbench.analysis.compare_report import summary
from convbench.cli import EXIT_OK, EXIT_USAGE, EXIT_WRONG, main
from convbench.run.rundir import PROCESSES_KEY, ResultsFile, read_runs

MS = 1e-3


def median_options(**given: object) -> CompareOptions:
    """compare's settings before the gate's became its defaults: medians, raw times, a 10%
    threshold; the tests of those mechanisms use them, and name what they change."""
    return CompareOptions(**({"threshold": 0.10, "normalize": None, "statistic": "median"}
                             | given))


def samples(median_s: float, count: int = 30, spread: float = 0.02, seed: int = 0) -> np.ndarray:
    """`count` samples around `median_s` with a relative spread (lognormal)."""
    rng = np.random.default_rng(seed)
    return median_s * np.exp(rng.normal(0.0, spread, count))


def write_run(directory: Path, rows: dict[tuple[str, str], object], interleave: bool = False,
              reference: str = "torch") -> Path:
    """A run directory. Each value is an array of samples (an ok row), a pair (samples, the
    process of each sample), or a status string."""
    results = ResultsFile(directory, resume=False)
    for (case, algo), value in rows.items():
        row = {"suite": "synthetic", "case": case, "descriptor": "n1c4h8k4r3", "op": "conv2d",
               "algo": algo, "backend": "numpy", "dtype": "float32"}
        if isinstance(value, tuple):
            value, row[PROCESSES_KEY] = value
        if isinstance(value, str):
            row |= {"status": value, "reason": f"made {value}"}
        else:
            values = np.asarray(value)
            row |= {"status": "ok", "reason": "", "time_median_s": float(np.median(values)),
                    "repeats": len(values), "calls_per_sample": 1, "samples_s": values.tolist()}
        results.append(row)
    meta = {"suite": {"name": "synthetic", "reference": reference}, "interleave": interleave,
            "threads": 1, "cpu": {"model": "test"}, "date": "2026-01-01T00:00:00+00:00"}
    (directory / "meta.json").write_text(json.dumps(meta))
    return directory


BASE = {
    ("c1", "torch"): samples(1 * MS, seed=1),
    ("c1", "same"): samples(1 * MS, seed=2),
    ("c1", "slower"): samples(1 * MS, seed=3),
    ("c1", "faster"): samples(1 * MS, seed=4),
    ("c1", "slightly"): samples(1 * MS, seed=5),
    ("c1", "few"): samples(1 * MS, count=3, seed=6),
    ("c1", "gone"): samples(1 * MS, seed=7),
    ("c1", "breaks"): samples(1 * MS, seed=8),
    ("c1", "broken"): "wrong",
    ("c1", "unsupported"): "unsupported",
    ("c1", "skips"): samples(1 * MS, seed=9),
}
NEW = {
    ("c1", "torch"): samples(1 * MS, seed=11),
    ("c1", "same"): samples(1 * MS, seed=12),
    ("c1", "slower"): samples(1.3 * MS, seed=13),
    ("c1", "faster"): samples(0.7 * MS, seed=14),
    ("c1", "slightly"): samples(1.05 * MS, seed=15),  # significant, but under the threshold
    ("c1", "few"): samples(1.5 * MS, count=3, seed=16),  # over it, but 3 samples prove nothing
    ("c1", "appears"): samples(1 * MS, seed=17),
    ("c1", "breaks"): "wrong",
    ("c1", "broken"): "wrong",
    ("c1", "unsupported"): "unsupported",
    ("c1", "skips"): "skipped",
}
EXPECTED = {
    "torch": "unchanged", "same": "unchanged", "slower": "regressed", "faster": "improved",
    "slightly": "unchanged", "few": "unchanged", "appears": "new", "gone": "missing",
    "breaks": "now failing", "broken": "not timed", "unsupported": "not timed",
    "skips": "not compared",
}


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    return write_run(tmp_path / "base", BASE), write_run(tmp_path / "new", NEW)


def test_classification_table(runs: tuple[Path, Path]) -> None:
    table = compare(read_runs(runs[0]), read_runs(runs[1]), median_options())
    assert dict(zip(table["algo"], table["change"])) == EXPECTED
    by_algo = table.set_index("algo")
    assert by_algo.loc["slower", "ratio"] == pytest.approx(1.3, rel=0.03)
    assert by_algo.loc["slower", "p_value"] < 1e-6
    low, high = by_algo.loc["slower", ["ci_low", "ci_high"]]
    assert low < by_algo.loc["slower", "ratio"] < high and low > 1.2 and high < 1.4
    assert by_algo.loc["slightly", "p_value"] < 0.002  # significant, yet only 5%
    assert "too few samples (3, 3)" in by_algo.loc["few", "note"]
    assert by_algo.loc["breaks", "note"] == "wrong: made wrong"
    assert gate_failed(table)
    # the worst first: regressions and new failures head the table
    assert list(table["change"][:2]) == ["regressed", "now failing"]


def test_threshold_and_alpha_are_options(runs: tuple[Path, Path]) -> None:
    base, new = read_runs(runs[0]), read_runs(runs[1])
    loose = compare(base, new, median_options(threshold=0.5)).set_index("algo")["change"]
    assert loose["slower"] == "unchanged" and loose["faster"] == "unchanged"
    tight = compare(base, new, median_options(threshold=0.03)).set_index("algo")["change"]
    assert tight["slightly"] == "regressed"
    strict = compare(base, new, median_options(alpha=1e-30)).set_index("algo")["change"]
    assert strict["slower"] == "unchanged"


def test_statistics_helpers() -> None:
    a, b = samples(1.0, seed=1), samples(1.25, seed=2)
    assert mann_whitney_p(a, b) < 1e-8
    assert mann_whitney_p(a, a) == pytest.approx(1.0)
    assert mann_whitney_p(np.ones(5), np.ones(5)) == 1.0  # all tied: no evidence
    assert mann_whitney_p(np.ones(1), np.ones(9)) == 1.0
    low, high = bootstrap_ratio_ci(a, b)
    assert low < np.median(b) / np.median(a) < high
    assert smallest_p(3, 3) == pytest.approx(0.1)  # 2 / C(6, 3)
    assert smallest_p(10, 10) < 2e-5


def four_cases(scale: dict[tuple[str, str], float] | None = None, machine: float = 1.0,
               seed: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """Four cases x (torch, im2col, direct), every time times `machine`, some scaled more."""
    rows = {}
    for i, case in enumerate(("c1", "c2", "c3", "c4")):
        for j, (algo, ms) in enumerate((("torch", 1.0), ("im2col", 0.5), ("direct", 2.0))):
            factor = machine * (scale or {}).get((case, algo), 1.0)
            rows[(case, algo)] = samples(ms * MS * factor, seed=seed + 10 * i + j)
    return rows


def test_uniformly_slower_machine_is_no_regression_when_normalized(tmp_path: Path) -> None:
    base = read_runs(write_run(tmp_path / "b", four_cases()))
    # the whole machine 50% slower, and direct 30% slower in c2 on top of it
    new = read_runs(write_run(tmp_path / "n", four_cases({("c2", "direct"): 1.3}, 1.5, seed=1)))
    raw = compare(base, new, median_options())
    assert set(raw["change"]) == {"regressed"}
    table = compare(base, new, median_options(normalize="reference"))
    assert table.attrs["machine_factors"] == {
        ("synthetic", "numpy", "fwd"): pytest.approx(1.5, rel=0.02)}
    changes = dict(zip(zip(table["case"], table["algo"]), table["change"]))
    assert changes.pop(("c2", "direct")) == "regressed"
    assert set(changes.values()) == {"unchanged"}  # the reference's rows included
    row = table.set_index(["case", "algo"]).loc[("c2", "direct")]
    assert row["ratio"] == pytest.approx(1.3, rel=0.03) and row["normalized"]
    assert "Machine factor new/base, from the reference: synthetic [numpy, fwd] 1.5" in \
        summary(table)


def test_the_machine_factor_spans_the_suite(tmp_path: Path) -> None:
    base = read_runs(write_run(tmp_path / "b", four_cases()))
    # torch alone 13% faster in c1 (its own scatter): taken case by case, every other algorithm
    # of c1 would look 15% slower; over the suite the factor is 0.97 and nothing moves
    quirk = read_runs(write_run(tmp_path / "q", four_cases({("c1", "torch"): 0.87}, seed=1)))
    table = compare(base, quirk, median_options(normalize="reference"))
    changes = dict(zip(zip(table["case"], table["algo"]), table["change"]))
    assert changes.pop(("c1", "torch")) == "improved"  # what did change: torch itself, in c1
    assert set(changes.values()) == {"unchanged"}
    # the reference itself is compared too: 30% slower in one case is caught
    slow_ref = read_runs(write_run(tmp_path / "s", four_cases({("c3", "torch"): 1.3}, seed=2)))
    table = compare(base, slow_ref, median_options(normalize="reference")).set_index(
        ["case", "algo"])
    assert table.loc[("c3", "torch"), "change"] == "regressed"
    assert table.loc[("c3", "torch"), "ratio"] == pytest.approx(1.3 / 1.3 ** 0.25, rel=0.03)


CASE_ALGOS = (("torch", 1.0), ("im2col", 0.5), ("direct", 2.0), ("fft", 3.0), ("winograd", 0.8))


def five_algorithms(scale: dict[tuple[str, str], float] | None = None, seed: int = 0,
                    auto: str | None = None) -> dict[tuple[str, str], np.ndarray]:
    """Four cases x five algorithms (the fewest a case factor takes), and optionally `auto`,
    the same function as `auto`'s pick timed again."""
    rows = {}
    for i, case in enumerate(("c1", "c2", "c3", "c4")):
        for j, (algo, ms) in enumerate(CASE_ALGOS + ((("auto", 0.5),) if auto else ())):
            factor = (scale or {}).get((case, algo), 1.0)
            rows[(case, algo)] = samples(ms * MS * factor, seed=seed + 10 * i + j)
    return rows


def test_case_normalization_follows_an_episode_that_slows_one_case(tmp_path: Path) -> None:
    """Another tenant's load while c2 ran slowed all of c2's algorithms (interleaved) by 45%;
    direct really is 30% slower in c3. By the suite-wide reference every row of c2 is a false
    alarm; by the case's median only c3's direct regresses."""
    base = read_runs(write_run(tmp_path / "b", five_algorithms()))
    episode = {("c2", algo): 1.45 for algo, _ in CASE_ALGOS}
    new = read_runs(write_run(tmp_path / "n", five_algorithms(
        episode | {("c3", "direct"): 1.3}, seed=1)))
    by_reference = compare(base, new, median_options(normalize="reference"))
    flagged = by_reference[by_reference["change"] == "regressed"]
    assert {("c2", "im2col"), ("c2", "direct"), ("c2", "torch")} <= set(
        zip(flagged["case"], flagged["algo"]))
    by_case = compare(base, new, median_options(normalize="case"))
    changes = dict(zip(zip(by_case["case"], by_case["algo"]), by_case["change"]))
    assert changes.pop(("c3", "direct")) == "regressed"
    assert set(changes.values()) == {"unchanged"}
    factors = by_case.attrs["machine_factors"]
    assert factors[("synthetic", "c2", "numpy", "fwd")] == pytest.approx(1.45, rel=0.03)
    assert factors[("synthetic", "c3", "numpy", "fwd")] == pytest.approx(1.0, abs=0.03)
    row = by_case.set_index(["case", "algo"]).loc[("c3", "direct")]
    assert row["ratio"] == pytest.approx(1.3, rel=0.03) and row["normalized"]
    assert "Case factors new/base (median of the case's algorithms)" in summary(by_case)


def test_case_normalization_needs_five_algorithms(tmp_path: Path) -> None:
    """Three algorithms a case: too few for a case's median, so the reference's machine factor
    over the suite stands in (the default), or, without the reference, the raw times."""
    rows = four_cases()  # three algorithms a case
    slower = four_cases({("c1", "im2col"): 1.3}, seed=1)
    table = compare(read_runs(write_run(tmp_path / "b", rows)),
                    read_runs(write_run(tmp_path / "n", slower)), median_options(normalize="case"))
    row = table.set_index(["case", "algo"]).loc[("c1", "im2col")]
    assert row["change"] == "regressed" and row["normalized"]  # by the reference, and caught
    assert "fewer than 5 algorithms timed in both runs: normalized by the reference" in \
        row["note"]
    assert table.attrs["reference_factors"] and not table.attrs["machine_factors"]
    no_torch = {key: value for key, value in rows.items() if key[1] != "torch"}
    table = compare(read_runs(write_run(tmp_path / "b2", no_torch)),
                    read_runs(write_run(tmp_path / "n2", {k: v for k, v in slower.items()
                                                           if k[1] != "torch"})),
                    median_options(normalize="case"))
    row = table.set_index(["case", "algo"]).loc[("c1", "im2col")]
    assert row["change"] == "regressed" and not row["normalized"]  # compared raw, and caught
    assert "the reference not timed in both: not normalized" in row["note"]


def test_auto_is_left_out_of_the_case_factor(tmp_path: Path) -> None:
    """im2col 30% slower, and auto, which runs im2col, with it: counting auto, two of six rows
    would move; without it one of five does, and the median stays."""
    base = write_run(tmp_path / "b", five_algorithms(auto="im2col"))
    slower = five_algorithms({("c1", "im2col"): 1.3, ("c1", "auto"): 1.3}, seed=1, auto="im2col")
    new = write_run(tmp_path / "n", slower)
    for run in (base, new):  # auto's rows say what they ran
        frame = pd.read_csv(run / "results.csv")
        frame["ran_algo"] = np.where(frame["algo"] == "auto", "im2col", frame["algo"])
        frame.to_csv(run / "results.csv", index=False)
    table = compare(read_runs(base), read_runs(new), median_options(normalize="case"))
    assert table.attrs["machine_factors"][("synthetic", "c1", "numpy", "fwd")] == \
        pytest.approx(1.0, abs=0.03)
    changes = table.set_index(["case", "algo"])["change"]
    assert changes[("c1", "im2col")] == "regressed" and changes[("c1", "auto")] == "regressed"
    assert set(changes.drop([("c1", "im2col"), ("c1", "auto")])) == {"unchanged"}


def contended(clean: np.ndarray, share: float, seed: int) -> np.ndarray:
    """`clean` samples of which a `share`, at random, were slowed 1.5-3x by other processes."""
    rng = np.random.default_rng(seed)
    hit = rng.random(len(clean)) < share
    return np.where(hit, clean * rng.uniform(1.5, 3.0, len(clean)), clean)


def test_q10_sees_through_other_processes_and_still_catches_a_slowdown(tmp_path: Path) -> None:
    # Identical code; the new run shared the machine: half its samples were interrupted.
    base = {("c1", "torch"): samples(MS, 40, seed=1), ("c1", "im2col"): samples(MS, 40, seed=2)}
    busy = {("c1", "torch"): contended(samples(MS, 40, seed=3), 0.1, seed=5),
            ("c1", "im2col"): contended(samples(MS, 40, seed=4), 0.6, seed=6)}
    b, n = read_runs(write_run(tmp_path / "b", base)), read_runs(write_run(tmp_path / "n", busy))
    by_median = compare(b, n, median_options(normalize="reference")).set_index("algo")
    assert by_median.loc["im2col", "change"] == "regressed"  # a false alarm
    by_q10 = compare(b, n, median_options(normalize="reference", statistic="q10"))
    row = by_q10.set_index("algo").loc["im2col"]
    assert row["change"] == "unchanged" and row["ratio"] == pytest.approx(1.0, abs=0.05)
    # a real 30% slowdown on the same busy machine is still caught
    slow = dict(busy)
    slow[("c1", "im2col")] = busy[("c1", "im2col")] * 1.3
    caught = compare(b, read_runs(write_run(tmp_path / "s", slow)),
                     median_options(normalize="reference", statistic="q10"))
    row = caught.set_index("algo").loc["im2col"]
    assert row["change"] == "regressed" and row["ratio"] == pytest.approx(1.3, rel=0.05)
    assert row["ci_low"] < row["ratio"] < row["ci_high"]


def test_bootstrap_ci_of_a_low_quantile() -> None:
    base, new = samples(1.0, 60, seed=1), samples(1.2, 60, seed=2)
    low, high = bootstrap_ratio_ci(base, new, quantile=0.1)
    assert low < np.quantile(new, 0.1) / np.quantile(base, 0.1) < high
    assert 1.1 < low and high < 1.3


def test_normalization_falls_back_without_the_reference(tmp_path: Path) -> None:
    base = write_run(tmp_path / "b", {("c1", "torch"): "error", ("c1", "im2col"): samples(MS)})
    new = write_run(tmp_path / "n", {("c1", "torch"): "error",
                                     ("c1", "im2col"): samples(MS, seed=3)})
    table = compare(read_runs(base), read_runs(new), median_options(normalize="reference"))
    row = table.set_index("algo").loc["im2col"]
    assert row["change"] == "unchanged" and not row["normalized"]
    assert "reference not timed in both runs" in row["note"]


def test_rows_without_raw_samples_are_never_regressions(tmp_path: Path) -> None:
    base, new = write_run(tmp_path / "b", BASE), write_run(tmp_path / "n", NEW)
    (new / "samples.jsonl").unlink()  # results from before samples were kept
    row = compare(read_runs(base), read_runs(new), median_options()).set_index("algo").loc["slower"]
    assert row["change"] == "unchanged"
    assert row["ratio"] == pytest.approx(1.3, rel=0.03)
    assert row["note"] == "no raw samples: significance not tested"


def test_directory_of_suites_and_direction_default(tmp_path: Path) -> None:
    write_run(tmp_path / "base" / "synthetic", BASE)
    write_run(tmp_path / "new" / "synthetic", NEW)
    table = compare(read_runs(tmp_path / "base"), read_runs(tmp_path / "new"), median_options())
    assert set(table["direction"]) == {"fwd"}
    assert dict(zip(table["algo"], table["change"])) == EXPECTED


# --- the command ----------------------------------------------------------------------------


def test_cli_exit_1_on_regression_and_writes_reports(runs: tuple[Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["compare", str(runs[0]), str(runs[1]), "--out", str(out)]) == EXIT_WRONG
    printed = capsys.readouterr().out
    assert "regressed" in printed and "now failing" in printed
    markdown = (out / "compare.md").read_text()
    assert "| regressed | c1 | slower |" in markdown and "1 new" in markdown
    html = (out / "compare.html").read_text()
    assert html.startswith("<!doctype html>") and "<td>now failing</td>" in html


def test_cli_exit_0_without_regression(runs: tuple[Path, Path]) -> None:
    assert main(["compare", str(runs[0]), str(runs[0])]) == EXIT_OK
    assert (runs[0] / "compare.md").exists()  # default: beside NEW
    assert main(["compare", str(runs[0]), str(runs[1]), "--threshold", "60%"]) == EXIT_WRONG
    table = pd.DataFrame({"change": ["improved", "new", "missing", "unchanged"]})
    assert not gate_failed(table)


def test_cli_exit_1_on_newly_wrong_only(tmp_path: Path) -> None:
    base = write_run(tmp_path / "b", {("c1", "torch"): samples(MS)})
    new = write_run(tmp_path / "n", {("c1", "torch"): "wrong"})
    assert main(["compare", str(base), str(new)]) == EXIT_WRONG


@pytest.mark.parametrize("problem", ["missing_dir", "no_results", "nothing_in_common", "garbage"])
def test_cli_exit_2_on_bad_input(problem: str, runs: tuple[Path, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    base, new = runs
    if problem == "missing_dir":
        new = tmp_path / "nowhere"
    elif problem == "no_results":
        new = tmp_path / "empty"
        new.mkdir()
    elif problem == "nothing_in_common":
        new = write_run(tmp_path / "other", {("c9", "torch"): samples(MS)})
    else:
        new = tmp_path / "garbage"
        new.mkdir()
        (new / "results.csv").write_text('a,b\n"unterminated\n')
    assert main(["compare", str(base), str(new)]) == EXIT_USAGE
    assert "convbench: error:" in capsys.readouterr().err


def test_cli_statistic_and_normalize(runs: tuple[Path, Path], tmp_path: Path) -> None:
    base, new = runs
    out = tmp_path / "q10"
    code = main(["compare", str(base), str(new), "--statistic", "q10", "--normalize",
                 "reference", "--out", str(out)])
    assert code == EXIT_WRONG
    markdown = (out / "compare.md").read_text()
    assert "q10 ratio beyond 7%" in markdown and "divided by the machine factor" in markdown


def test_confirmation_fails_only_on_rows_that_failed_twice(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    """The CI gate's second comparison (--confirms): a row that regressed in both comparisons
    fails it; regressions in different rows (a noisy machine's false alarms) do not."""
    base = write_run(tmp_path / "base", five_algorithms())
    first = write_run(tmp_path / "first", five_algorithms({("c1", "im2col"): 1.3,
                                                           ("c2", "direct"): 1.3}, seed=1))
    assert main(["compare", str(base), str(first), "--normalize", "case"]) == EXIT_WRONG
    assert (first / "compare.csv").is_file()
    again = write_run(tmp_path / "again", five_algorithms({("c1", "im2col"): 1.3}, seed=2))
    assert main(["compare", str(base), str(again), "--normalize", "case",
                 "--confirms", str(first)]) == EXIT_WRONG
    assert "confirmed: c1 / im2col regressed in both comparisons" in capsys.readouterr().out
    elsewhere = write_run(tmp_path / "elsewhere", five_algorithms({("c3", "torch"): 1.3}, seed=3))
    assert main(["compare", str(base), str(elsewhere), "--normalize", "case",
                 "--confirms", str(first)]) == EXIT_OK
    assert "not confirmed" in capsys.readouterr().out
    written = pd.read_csv(elsewhere / "compare.csv").set_index(["case", "algo"])
    assert written.loc[("c3", "torch"), "change"] == "regressed"  # it failed, elsewhere
    assert main(["compare", str(base), str(again), "--confirms", str(tmp_path)]) == EXIT_USAGE
    assert main(["compare", str(base), str(again), "--confirms", str(again)]) == EXIT_USAGE


def test_confirmation_keeps_na_like_keys(tmp_path: Path) -> None:
    """A case named "NA" survives compare.csv's round trip (pandas would read it as NaN)."""
    rows = {("NA", algo): samples(ms * MS, seed=j) for j, (algo, ms) in enumerate(CASE_ALGOS)}
    slow = {key: value * (1.3 if key[1] == "im2col" else 1.0) for key, value in rows.items()}
    base = write_run(tmp_path / "base", rows)
    runs = [write_run(tmp_path / name, {k: v * (1 + 0.001 * i) for k, v in slow.items()})
            for i, name in enumerate(("first", "second"))]
    assert main(["compare", str(base), str(runs[0]), "--normalize", "case"]) == EXIT_WRONG
    assert main(["compare", str(base), str(runs[1]), "--normalize", "case",
                 "--confirms", str(runs[0])]) == EXIT_WRONG


def test_cli_rejects_a_bad_threshold(runs: tuple[Path, Path]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", str(runs[0]), str(runs[1]), "--threshold", "lots"])
    assert exit_info.value.code == EXIT_USAGE


ROOT = Path(__file__).parent.parent
GATE = ROOT / "benchmarks" / "gate.sh"


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_the_gate_baseline_names_a_commit_of_the_history() -> None:
    """The CI gate measures the code of the commit benchmarks/baseline/commit names, so that
    commit must be in every full clone."""
    lines = [line.strip() for line in (ROOT / "benchmarks" / "baseline" / "commit").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 1 and len(lines[0]) == 40, lines
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() != "false":
        pytest.skip("not a full git clone: the baseline commit cannot be looked up")
    found = _git("merge-base", "--is-ancestor", lines[0], "HEAD")  # in the history, not loose
    assert found.returncode == 0, f"{lines[0]} is not an ancestor of HEAD: {found.stderr}"


@pytest.mark.parametrize("args, says", [
    (["--base", "no-such-commit"], "gate: the baseline commit 'no-such-commit' is not in this"),
    (["--speed"], "usage: benchmarks/gate.sh"),
    (["--base"], "usage: benchmarks/gate.sh"),
])
def test_the_gate_refuses_what_it_cannot_run_before_any_work(args: list[str], says: str) -> None:
    if not (ROOT / ".venv" / "bin" / "python").exists() or not (ROOT / ".git").exists():
        pytest.skip("the gate runs from a git clone set up by make setup")
    done = subprocess.run([str(GATE), *args], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert says in done.stderr
    assert "smoke" not in done.stdout  # nothing was run


def test_the_command_offers_every_statistic_compare_knows() -> None:
    from convbench.analysis.compare import STATISTICS
    from convbench.commands.compare import STATISTIC_NAMES

    assert STATISTIC_NAMES == tuple(STATISTICS)


def per_process(*medians_s: float, count: int = 20, seed: int = 0
                ) -> tuple[np.ndarray, list[int]]:
    """`count` samples from each of len(medians_s) processes, process i around medians_s[i]:
    (samples, the process of each)."""
    parts = [samples(m, count, spread=0.01, seed=seed + i) for i, m in enumerate(medians_s)]
    return np.concatenate(parts), [i for i, part in enumerate(parts) for _ in part]


def test_a_change_within_the_spread_between_processes_is_no_regression(tmp_path: Path) -> None:
    """One process of BASE was lucky (1.00 ms), its other 15% slower: NEW at 1.12 and 1.16 ms
    is 12% slower by the minimum, and significantly so over the pooled samples, but no
    slower than BASE's slower process. That is the processes' luck, not a change. Well beyond
    it (1.30 ms in both of NEW's processes), it is a regression."""
    options = CompareOptions(normalize=None)  # the default statistic (min) and threshold (7%)
    base = read_runs(write_run(tmp_path / "b", {("c1", "a"): per_process(1.0 * MS, 1.15 * MS)}))
    new = read_runs(write_run(tmp_path / "n", {("c1", "a"): per_process(
        1.12 * MS, 1.16 * MS, seed=5)}))
    assert len(base[0].processes[("c1", "a", "numpy", "fwd")]) == 40  # read from samples.jsonl
    row = compare(base, new, options).iloc[0]
    assert row["ratio"] > 1.10 and row["p_value"] < options.alpha
    assert row["change"] == "unchanged"
    assert "within the spread between processes (min per process: base" in row["note"]
    slow = read_runs(write_run(tmp_path / "s", {("c1", "a"): per_process(
        1.30 * MS, 1.32 * MS, seed=5)}))
    assert compare(base, slow, options).iloc[0]["change"] == "regressed"
    faster = read_runs(write_run(tmp_path / "f", {("c1", "a"): per_process(
        0.80 * MS, 0.82 * MS, seed=5)}))
    assert compare(base, faster, options).iloc[0]["change"] == "improved"


def test_one_process_a_side_is_judged_as_before(tmp_path: Path) -> None:
    """Runs of one process (--processes 1, or made before processes were recorded): the spread
    rule is the ratio's own direction, and the threshold and the test decide."""
    options = CompareOptions(normalize=None)
    base = read_runs(write_run(tmp_path / "b", {("c1", "a"): samples(1.0 * MS)}))
    new = read_runs(write_run(tmp_path / "n", {("c1", "a"): samples(1.12 * MS, seed=5)}))
    assert not base[0].processes
    assert compare(base, new, options).iloc[0]["change"] == "regressed"


def test_the_defaults_are_the_gates_settings() -> None:
    """`convbench compare BASE NEW` without flags judges as the CI gate does (README, "Catching
    regressions"): case normalization (else the reference), the minimum, a 7% threshold."""
    from convbench.cli import build_parser

    options = CompareOptions()
    assert (options.normalize, options.statistic, options.threshold) == ("case", "min", 0.07)
    args = build_parser().parse_args(["compare", "a", "b"])
    assert (args.normalize, args.statistic, args.threshold) == ("case", "min", 0.07)


def test_each_machine_of_a_cluster_run_is_compared_with_the_same_machine(tmp_path: Path) -> None:
    """A --cluster directory holds one suite from several machines (each case timed on one of
    them): compare matches each machine's rows with that machine's on the other side, and a case
    that another machine timed this time is new and missing, never compared across machines."""
    from convbench.analysis.compare import CompareOptions, compare
    from convbench.run.rundir import ResultsFile, read_runs, write_meta

    def side(name: str, where: dict[str, tuple[str, str, float]]) -> Path:
        out = tmp_path / name
        results = ResultsFile(out, resume=False)
        for case, (host, fp, scale) in where.items():
            samples = [scale * (1.0 + 0.001 * i) for i in range(40)]
            results.append({"suite": "s", "case": case, "algo": "im2col", "backend": "numpy",
                            "direction": "fwd", "status": "ok", "host": host,
                            "fingerprint": fp, "time_median_s": float(np.median(samples)),
                            "time_min_s": min(samples), "repeats": 40, "samples_s": samples})
        write_meta(out, {"suite": {"name": "s", "reference": "torch"},
                         "machines": {"h1/f1": {"host": "h1"}, "h2/f2": {"host": "h2"}}},
                   resume=False)
        return out

    base = side("base", {"a": ("h1", "f1", 1.0), "b": ("h2", "f2", 1.0), "c": ("h1", "f1", 1.0)})
    new = side("new", {"a": ("h1", "f1", 1.5), "b": ("h2", "f2", 1.0), "c": ("h2", "f2", 1.0)})
    table = compare(read_runs(base), read_runs(new), CompareOptions(normalize=None))
    changes = {(r.suite, r.case): r.change for r in table.itertuples()}
    assert changes == {("s@h1", "a"): "regressed", ("s@h2", "b"): "unchanged",
                       ("s@h1", "c"): "missing", ("s@h2", "c"): "new"}, changes
