"""The results database in SQLite: storing runs (once), listing them, a case's history over
commits and machines, the PNG plot, and the `convbench history` / `run --store` commands;
several writer processes at once, a locked database, the schema's version and upgrades. The same
checks run against a real PostgreSQL in test_history_postgres.py."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from convbench.analysis import database, history, schema
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
        meta["cpu"]["logical_cores"] = meta["cpu"]["usable_cores"] = cores
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


def stored_rows(db: str) -> pd.DataFrame:
    """Every stored row's key, read without convbench's engine."""
    engine = sa.create_engine(database._url(db))
    with engine.connect() as connection:
        found = pd.DataFrame(connection.execute(sa.select(
            *(schema.rows.c[name] for name in schema.ROW_KEY), schema.rows.c.samples_s)
        ).mappings().all())
    engine.dispose()
    return found


def test_run_store_writes_each_row_as_it_is_measured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`run --store` stores each row the moment it is written: a run interrupted after three
    rows leaves those three in the database (with their samples), and `--resume` stores the rest,
    each row once."""
    db = f"sqlite:///{tmp_path / 'stream.db'}"
    args = ["run", "smoke", "--algo", "im2col,direct", "--threads", "1", "--budget", "0.002",
            "--no-progress", "--out", str(tmp_path / "out"), "--store", db]
    add, calls = history.RowStream.add, []

    def interrupting(self: history.RowStream, row: dict) -> None:
        add(self, row)
        calls.append(row["case"])
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(history.RowStream, "add", interrupting)
    assert main(args) == 130
    capsys.readouterr()
    first = stored_rows(db)
    assert len(first) == 3 and first["samples_s"].notna().all()
    assert list(history.list_runs(db)["rows"]) == [3]
    monkeypatch.setattr(history.RowStream, "add", add)
    assert main([*args, "--resume"]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "5 rows stored as they were measured" in out and "stored as run 1" in out
    rows = stored_rows(db)
    assert len(rows) == 8 and not rows.duplicated(list(schema.ROW_KEY)).any()
    assert list(history.list_runs(db)["rows"]) == [8]


def test_a_database_failing_mid_run_never_stops_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The database failing after the first row: the run goes on, says so, and stores every row
    once when it ends."""
    db = f"sqlite:///{tmp_path / 'failing.db'}"
    insert, calls = history._insert_row, []

    def failing(engine: sa.engine.Engine, record: dict) -> int:
        calls.append(record["case"])
        if len(calls) == 2:
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))
        return insert(engine, record)

    monkeypatch.setattr(history, "_insert_row", failing)
    assert main(["run", "smoke", "--algo", "im2col", "--threads", "1", "--budget", "0.002",
                 "--no-progress", "--out", str(tmp_path / "out"), "--store", db]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "the results database failed while the run went on" in out
    assert "disk I/O error" in out and "1 rows were stored as they came" in out
    assert len(calls) == 2  # no row sent after the failure
    assert len(stored_rows(db)) == 4  # the other three stored when the run ended


def test_version_2_rows_are_keyed_on_upgrade(real_run: Path, tmp_path: Path) -> None:
    """2 -> 3 adds each row's host and the unique row key; a row stored twice keeps one copy."""
    db = f"sqlite:///{tmp_path / 'v2.db'}"
    history.add_run(db, real_run)
    engine = sa.create_engine(database._url(db))
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP INDEX {schema.row_key.name}"))
        connection.execute(sa.text("ALTER TABLE convbench_rows DROP COLUMN host"))
        connection.execute(sa.text(
            'INSERT INTO convbench_rows (run_id, "case", algo, backend, direction, status) '
            "SELECT run_id, \"case\", algo, backend, direction, status FROM convbench_rows "
            "WHERE id = 1"))
        connection.execute(schema.schema.update().values(version=2))
    engine.dispose()
    assert list(history.list_runs(db)["rows"]) == [8]  # opened: upgraded, the copy gone
    assert version_and_columns(db)[0] == schema.SCHEMA_VERSION
    assert history.add_run(db, real_run) == [(1, False)]
    assert len(stored_rows(db)) == 8


# A writer process: imports first, then says it is ready and waits for the start signal, so that
# every writer's transactions overlap (imports alone take seconds and would spread them out).
WRITER = """
import pathlib, sys, time
from convbench.cli import main
import convbench.analysis.history, convbench.commands.history
ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.002)
sys.exit(main(["history", "add", sys.argv[3], "--db", sys.argv[4]]))
"""


def race(db: str, directories: list[Path], barrier: Path) -> list[tuple[int, str, str]]:
    """`convbench history add DIR --db DB`, one process per directory, released together;
    (exit code, stdout on one line, stderr) of each."""
    barrier.mkdir()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(barrier / f"ready{i}"),
                                 str(barrier / "go"), str(d), db], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for i, d in enumerate(directories)]
    deadline = time.monotonic() + 180
    while (len(list(barrier.glob("ready*"))) < len(writers) and time.monotonic() < deadline
           and all(w.poll() is None for w in writers)):
        time.sleep(0.05)
    (barrier / "go").touch()
    done = [(w, *w.communicate(timeout=180)) for w in writers]
    return [(w.returncode, " ".join(out.split()), err) for w, out, err in done]


def check_concurrent_writers(db: str, runs: list[Path], barrier: Path) -> None:
    """Six writers on a new database at once: the first run three times, the others once or
    twice. Every writer exits 0 without a traceback, and every run is stored exactly once."""
    directories = [runs[0], runs[0], runs[0], runs[1], runs[1], runs[2]]
    results = race(db, directories, barrier)
    assert [(code, err) for code, _, err in results] == [(0, "")] * len(directories)
    first = [out for _, out, _ in results[:3]]
    assert sum("already stored as run" in out for out in first) == 2
    assert len({out.split(" as run ")[1].split()[0] for out in first}) == 1  # one id, all three
    listed = history.list_runs(db)
    assert sorted(listed["commit"]) == ["a" * 40, "b" * 40, "c" * 40]
    assert list(listed["rows"]) == [8, 8, 8]  # no run's rows stored twice


@pytest.mark.slow
def test_concurrent_writers_sqlite(real_run: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'new' / 'history.db'}"
    check_concurrent_writers(db, three_runs(real_run, tmp_path), tmp_path / "barrier")


def make_version_1(db: str) -> None:
    """The tables as convbench made them before the schema had a version: no convbench_schema,
    no convbench_runs.stored_at; one run stored in them."""
    engine = sa.create_engine(database._url(db))
    with engine.begin() as connection:
        schema.metadata.create_all(connection, tables=[schema.runs, schema.rows])
        connection.execute(sa.text("ALTER TABLE convbench_runs DROP COLUMN stored_at"))
        connection.execute(sa.text(f"DROP INDEX {schema.row_key.name}"))  # version 3's
        connection.execute(sa.text("ALTER TABLE convbench_rows DROP COLUMN host"))
        connection.execute(sa.text(
            "INSERT INTO convbench_runs (suite, date, machine, host) "
            "VALUES ('old', '2025-01-01T00:00:00+00:00', 'm', 'h')"))
    engine.dispose()


def version_and_columns(db: str) -> tuple[int, set[str]]:
    """The schema version and convbench_runs' columns, read without convbench's engine."""
    engine = sa.create_engine(database._url(db))
    with engine.connect() as connection:
        found = (schema.stored_version(connection),
                 {c["name"] for c in sa.inspect(connection).get_columns("convbench_runs")})
    engine.dispose()
    return found


def check_upgrade(db: str, run: Path) -> None:
    """A version-less database is upgraded in place: its run kept, stamped, a new run added."""
    make_version_1(db)
    assert version_and_columns(db) == (1, set(history.runs.c.keys()) - {"stored_at"})
    assert list(history.list_runs(db)["suite"]) == ["old"]  # any use upgrades it
    assert version_and_columns(db) == (schema.SCHEMA_VERSION, set(history.runs.c.keys()))
    assert history.add_run(db, run) == [(2, True)]
    with history.connected(db) as engine, engine.connect() as connection:
        stored_at = connection.execute(sa.select(history.runs.c.stored_at)
                                       .order_by(history.runs.c.id)).scalars().all()
    assert stored_at[0] is None and stored_at[1] >= "2026"


def test_a_version_less_sqlite_database_is_upgraded(real_run: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    found: list[int] = []
    upgrade = schema._upgrade
    monkeypatch.setattr(schema, "_upgrade", lambda c: found.append(upgrade(c)) or found[-1])
    check_upgrade(f"sqlite:///{tmp_path / 'old.db'}", real_run)
    assert found == [1]  # upgraded once, from version 1; afterwards the version is current


def test_a_newer_schema_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'new.db'}"
    history.list_runs(db)
    with history.connected(db) as engine, engine.begin() as connection:
        connection.execute(schema.schema.update().values(version=schema.SCHEMA_VERSION + 1))
    newer = f"schema version {schema.SCHEMA_VERSION + 1}, newer than this convbench's "
    with pytest.raises(ValueError, match=newer + str(schema.SCHEMA_VERSION)):
        history.list_runs(db)
    assert main(["history", "list", "--db", db]) == EXIT_USAGE
    assert "upgrade convbench" in capsys.readouterr().err


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as SQLite sees it: a transaction holding the write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_locked_sqlite_database_is_waited_for(real_run: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.db"
    history.list_runs(str(path))
    holder = hold_write_lock(path)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the backoff: the other writer commits meanwhile
        slept.append(seconds)
        holder.execute("COMMIT")

    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(database.time, "sleep", sleep)
    assert history.add_run(str(path), real_run) == [(1, True)]
    assert len(slept) == 1 and database.FIRST_DELAY_S <= slept[0] <= 2 * database.FIRST_DELAY_S


def test_a_database_locked_through_every_retry_is_one_line(
        real_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "locked.db"
    history.list_runs(str(path))
    holder = hold_write_lock(path)
    slept: list[float] = []
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.01)
    monkeypatch.setattr(database.time, "sleep", slept.append)
    assert history.list_runs(str(path)).empty and slept == []  # reading goes on beside it
    assert main(["history", "add", str(real_run), "--db", str(path)]) == EXIT_USAGE
    err = " ".join(capsys.readouterr().err.split())  # one sentence, however wrapped
    assert err.startswith("convbench: error: could not store ") and "Traceback" not in err
    assert f"stayed busy through {database.ATTEMPTS} tries" in err
    assert slept == sorted(slept) and len(slept) == database.ATTEMPTS - 1  # backing off
    holder.execute("ROLLBACK")
