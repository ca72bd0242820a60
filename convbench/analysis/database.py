"""Where the results database is, and how convbench talks to it when several processes write at
once (`convbench history add`, `convbench run --store`, CI jobs sharing one server):

- the URL: --db, else $CONVBENCH_DB, else sqlite:///reports/history.db; a plain path is an
  SQLite file;
- SQLite: every transaction that may write begins with BEGIN IMMEDIATE, which takes the file's
  write lock at once and waits for it up to BUSY_TIMEOUT_S (a deferred BEGIN that upgrades its
  lock later can fail at once with "database is locked", which no waiting cures); reads
  (schema.reading) begin deferred and go on beside a writer;
- any database: an operation that still finds the database locked, or that PostgreSQL picks as
  a deadlock victim or a serialization failure, is tried again after an exponential backoff with
  jitter, ATTEMPTS times in all; then DatabaseBusy (a ValueError: one line, exit 2);
- every engine has its tables at the current schema version (convbench.analysis.schema).
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from convbench.analysis.schema import READ_ONLY, ensure_schema

DEFAULT_DB = "sqlite:///reports/history.db"
DB_VARIABLE = "CONVBENCH_DB"
BUSY_TIMEOUT_S = 30.0
ATTEMPTS = 8
FIRST_DELAY_S = 0.05  # doubled after each try, times a random 1..2
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock
T = TypeVar("T")


class DatabaseBusy(ValueError):
    """The database stayed locked (or kept failing transiently) through every retry."""


def default_url() -> str:
    return os.environ.get(DB_VARIABLE) or DEFAULT_DB


def _url(db: str | None) -> str:
    url = db or default_url()
    return url if "://" in url else f"sqlite:///{Path(url)}"


def engine_url(db: str | Engine | None) -> str:
    """The database's URL as it may be printed: the password hidden."""
    if isinstance(db, Engine):
        return db.url.render_as_string(hide_password=True)
    try:
        return sa.engine.make_url(_url(db)).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return _url(db)


def is_transient(error: sa.exc.DBAPIError) -> bool:
    """A lock or a lost race that the same operation, tried again later, gets past."""
    if getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES:
        return True
    text = str(error.orig).lower()
    return "database is locked" in text or "database table is locked" in text


def retrying(operation: Callable[[], T], what: str) -> T:
    """`operation()`, tried again with backoff while it fails transiently (is_transient)."""
    delay_s = FIRST_DELAY_S
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return operation()
        except sa.exc.DBAPIError as error:
            if not is_transient(error):
                raise
            if attempt == ATTEMPTS:
                raise DatabaseBusy(f"could not {what}: the database stayed busy through "
                                   f"{ATTEMPTS} tries ({error.orig}); try again later") from None
        time.sleep(delay_s * (1 + random.random()))
        delay_s *= 2
    raise AssertionError("unreachable")


def _begin_immediate(engine: Engine) -> None:
    """SQLite transactions that take the write lock when they begin, except those of
    schema.reading's connections (SQLAlchemy's recipe for pysqlite: the driver's own BEGIN
    turned off, ours emitted instead)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _parse(url: str) -> URL:
    try:
        return sa.engine.make_url(url)
    except sa.exc.ArgumentError as error:
        raise ValueError(f"not a database URL: {url!r} ({error})") from None


def _new_engine(parsed: URL) -> Engine:
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_S} if sqlite
                                  else {})
    except (ImportError, sa.exc.ArgumentError) as error:  # the driver: psycopg for PostgreSQL
        raise ValueError(f"no driver for {parsed.drivername} ({error}); for PostgreSQL: "
                         "pip install 'convbench[postgresql]'") from None
    if sqlite:
        _begin_immediate(engine)
    return engine


def engine_for(db: str | Engine | None = None) -> Engine:
    """An engine whose tables are at the current schema version; a plain path is SQLite."""
    engine = db if isinstance(db, Engine) else _new_engine(_parse(_url(db)))
    try:
        retrying(lambda: ensure_schema(engine), "create or upgrade the tables")
    except (sa.exc.SQLAlchemyError, ValueError) as error:
        if engine is not db:
            engine.dispose()
        if isinstance(error, ValueError):  # busy through every try, or a newer schema
            raise
        raise ValueError(f"cannot use the database {engine_url(engine)}: {error}") from None
    return engine


@contextlib.contextmanager
def connected(db: str | Engine | None) -> Iterator[Engine]:
    """`engine_for(db)`, disposed of afterwards unless the caller passed an Engine."""
    engine = engine_for(db)
    try:
        yield engine
    finally:
        if engine is not db:
            engine.dispose()
