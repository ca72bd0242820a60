"""results.csv and samples.jsonl as a killed run leaves them: a last line cut short mid-write is
dropped by --resume (and only then), the rows before it are kept and not run again, and a new
row lands on a line of its own. Reading refuses a cut-short file and says how to repair it."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from convbench.run import rundir
from convbench.run.rundir import COLUMNS, ResultsFile, read_results, read_samples, rows_written
from convbench.run.runner import RunOptions, run
from convbench.run.suite import load_suite

SMOKE = load_suite("smoke")


def _row(case: str, algo: str, **fields) -> dict:
    return {"suite": "s", "case": case, "descriptor": f"n1c2h4k2r3{case}", "algo": algo,
            "backend": "numpy", "status": "ok", "time_median_s": 1e-3, "direction": "fwd",
            **fields}


def _written(directory: Path, rows: list[dict], cut: str = "") -> Path:
    """results.csv with `rows`, then `cut` (the start of a row a kill interrupted)."""
    results = ResultsFile(directory, resume=False)
    for row in rows:
        results.append(row)
    with results.path.open("a") as handle:
        handle.write(cut)
    return results.path


CUTS = {  # the start of a third row, as a kill in the middle of its write leaves it
    "few_fields": ("s,c,n1c2h4k2r", "row 3 has 3 fields"),
    "last_field": (",".join(["x"] * (len(COLUMNS) - 1)) + ",2026-11-2", "last row is cut short"),
}


@pytest.mark.parametrize("cut", CUTS)
def test_resume_drops_a_last_line_cut_short(tmp_path: Path, cut: str) -> None:
    text, says = CUTS[cut]
    path = _written(tmp_path, [_row("a", "im2col"), _row("b", "im2col")], cut=text)
    with pytest.raises(ValueError, match=says):
        read_results(path)
    assert rows_written(tmp_path) == 2  # the cut row is not counted
    results = ResultsFile(tmp_path, resume=True)
    assert path.read_text().endswith("\n")
    assert text not in path.read_text()
    assert results.done() == {("a", "im2col", "numpy"), ("b", "im2col", "numpy")}
    assert results.done_descriptors() == {("a", "im2col", "numpy"): "n1c2h4k2r3a",
                                          ("b", "im2col", "numpy"): "n1c2h4k2r3b"}
    results.append(_row("c", "im2col"))
    frame = read_results(path)
    assert list(frame["case"]) == ["a", "b", "c"]
    with path.open(newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == list(COLUMNS) and all(len(line) == len(COLUMNS) for line in lines)


def test_repair_keeps_a_file_that_ends_whole(tmp_path: Path) -> None:
    path = _written(tmp_path, [_row("a", "im2col")])
    before = path.read_bytes()
    ResultsFile(tmp_path, resume=True)
    assert path.read_bytes() == before


def test_repair_of_a_header_cut_short_leaves_an_empty_file(tmp_path: Path) -> None:
    """A kill while writing the header: nothing whole is left, and the next row writes one."""
    (tmp_path / "results.csv").write_text("suite,case,descr")
    results = ResultsFile(tmp_path, resume=True)
    assert (tmp_path / "results.csv").read_bytes() == b""
    assert results.done() == set() and results.done_descriptors() == {}
    results.append(_row("a", "direct"))
    assert list(read_results(tmp_path)["algo"]) == ["direct"]


def test_repair_of_samples_cut_short(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path, resume=False)
    results.append(_row("a", "im2col", calls_per_sample=3, samples_s=[1e-3, 2e-3]))
    with results.samples_path.open("a") as handle:
        handle.write('{"case": "b", "algo": "im2col", "backend": "nu')
    ResultsFile(tmp_path, resume=True).append(
        _row("b", "im2col", calls_per_sample=2, samples_s=[3e-3, 4.123456789e-3]))
    lines = results.samples_path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    samples = read_samples(tmp_path)
    assert list(samples[("a", "im2col", "numpy", "fwd")]) == [1e-3, 2e-3]
    assert list(samples[("b", "im2col", "numpy", "fwd")]) == [3e-3, 4.12346e-3]  # 6 digits
    assert json.loads(lines[1])["number"] == 2


def test_without_resume_both_files_start_afresh(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path, resume=False)
    results.append(_row("a", "im2col", samples_s=[1e-3]))
    fresh = ResultsFile(tmp_path, resume=False)
    assert not fresh.path.exists() and not fresh.samples_path.exists()
    assert fresh.done() == set()


def test_a_row_with_unknown_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"does not know: \['speed'\]"):
        ResultsFile(tmp_path, resume=False).append(_row("a", "im2col", speed=1))


def test_resume_refuses_a_file_of_other_columns(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text("suite,case,algo,backend,status\ns,a,x,numpy,ok\n")
    with pytest.raises(ValueError, match="written with other columns .*; run without "
                       "--resume, or into another --out$"):
        ResultsFile(tmp_path, resume=True)


def test_a_resumed_run_repairs_the_cut_row_and_runs_it_again(tmp_path: Path) -> None:
    """End to end: a run of two rows, the second cut short as a kill would leave it; --resume
    drops the cut row, keeps the first untouched, and runs only the missing one."""
    options = RunOptions(algorithms=("im2col", "direct"), budget_s=0.002, threads=1)
    suite = replace(SMOKE, cases=SMOKE.cases[:1], min_repeats=3)
    path = run(suite, tmp_path, options)
    lines = path.read_text().splitlines(keepends=True)
    total = len(lines) - 1
    assert total >= 2
    whole, cut = lines[:-1], lines[-1][: len(lines[-1]) // 2]  # the last row, half written
    path.write_text("".join(whole) + cut)
    kept = _read_text("".join(whole), tmp_path / "kept" / "results.csv")
    run(suite, tmp_path, RunOptions(algorithms=("im2col", "direct"), budget_s=0.002, threads=1,
                                    resume=True))
    after = read_results(path)
    assert len(after) == total
    keys = list(zip(after["case"], after["algo"]))
    assert len(set(keys)) == total  # nothing twice
    assert path.read_text().startswith("".join(whole))  # the kept rows are as they were
    assert list(after["timestamp"][: len(kept)]) == list(kept["timestamp"])


def _read_text(text: str, path: Path):
    path.parent.mkdir()
    path.write_text(text)
    return read_results(path)


def test_reading_names_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("")
    with pytest.raises(ValueError, match=r"results\.csv: empty file: no header, no results$"):
        read_results(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"not a convbench results table: no 'suite' column "
                       r"\(header: a, b\)$"):
        read_results(path)
    path.write_text("a,b,c,d,e,f\n1,2,3,4,5,6\n")
    with pytest.raises(ValueError, match=r"\(header: a, b, c, d, e, f\)$"):
        read_results(path)
    path.write_text("a,b,c,d,e,f,g\n1,2,3,4,5,6,7\n")
    with pytest.raises(ValueError, match=r"\(header: a, b, c, d, e, f, \.\.\.\)$"):
        read_results(path)
    with pytest.raises(ValueError, match=r"nowhere\.csv: No such file or directory$"):
        read_results(tmp_path / "nowhere.csv")
    path.write_text("suite,case,algo,backend,status\ns,a,x,numpy,ok")
    with pytest.raises(ValueError, match=r"its last row is cut short \(a run killed while "
                       r"writing it\?\); `convbench run --resume` repairs it$"):
        read_results(path)
    path.write_text("suite,case,algo,backend,status\ns,a,x,numpy\n")
    with pytest.raises(ValueError, match="row 1 has 4 fields, the header 5"):
        read_results(path)
    path.write_text("suite,case,algo,backend,status\ns,a,x,numpy,fine\n")
    with pytest.raises(ValueError, match="row 1: status 'fine' is not one of ok, wrong, "
                       "unsupported, error, oom, skipped$"):
        read_results(path)
    path.write_text("suite,case,algo,backend,status,time_median_s\ns,a,x,numpy,ok,fast\n")
    with pytest.raises(ValueError, match="row 1: time_median_s 'fast' is not a number"):
        read_results(path)
    path.write_bytes(b"suite,case,algo,backend,status\ns,\xff,x,numpy,ok\n")
    with pytest.raises(ValueError, match="not text"):
        read_results(path)


def test_an_older_table_is_completed(tmp_path: Path) -> None:
    """A results.csv from before some columns existed reads with every column, flags as
    booleans and text as text."""
    path = tmp_path / "results.csv"
    path.write_text("suite,case,algo,backend,status,noisy,time_median_s\n"
                    "s,a,im2col,numpy,ok,True,0.5\ns,b,im2col,numpy,ok,False,\n")
    frame = read_results(tmp_path)  # a directory names its results.csv
    assert list(frame.columns)[:7] == ["suite", "case", "algo", "backend", "status", "noisy",
                                       "time_median_s"]
    assert set(COLUMNS) <= set(frame.columns)
    assert list(frame["noisy"]) == [True, False]
    assert list(frame["reason"]) == ["", ""] and list(frame["direction"]) == ["", ""]


def test_sample_keys_default_to_the_forward_direction() -> None:
    assert rundir.sample_key({"case": "a", "algo": "x", "backend": "numpy"}) == (
        "a", "x", "numpy", "fwd")
    assert rundir.sample_key({"case": "a", "algo": "x", "backend": "numpy",
                              "direction": float("nan")})[3] == "fwd"
    assert rundir.sample_key({"case": "a", "algo": "x", "backend": "numpy",
                              "direction": "bwd_data"})[3] == "bwd_data"


def test_the_newest_samples_line_of_a_key_wins(tmp_path: Path) -> None:
    lines = [{"case": "a", "algo": "x", "backend": "numpy", "samples_s": [1.0]},
             {"case": "a", "algo": "x", "backend": "numpy", "samples_s": [2.0]},
             {"case": "b", "algo": "x", "backend": "numpy"}]  # no samples: skipped
    (tmp_path / "samples.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\nnot json\n")
    assert {k: list(v) for k, v in read_samples(tmp_path).items()} == {
        ("a", "x", "numpy", "fwd"): [2.0]}
    assert read_samples(tmp_path / "nowhere") == {}


def test_rows_written_counts_whole_rows_only(tmp_path: Path) -> None:
    """What an interrupted run kept: no file, a header alone, whole rows, a row cut short, and
    bytes that are not UTF-8 (a kill mid-character) all count without an error."""
    path = tmp_path / "results.csv"
    assert rows_written(tmp_path) == 0
    path.write_text("a,b\n")
    assert rows_written(tmp_path) == 0
    path.write_text("a\nb\nc\n")  # one-letter rows: nothing of the last whole row is lost
    assert rows_written(tmp_path) == 2
    path.write_text("a\nb\nc\nd,partial")
    assert rows_written(tmp_path) == 2
    path.write_bytes(b"a,b\n\xff\xfe,1\n2,\xe2\x82")
    assert rows_written(tmp_path) == 1


def test_meta_of_a_fresh_run_replaces_and_of_a_resumed_run_is_kept(tmp_path: Path) -> None:
    rundir.write_meta(tmp_path, {"run": 1}, resume=False)
    rundir.write_meta(tmp_path, {"run": 2}, resume=False)  # a fresh run into the same --out
    assert json.loads((tmp_path / "meta.json").read_text()) == {"run": 2}
    rundir.write_meta(tmp_path, {"run": 3}, resume=True)
    rundir.write_meta(tmp_path, {"run": 4}, resume=True)
    assert json.loads((tmp_path / "meta.json").read_text()) == {
        "run": 2, "resumed": [{"run": 3}, {"run": 4}]}
    rundir.write_meta(tmp_path, {"out": tmp_path / "x"}, resume=False)  # not JSON: as text
    text = (tmp_path / "meta.json").read_text()
    assert json.loads(text) == {"out": str(tmp_path / "x")}
    assert text.startswith('{\n  "out": ') and text.endswith("}\n")  # indented by 2
    rundir.update_meta(tmp_path, {"noise": {"other_load": 0.1}})
    assert json.loads((tmp_path / "meta.json").read_text())["noise"] == {"other_load": 0.1}


def test_samples_name_their_process_only_when_there_were_several(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path, resume=False)
    results.append(_row("a", "im2col", samples_s=[1e-3, 2e-3], **{rundir.PROCESSES_KEY: [0, 0]}))
    results.append(_row("b", "im2col", samples_s=[1e-3, 2e-3], **{rundir.PROCESSES_KEY: [0, 1]}))
    first, second = map(json.loads, results.samples_path.read_text().splitlines())
    assert "process" not in first and second["process"] == [0, 1]
