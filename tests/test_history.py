"""The results database in SQLite: storing runs (once), listing them, a case's history over
commits and machines, the PNG plot, and the `convbench history` / `run --store` commands. The
same checks run against a real PostgreSQL in test_history_postgres.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from convbench.analysis import history
from convbench.cli import EXIT_OK, EXIT_USAGE, main
from convbench.report.figures.history import history_figure, save_history_png
from convbench.run.runner import RunOptions, run
from convbench.run.suite import load_suite

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real (tiny) run of the smoke suite: two algorithms, four cases."""
    out = tmp_path_factory.mktemp("history") / "smoke"
    run(load_suite("smoke"), out, RunOptions(algorithms=("im2col", "torch"), threads=1,
                                              budget_s=0.002))
    return out


def variant(source: Path, target: Path, commit: str, date: str, scale: float = 1.0,
            cores: int | None = None) -> Path:
    """A copy of a run as if made at another commit and date (times scaled), or elsewhere."""
    shutil.copytree(source, target)
    meta = json.loads((target / "meta.json").read_text())
    meta["git"], meta["date"] = {"commit": commit, "dirty": False}, date
    if cores:
        meta["cpu"]["logical_cores"] = cores
    (target / "meta.json").write_text(json.dumps(meta))
    frame = pd.read_csv(target / "results.csv")
    for column in ("time_median_s", "time_iqr_s", "time_min_s"):
        frame[column] = frame[column] * scale
    frame.to_csv(target / "results.csv", index=False)
    return target


def three_runs(real_run: Path, tmp_path: Path) -> list[Path]:
    return [variant(real_run, tmp_path / "r1", "a" * 40, "2026-01-01T00:00:00+00:00"),
            variant(real_run, tmp_path / "r2", "b" * 40, "2026-01-02T00:00:00+00:00", 1.5),
            variant(real_run, tmp_path / "r3", "c" * 40, "2026-01-03T00:00:00+00:00", 2.0,
                    cores=64)]


def check_database(db: str, runs: list[Path]) -> None:
    """Store three runs (one twice), then list them and read a case's history back."""
    added = [history.add_run(db, r) for r in runs]
    assert [a[0][1] for a in added] == [True, True, True]
    again = history.add_run(db, runs[0])
    assert again == [(added[0][0][0], False)]  # the same run is stored once
    listed = history.list_runs(db)
    assert list(listed["commit"]) == ["a" * 40, "b" * 40, "c" * 40]
    assert list(listed["rows"]) == [8, 8, 8] and list(listed["ok"]) == [8, 8, 8]
    assert listed["machine"].iloc[0] == listed["machine"].iloc[1] != listed["machine"].iloc[2]
    assert history.list_runs(db, suite="other").empty
    case = history.case_history(db, "tiny_3x3", algorithms=["im2col"])
    assert list(case["commit"].str[0]) == ["a", "b", "c"]
    times = case["time_median_s"].to_numpy()
    assert times[1] == pytest.approx(1.5 * times[0]) and times[2] == pytest.approx(2 * times[0])
    assert set(case["direction"]) == {"fwd"} and set(case["algo"]) == {"im2col"}
    both = history.case_history(db, "tiny_3x3")
    assert set(both["algo"]) == {"im2col", "torch"} and len(both) == 6


def test_sqlite_history(real_run: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'db' / 'history.db'}"
    check_database(db, three_runs(real_run, tmp_path))


def test_samples_are_stored_with_the_rows(real_run: Path, tmp_path: Path) -> None:
    import sqlalchemy as sa

    db = str(tmp_path / "plain-path.db")  # a path is an SQLite file
    history.add_run(db, real_run)
    with history.connected(db) as engine, engine.connect() as connection:
        stored = connection.execute(sa.select(history.rows.c.samples_s, history.rows.c.repeats)
                                    ).all()
    assert len(stored) == 8
    assert all(len(json.loads(s)) == n for s, n in stored)


def test_plot_is_a_png_and_the_figure_is_reusable(real_run: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'history.db'}"
    for r in three_runs(real_run, tmp_path):
        history.add_run(db, r)
    path = save_history_png(db, "tiny_3x3", tmp_path / "plots" / "h.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    figure = history_figure(db, "tiny_3x3", algorithms=["im2col"])
    axes = figure.axes[0]
    labels = [t.get_text() for t in axes.get_xticklabels()]
    assert labels == ["aaaaaaa\n2026-01-01", "bbbbbbb\n2026-01-02", "ccccccc\n2026-01-03"]
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert len(legend) == 2 and all(t.startswith("im2col [numpy] @ ") for t in legend)
    with pytest.raises(ValueError, match="no stored results for case 'nope'"):
        save_history_png(db, "nope", tmp_path / "nope.png")


def test_history_commands(real_run: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runs = three_runs(real_run, tmp_path)
    assert main(["history", "add", *map(str, runs[:2]), "--db", db]) == EXIT_OK
    assert main(["history", "add", str(runs[0]), "--db", db]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "stored as run 1" in out and "already stored as run 1" in out
    assert main(["history", "list", "--db", db]) == EXIT_OK
    listed = capsys.readouterr().out
    assert "aaaaaaaaaa" in listed and "bbbbbbbbbb" in listed
    png = tmp_path / "tiny.png"
    assert main(["history", "plot", "tiny_3x3", "--db", db, "--out", str(png)]) == EXIT_OK
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert main(["history", "add", str(tmp_path / "nowhere"), "--db", db]) == EXIT_USAGE
    assert main(["history", "list", "--db", "nosuchdriver://x"]) == EXIT_USAGE


def test_database_from_the_environment(real_run: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(history.DB_VARIABLE, f"sqlite:///{tmp_path / 'env.db'}")
    assert history.default_url().endswith("env.db")
    history.add_run(None, real_run)
    assert len(history.list_runs()) == 1


def test_run_store_and_noise_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'run.db'}"
    code = main(["run", "smoke", "--algo", "im2col", "--threads", "1", "--budget", "0.002",
                 "--interleave", "--no-progress", "--out", str(tmp_path / "out"), "--store", db])
    assert code == EXIT_OK
    assert "stored as run 1" in " ".join(capsys.readouterr().out.split())
    listed = history.list_runs(db)
    assert list(listed["suite"]) == ["smoke"] and listed["rows"].iloc[0] == 4
