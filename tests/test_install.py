"""The distribution installs as `convbench` (and its pytest plugin module), algorithms and
suites inside it, in a regular (wheel) install as in the editable one."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    (found,) = out.glob("convbench-*.whl")
    return found


@pytest.mark.slow
def test_wheel_claims_only_convbench_and_its_pytest_plugin(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"convbench", "pytest_convbench.py"}
    for expected in ("convbench/algorithms/conv/im2col.py", "convbench/algorithms/pool/windowed.py", "convbench/suites/quick.toml",
                     "convbench/suites/resnet50.toml", "convbench/py.typed"):
        assert expected in names


@pytest.mark.slow
def test_regular_install_imports_and_runs(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    code = (
        f"import sys; sys.path.insert(0, {str(target)!r}); import numpy as np, convbench; "
        "from convbench.algorithms.conv import im2col; from convbench.run.suite import load_suite; "
        f"assert im2col.__file__.startswith({str(target)!r}), im2col.__file__; "
        "assert len(load_suite('resnet50').cases) == 23; "
        "x = np.ones((1, 2, 5, 5), np.float32); w = np.ones((3, 2, 3, 3), np.float32); "
        "print(convbench.conv2d(x, w, algo='im2col').sum(), convbench.algorithms('conv2d'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    # every one of the 3*3*3 outputs sums 2*3*3 ones
    assert result.stdout.startswith("486.0") and "im2col" in result.stdout


def test_editable_install_runs_the_source_tree() -> None:
    import convbench
    from convbench.algorithms.conv import im2col

    assert Path(im2col.__file__).resolve() == ROOT / "convbench" / "algorithms" / "conv" / "im2col.py"
    assert callable(convbench.algorithms) and "im2col" in convbench.algorithms("conv2d")
