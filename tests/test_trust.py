"""Faults a user or a CI pipeline meets, each ending cleanly: the version, `python -m
convbench`, optional extras that are missing, and what a run records about the code under test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import convbench
from convbench.measure import environment
from convbench.report import exports

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
