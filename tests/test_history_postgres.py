"""The results database on a real PostgreSQL server, started by this module on loopback (in a
temporary directory, on a free port) and stopped afterwards. It needs Debian's postgresql
package (`.ci/run` installs it) and psycopg; without them it skips, saying which is missing.
Each test that needs a new database creates one of its own on that server."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_history import (  # noqa: F401  (real_run: a fixture)
    check_concurrent_writers,
    check_database,
    check_upgrade,
    real_run,
    three_runs,
)


def _binaries() -> Path | None:
    """The directory of initdb and pg_ctl: Debian's /usr/lib/postgresql/N/bin, else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user() -> tuple[list[str], str | None]:
    """initdb refuses to run as root: then run the server as the `postgres` user."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"], "postgres"


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        pytest.skip(f"PostgreSQL could not {what}: {done.stderr.strip()[-500:]}")


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install "
                        "'convbench[postgresql]')")
    binaries = _binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    prefix, user = _as_user()
    root = Path(tempfile.mkdtemp(prefix="convbench-pg-"))
    if user:
        shutil.chown(root, user)
    data, port = root / "data", _free_port()
    _run([*prefix, str(binaries / "initdb"), "-D", str(data), "-U", "convbench",
          "--auth=trust", "--no-sync"], "initialise a cluster")
    options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l",
          str(root / "log"), "-w", "-t", "60", "start"], "start")
    try:
        yield f"postgresql+psycopg://convbench@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_postgresql_history(postgres_url: str, real_run: Path, tmp_path: Path) -> None:  # noqa: F811
    check_database(postgres_url, three_runs(real_run, tmp_path))


def new_database(server_url: str) -> str:
    """A database of its own on the test server, empty: its URL."""
    name = f"convbench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(
        hide_password=False)


@pytest.mark.slow
def test_postgresql_concurrent_writers(postgres_url: str, real_run: Path,  # noqa: F811
                                       tmp_path: Path) -> None:
    check_concurrent_writers(new_database(postgres_url), three_runs(real_run, tmp_path),
                             tmp_path / "barrier")


def test_postgresql_version_less_database_is_upgraded(postgres_url: str,
                                                      real_run: Path) -> None:  # noqa: F811
    check_upgrade(new_database(postgres_url), real_run)
