"""The pytest plugin: suite cases become pytest-benchmark benchmarks with the oracle check in the
same test, and pytest-benchmark's own options (--benchmark-only, --benchmark-autosave,
--benchmark-compare-fail) work on them. Inner sessions run in-process through pytester."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.fft  # noqa: F401
import torch  # noqa: F401
from conftest import AddAlgorithm

from convbench.algorithms import registry

pytest_plugins = ["pytester"]
# The inner sessions run in this process, and pytester drops the modules each one imported when
# it ends: torch and scipy.fft are imported here, once, so that no session imports them again.

EXAMPLE = Path(__file__).parent.parent / "examples" / "test_bench_example.py"
FAST = ["-p", "no:cacheprovider", "--benchmark-max-time=0.002", "--benchmark-min-rounds=2",
        "--benchmark-warmup=off", "--convbench-threads=1"]


def test_importing_the_plugin_imports_nothing_and_sets_nothing() -> None:
    # every pytest session loads the plugin, in projects that never use convbench too: it must
    # not import convbench, numpy or torch, nor set the idle-thread variables
    code = ("import os, sys, pytest_convbench; "
            "print(sorted(m for m in ('convbench', 'numpy', 'torch', 'matplotlib', 'sqlalchemy') "
            "if m in sys.modules), os.environ.get('OPENBLAS_THREAD_TIMEOUT'), "
            "os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, env=env)
    assert done.stdout.strip() == "[] None None"


def test_the_plugin_is_registered_through_its_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.convbench(suite, algorithms=None*"])
    assert result.ret == 0


def test_example_runs_every_case_as_a_checked_benchmark(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_example=EXAMPLE.read_text())
    result = pytester.runpytest("--benchmark-only", "-rs", *FAST)
    result.assert_outcomes(passed=12)  # 4 smoke cases x direct, im2col, torch
    result.stdout.fnmatch_lines(["*test_smoke*tiny_3x3-im2col-numpy*", "*Mean*"])


def test_unsupported_skips_with_the_reason_and_wrong_fails(
        pytester: pytest.Pytester, temporary_algorithm: AddAlgorithm) -> None:
    im2col = registry.get("conv2d", "im2col").fn
    temporary_algorithm("off_by_one", lambda p, x, w, b: im2col(p, x, w, b) + 1.0)
    temporary_algorithm("no_groups", im2col,
                        checks=(lambda p: "groups > 1 only" if p.groups == 1 else None,))
    pytester.makepyfile(test_mine="""
        import pytest

        @pytest.mark.convbench("smoke", algorithms=["off_by_one", "no_groups"])
        def test_conv(convbench_case, convbench_benchmark):
            convbench_benchmark(convbench_case)
    """)
    result = pytester.runpytest("-rs", *FAST)
    # no_groups runs the two grouped cases and skips the two others; off_by_one is wrong in all
    result.assert_outcomes(passed=2, skipped=2, failed=4)
    result.stdout.fnmatch_lines(["*off_by_one-numpy: wrong result: normalised error*",
                                 "*SKIPPED*unsupported: groups > 1 only*"])
    result.stdout.no_fnmatch_line("*fixture was not used*")


def test_autosave_then_compare_fail_catches_a_slowdown(
        pytester: pytest.Pytester, temporary_algorithm: AddAlgorithm) -> None:
    delay_s = [0.0]
    im2col = registry.get("conv2d", "im2col").fn

    def sluggish(p, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        if delay_s[0]:
            time.sleep(delay_s[0])
        return im2col(p, x, w, b)

    temporary_algorithm("sluggish", sluggish)
    pytester.makepyfile(test_mine="""
        import pytest

        @pytest.mark.convbench("smoke", algorithms=["sluggish"])
        def test_conv(convbench_case, convbench_benchmark):
            convbench_benchmark(convbench_case)
    """)
    storage = f"--benchmark-storage=file://{pytester.path / 'store'}"
    first = pytester.runpytest("--benchmark-autosave", storage, *FAST)
    first.assert_outcomes(passed=4)
    assert len(list((pytester.path / "store").rglob("0001_*.json"))) == 1
    same = pytester.runpytest("--benchmark-compare", storage, *FAST)
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*sluggish-numpy] (0001_unversi)*"])  # the saved run, beside
    delay_s[0] = 20e-3  # a hundred times these cases' own time
    slow = pytester.runpytest("--benchmark-only", "--benchmark-compare",
                              "--benchmark-compare-fail=median:10%", storage, *FAST)
    assert slow.ret != 0
    output = "\n".join(slow.outlines + slow.errlines)
    assert "Performance has regressed" in output
    assert "sluggish-numpy] (0001_unversi) - Field 'median' has failed" in output
