"""Models on the command line: `convbench run --model SPEC` and `convbench run MODEL.onnx`, their
`describe`, and the arguments that exit 2 naming themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from convbench.cli import EXIT_OK, EXIT_USAGE, main
from convbench.run.rundir import read_results

from test_models import build_onnx


def convbench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": "200", "PATH": "", "CONVBENCH_CACHE": os.environ["CONVBENCH_CACHE"]}
    return subprocess.run([sys.executable, "-m", "convbench.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_run_a_torchvision_model(torchvision: Any, tmp_path: Path) -> None:
    result = convbench("run", "--model", "torchvision:mobilenet_v3_small", "--input",
                       "1x3x64x64", "--algo", "im2col,torch", "--budget", "0.01",
                       "--processes", "1", "--out", str(tmp_path), "--no-progress")
    assert result.returncode == EXIT_OK, result.stdout + result.stderr
    assert "model torchvision:mobilenet_v3_small on 1x3x64x64: 62 layers, 48 distinct" in \
        result.stdout
    results = read_results(tmp_path / "torchvision_mobilenet_v3_small")
    assert set(results["status"]) <= {"ok", "unsupported", "skipped"}
    assert results["case"].nunique() == 48
    meta = json.loads((tmp_path / "torchvision_mobilenet_v3_small" / "meta.json").read_text())
    assert meta["suite"]["path"] == "torchvision:mobilenet_v3_small on 1x3x64x64"
    assert meta["suite"]["counts"]["features_5_block_0_0_x2"] == 2


def test_run_an_onnx_file_and_describe_it(onnx: Any, tmp_path: Path) -> None:
    path = build_onnx(onnx, tmp_path / "every_kind.onnx")
    result = convbench("run", str(path), "--input", "x=1x3x15x15", "--algo", "windowed,torch",
                       "--budget", "0.01", "--processes", "1", "--out", str(tmp_path / "out"),
                       "--format", "json")
    assert result.returncode == EXIT_OK, result.stderr
    document = json.loads(result.stdout)
    assert document["suites"][0]["suite"] == "every_kind"
    described = convbench("describe", str(path), "--input", "1x3x15x15")
    assert described.returncode == EXIT_OK, described.stderr
    for text in ("conv_asym", "n1c3h15k8r3pe1", "maxpool_n1c8h7r2cm1", "6 layers, 6 distinct",
                 "not modelled: lp (LpPool): power-average pooling"):
        assert text in described.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--model", "torchvision:no_such_net"], "--model torchvision:no_such_net: "
     "torchvision has no model 'no_such_net'"),
    (["run", "--model", "no_such_module_x:net"], "--model no_such_module_x:net: no module"),
    (["run", "--model", "torch.nn:Identity", "--input", "1xbx3"], "argument --input: input "
     "shape must be"),
    (["run", "--model", "torch.nn:Identity", "--input", "1x3"], "--model torch.nn:Identity: "
     "input shape must be"),
    (["run", "--input", "1x3x8x8"], "--input needs --model SPEC or an ONNX file"),
    (["run"], "give a SUITE, an ONNX file or --model SPEC"),
    (["describe", "--model", "torch.nn:Identity"], "torch.nn:Identity on 1x3x224x224: no "
     "convolution or pooling layer"),
])
def test_bad_model_arguments_exit_2_naming_them(args: list[str], message: str) -> None:
    result = convbench(*args)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


def test_dynamic_onnx_shapes_and_missing_extras_exit_2(onnx: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = build_onnx(onnx, tmp_path / "dynamic.onnx")
    assert main(["run", str(path), "--out", str(tmp_path)]) == EXIT_USAGE
    assert "input 'x' has a dynamic dimension 0 (N)" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["run", str(path), "--out", str(tmp_path)]) == EXIT_USAGE
    assert "pip install 'convbench[onnx]'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "torchvision", None)
    assert main(["describe", "--model", "torchvision:resnet50"]) == EXIT_USAGE
    assert "pip install 'convbench[models]'" in capsys.readouterr().err
