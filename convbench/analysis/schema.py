"""The results database's tables, their version, and the upgrades between versions.

`convbench_schema` holds one row: the version of the tables beside it. `ensure_schema(engine)`
brings any database to SCHEMA_VERSION, under a lock, so that several writers starting at once
on a new or old database neither fail nor upgrade it twice:

- an empty database gets the current tables (create_all) and is stamped SCHEMA_VERSION;
- a database made before the version was kept (convbench_runs but no convbench_schema) is
  version 1, and is upgraded in place;
- a stamped database runs the UPGRADES above its version, in order, in one transaction;
- a database newer than this convbench is refused (ValueError): upgrade convbench instead.

The lock is PostgreSQL's transaction-scoped advisory lock, or on SQLite the write lock that the
engines of convbench.analysis.database take at BEGIN IMMEDIATE. On another database (or an
Engine made elsewhere) a concurrent creator's "already exists" is caught and the version read
again.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

SCHEMA_VERSION = 3
READ_ONLY = "convbench_read_only"  # execution option: an SQLite transaction without write lock
ADVISORY_LOCK_KEY = 0x636F6E76  # "conv": one PostgreSQL advisory lock for every upgrade

metadata = sa.MetaData()
schema = sa.Table(
    "convbench_schema", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1: one row
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("upgraded_at", sa.String(40)),  # ISO 8601, UTC
)
runs = sa.Table(
    "convbench_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("suite", sa.String(200), nullable=False),
    sa.Column("date", sa.String(40), nullable=False),  # ISO 8601, UTC: sorts as text
    sa.Column("commit", sa.String(64)),
    sa.Column("dirty", sa.Boolean),
    sa.Column("machine", sa.String(40), nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("threads", sa.Integer),
    sa.Column("source", sa.Text),
    sa.Column("meta", sa.Text),
    sa.Column("stored_at", sa.String(40)),  # version 2: when it was added (None before)
    sa.UniqueConstraint("suite", "date", "host", name="uq_convbench_run"),
)
rows = sa.Table(
    "convbench_rows", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("convbench_runs.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("case", sa.String(200), nullable=False, index=True),
    sa.Column("algo", sa.String(200), nullable=False),
    sa.Column("backend", sa.String(50), nullable=False),
    sa.Column("direction", sa.String(50), nullable=False),
    sa.Column("descriptor", sa.String(200)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("time_median_s", sa.Float),
    sa.Column("time_iqr_s", sa.Float),
    sa.Column("time_min_s", sa.Float),
    sa.Column("repeats", sa.Integer),
    sa.Column("samples_s", sa.Text),  # JSON list, seconds per call
    # version 3: the host that measured the row (rows stored before it: their run's), so that
    # a cluster run of one suite on several machines keeps each machine's row; and one row per
    # key, so that rows stored as they are produced, and stored again when the run ends or
    # resumes, are there once.
    sa.Column("host", sa.String(200), nullable=False, server_default=""),
)
ROW_KEY = ("run_id", "case", "algo", "backend", "direction", "host")
row_key = sa.Index("uq_convbench_row", *(rows.c[name] for name in ROW_KEY), unique=True)


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection that only reads: on convbench's SQLite engines its transactions begin
    deferred, so that reading goes on while another process holds the write lock."""
    with engine.connect() as connection:
        yield connection.execution_options(**{READ_ONLY: True})


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _add_stored_at(connection: Connection) -> None:
    """1 -> 2: convbench_runs.stored_at, when each run was added (None for older runs)."""
    column = sa.Column("stored_at", sa.String(40))
    kind = column.type.compile(dialect=connection.dialect)
    connection.execute(sa.text(f"ALTER TABLE convbench_runs ADD COLUMN stored_at {kind}"))


def _key_rows(connection: Connection) -> None:
    """2 -> 3: convbench_rows.host, and the unique row key. A row stored twice before (which
    only a failed store could leave) keeps its first copy. Each part is skipped where it is
    already there."""
    columns = {c["name"] for c in sa.inspect(connection).get_columns(rows.name)}
    if "host" not in columns:
        column = sa.Column("host", sa.String(200))
        kind = column.type.compile(dialect=connection.dialect)
        connection.execute(sa.text(
            f"ALTER TABLE {rows.name} ADD COLUMN host {kind} NOT NULL DEFAULT ''"))
        # Until now every stored run was one machine's: its rows were measured on its host.
        host = sa.select(runs.c.host).where(runs.c.id == rows.c.run_id).scalar_subquery()
        connection.execute(rows.update().values(host=sa.func.coalesce(host, "")))
    indexes = {i["name"] for i in sa.inspect(connection).get_indexes(rows.name)}
    if row_key.name not in indexes:
        keyed = [rows.c[name] for name in ROW_KEY]
        first = sa.select(sa.func.min(rows.c.id)).group_by(*keyed).scalar_subquery()
        connection.execute(rows.delete().where(rows.c.id.not_in(first)))
        row_key.create(connection)


# UPGRADES[v] takes a database from version v to v + 1. A new version appends one function here
# (plain SQL that every supported database runs), changes the tables above to match, and raises
# SCHEMA_VERSION; a fresh database gets the tables above directly.
UPGRADES: dict[int, Callable[[Connection], None]] = {1: _add_stored_at, 2: _key_rows}


def stored_version(connection: Connection) -> int:
    """The database's version: 0 empty, 1 tables made before the version was kept."""
    inspector = sa.inspect(connection)
    if inspector.has_table(schema.name):
        found = connection.execute(sa.select(schema.c.version)).scalar()
        if found is not None:
            return int(found)
    return 1 if inspector.has_table(runs.name) else 0


def _stamp(connection: Connection, version: int) -> None:
    schema.create(connection, checkfirst=True)
    connection.execute(schema.delete())
    connection.execute(schema.insert().values(id=1, version=version, upgraded_at=now_iso()))


def _lock(connection: Connection) -> None:
    """Wait for any other upgrade to end (SQLite: BEGIN IMMEDIATE holds the write lock)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))


def _upgrade(connection: Connection) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it had."""
    _lock(connection)
    version = stored_version(connection)
    _refuse_newer(version)
    if version == 0:
        metadata.create_all(connection)
    for step in range(version, SCHEMA_VERSION) if version else ():
        UPGRADES[step](connection)
    if version != SCHEMA_VERSION:
        _stamp(connection, SCHEMA_VERSION)
    return version


def _refuse_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        raise ValueError(f"the results database has schema version {version}, newer than this "
                         f"convbench's {SCHEMA_VERSION}: upgrade convbench to use it")


def _current(engine: Engine) -> bool:
    with reading(engine) as connection:
        version = stored_version(connection)
    _refuse_newer(version)
    return version == SCHEMA_VERSION


def ensure_schema(engine: Engine) -> None:
    """The tables at SCHEMA_VERSION: created or upgraded if need be, safe against a concurrent
    creator (it waits for the lock, or re-reads the version after "already exists")."""
    if _current(engine):
        return
    try:
        with engine.begin() as connection:
            _upgrade(connection)
    except (sa.exc.ProgrammingError, sa.exc.IntegrityError, sa.exc.OperationalError):
        if not _current(engine):  # not a concurrent creator: a real error
            raise
