"""benchmarks/gate.sh, the CI gate's flow (run the baseline and the working tree, compare, confirm
a failure with a second pair of runs in the other order), in a throwaway git clone of its own.

The clone holds the real gate.sh and, in .venv/bin, stand-ins for python and convbench that log
each call and answer with the exit codes a test asks for (FAKE_* variables). So the flow is
tested in any checkout, a fresh clone without .venv included, in well under a second a run;
what convbench run and compare do is tested elsewhere."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if shutil.which("git") is None or shutil.which("bash") is None:
    pytest.skip("the gate needs git and bash", allow_module_level=True)

PYTHON_STAND_IN = r"""#!/usr/bin/env bash
# python as gate.sh calls it: pip installing the baseline, locating its convbench, running it.
log=$GATE_TEST_LOG
if [ "$1" = -m ] && [ "$2" = pip ]; then
    prev=""; for a in "$@"; do [ "$prev" = --target ] && target=$a; prev=$a; done
    echo "install" >> "$log"
    mkdir -p "$target/convbench/algorithms" && touch "$target/convbench/algorithms/__init__.py"
    exit "${FAKE_INSTALL_RC:-0}"
fi
if [ "$1" = -P ] && [ "$2" = -c ]; then
    case "$3" in
        *importlib*) echo "${FAKE_LOCATED:-$PYTHONPATH/convbench/algorithms/__init__.py}"
                     exit 0 ;;
        *) shift 3; exec "$(dirname "$0")/convbench" --as-base "$@" ;;
    esac
fi
echo "unexpected python call: $*" >&2
exit 99
"""

CONVBENCH_STAND_IN = r"""#!/usr/bin/env bash
# convbench run / compare: log the call, exit with the code the test asked for. Options other
# than the suite, --out and --confirms (the gate's recipe) are not logged: tests elsewhere own
# them.
log=$GATE_TEST_LOG
which=new; [ "$1" = --as-base ] && { which=base; shift; }
command=$1; shift
for a in "$@"; do
    [ "$a" = --help ] && { echo "usage: convbench $command [options]"; exit 0; }
done
case "$command" in
    run)
        prev=""; for a in "$@"; do [ "$prev" = --out ] && out=$a; prev=$a; done
        env="cache=${CONVBENCH_CACHE:+set} coretype=${OPENBLAS_CORETYPE:-unset}"
        echo "run $which $1 $(basename "$out") cwd=$(basename "$PWD") $env" >> "$log"
        echo "the $which run's results" > "$out/results.csv"
        echo "what the $which run printed"
        [ "$which" = base ] && exit "${FAKE_BASE_RUN_RC:-0}"
        codes=(${FAKE_NEW_RUN_RCS:-0}); n=$(grep -c "^run new" "$log")
        exit "${codes[$((n - 1))]:-0}" ;;
    compare)
        line="compare $(basename "$1") $(basename "$2")"; shift 2
        prev=""
        for a in "$@"; do
            case "$prev" in --out|--confirms) line="$line $prev $(basename "$a")" ;; esac
            prev=$a
        done
        echo "$line" >> "$log"
        codes=(${FAKE_COMPARE_RCS:-0}); n=$(grep -c "^compare" "$log")
        exit "${codes[$((n - 1))]:-0}" ;;
esac
echo "unexpected convbench call: $command $*" >&2
exit 99
"""



def _git(clone: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=gate test", "-c", "user.email=gate@test",
                           "-c", "commit.gpgsign=false", *args], cwd=clone, capture_output=True,
                          text=True, check=True, env=_clean_env())
    return done.stdout.strip()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A git repository with gate.sh, the stand-ins, and its first commit as the baseline."""
    clone = tmp_path / "clone"
    (clone / "benchmarks" / "baseline").mkdir(parents=True)
    shutil.copy2(ROOT / "benchmarks" / "gate.sh", clone / "benchmarks" / "gate.sh")
    _executable(clone / ".venv" / "bin" / "python", PYTHON_STAND_IN)
    _executable(clone / ".venv" / "bin" / "convbench", CONVBENCH_STAND_IN)
    (clone / ".gitignore").write_text(".venv/\nreports/\n")
    (clone / "code.py").write_text("speed = 1\n")
    _git(clone, "init", "-q")
    _git(clone, "add", "-A")
    _git(clone, "commit", "-q", "-m", "the accepted code")
    head = _git(clone, "rev-parse", "HEAD")
    (clone / "benchmarks" / "baseline" / "commit").write_text(f"# the baseline\n{head}\n")
    _git(clone, "add", "-A")
    _git(clone, "commit", "-q", "-m", "name the baseline")
    (clone / "code.py").write_text("speed = 2\n")  # the working tree under test
    return clone


def _gate(clone: Path, *args: str, **fake: str) -> tuple[subprocess.CompletedProcess[str],
                                                        list[str]]:
    log = clone.parent / "calls.log"
    log.write_text("")
    env = _clean_env() | {"GATE_TEST_LOG": str(log), "OPENBLAS_CORETYPE": "Haswell"} | fake
    done = subprocess.run(["bash", str(clone / "benchmarks" / "gate.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    return done, log.read_text().splitlines()


def _run(which: str, out: str) -> str:
    cwd = "base" if which == "base" else "clone"
    return f"run {which} smoke {out} cwd={cwd} cache=set coretype=unset"


def test_a_passing_comparison_passes_without_a_second_pair(clone: Path) -> None:
    done, calls = _gate(clone)
    assert done.returncode == 0, done.stderr
    assert calls == ["install", _run("base", "base-1"), _run("new", "new-1"),
                     "compare base-1 new-1 --out new-1"]
    assert "the baseline" not in done.stderr
    kept = sorted(p.name for p in (clone / "reports" / "gate").iterdir())
    assert kept == ["base-1", "new-1"]
    assert (clone / "reports" / "gate" / "new-1" / "results.csv").read_text() == \
        "the new run's results\n"


def test_a_failed_comparison_is_confirmed_in_the_other_order(clone: Path) -> None:
    done, calls = _gate(clone, FAKE_COMPARE_RCS="1 0")
    assert done.returncode == 0, done.stderr
    assert calls == ["install", _run("base", "base-1"), _run("new", "new-1"),
                     "compare base-1 new-1 --out new-1",
                     _run("new", "new-2"), _run("base", "base-2"),
                     "compare base-2 new-2 --out new-2 --confirms new-1"]
    assert "confirming with a second pair of runs" in done.stderr
    kept = sorted(p.name for p in (clone / "reports" / "gate").iterdir())
    assert kept == ["base-1", "base-2", "new-1", "new-2"]


def test_a_confirmed_regression_fails_the_gate(clone: Path) -> None:
    done, calls = _gate(clone, FAKE_COMPARE_RCS="1 1")
    assert done.returncode == 1
    assert calls[-1] == "compare base-2 new-2 --out new-2 --confirms new-1"


def test_a_wrong_result_in_the_new_run_fails_at_once(clone: Path) -> None:
    done, calls = _gate(clone, FAKE_NEW_RUN_RCS="1")
    assert done.returncode == 1
    assert calls == ["install", _run("base", "base-1"), _run("new", "new-1")]
    assert "gate: the new run failed (exit 1)" in done.stderr
    assert "what the new run printed" in done.stdout  # its log is shown


def test_a_wrong_result_in_the_confirming_run_fails_at_once(clone: Path) -> None:
    done, calls = _gate(clone, FAKE_COMPARE_RCS="1", FAKE_NEW_RUN_RCS="0 1")
    assert done.returncode == 1
    assert calls[-1] == _run("new", "new-2")


@pytest.mark.parametrize("fake, says", [
    ({"FAKE_BASE_RUN_RC": "1"}, "gate: the base run failed (exit 1)"),
    ({"FAKE_NEW_RUN_RCS": "3"}, "gate: the new run failed (exit 3)"),
    ({"FAKE_INSTALL_RC": "1"}, "could not be installed"),
    ({"FAKE_LOCATED": "/elsewhere/convbench/algorithms/__init__.py"},
     "would import convbench from /elsewhere"),
])
def test_what_cannot_be_measured_exits_2(clone: Path, fake: dict[str, str], says: str) -> None:
    done, calls = _gate(clone, **fake)
    assert done.returncode == 2
    assert says in done.stderr
    assert not any(c.startswith("compare") for c in calls)


def test_a_comparison_that_cannot_be_made_exits_2_unconfirmed(clone: Path) -> None:
    done, calls = _gate(clone, FAKE_COMPARE_RCS="2")
    assert done.returncode == 2
    assert sum(c.startswith("compare") for c in calls) == 1


def test_the_baseline_worktree_is_removed_afterwards(clone: Path) -> None:
    for fake in ({}, {"FAKE_NEW_RUN_RCS": "1"}, {"FAKE_BASE_RUN_RC": "1"}):
        _gate(clone, **fake)
        assert len(_git(clone, "worktree", "list").splitlines()) == 1


def test_base_names_another_commit(clone: Path) -> None:
    head = _git(clone, "rev-parse", "HEAD")
    done, calls = _gate(clone, "--base", "HEAD")
    assert done.returncode == 0, done.stderr
    assert f"gate: baseline {head}" in done.stdout


@pytest.mark.parametrize("args, says", [
    (["--base", "no-such-commit"], "gate: the baseline commit 'no-such-commit' is not in this"),
    (["--speed"], "usage: benchmarks/gate.sh"),
    (["--base"], "usage: benchmarks/gate.sh"),
    (["--refresh", "now"], "usage: benchmarks/gate.sh"),
])
def test_what_it_cannot_run_is_refused_before_any_work(clone: Path, args: list[str],
                                                       says: str) -> None:
    done, calls = _gate(clone, *args)
    assert done.returncode == 2
    assert says in done.stderr
    assert calls == []


def test_a_missing_baseline_is_refused(clone: Path) -> None:
    (clone / "benchmarks" / "baseline" / "commit").write_text("# nothing\n")
    done, calls = _gate(clone)
    assert done.returncode == 2 and "no baseline commit" in done.stderr and calls == []


def test_no_environment_is_refused(clone: Path) -> None:
    shutil.rmtree(clone / ".venv")
    done, _ = _gate(clone)
    assert done.returncode == 2 and "make setup makes the environment" in done.stderr


def test_refresh_accepts_head_of_a_clean_tree_only(clone: Path) -> None:
    done, _ = _gate(clone, "--refresh")
    assert done.returncode == 2 and "the working tree differs from HEAD" in done.stderr
    _git(clone, "commit", "-q", "-am", "faster")
    head = _git(clone, "rev-parse", "HEAD")
    done, calls = _gate(clone, "--refresh")
    assert done.returncode == 0, done.stderr
    assert calls == []
    lines = (clone / "benchmarks" / "baseline" / "commit").read_text().splitlines()
    assert lines[-1] == head and lines[0].startswith("#")
