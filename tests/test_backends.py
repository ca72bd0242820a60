"""Backends: availability and its reasons, moving arrays, the generic code on array_api_strict,
and (marked gpu) the same algorithms, timing and memory on CUDA devices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convbench import oracle

from convbench.algorithms import registry
from convbench.backends import (
    ARRAY_API_BACKENDS, BACKENDS, GPU_BACKENDS, backend_why_not, to_backend, to_numpy)
from convbench.problems.descriptor import parse
from convbench.run.rundir import read_results
from convbench.run.runner import RunOptions, run
from convbench.run.suite import load_suite

GENERIC = [a.name for a in registry.all_algorithms("conv2d") if a.backends == ARRAY_API_BACKENDS]
PROBLEMS = ["n2c4h9k6r3p1", "n1c6h11w13k4r3s2sh2sw1p1d2g2b1", "n2c8h7k4r1", "n2c4h10k4r5p2",
            "n1c3h8k2r3p1f64",
            "n2c4h24k4r3p1g2b1"]  # 576 outputs an image: im2col unfolds one image at a time


def test_unknown_backend_is_named() -> None:
    assert backend_why_not("tpu") == "unknown backend 'tpu' (known: numpy, torch, torch-cuda, cupy)"


def test_the_generic_algorithms_declare_every_backend() -> None:
    assert {"direct", "im2col", "fft", "winograd_f4x3"} <= set(GENERIC)
    assert ARRAY_API_BACKENDS == BACKENDS


# The pairs whose problem the algorithm supports: a skip means "cannot run here", never "never".
STRICT_CASES = [(name, d) for d in PROBLEMS for name in GENERIC
                if registry.get("conv2d", name).covers(parse(d))]


@pytest.mark.parametrize("name, descriptor", STRICT_CASES)
def test_generic_code_runs_on_array_api_strict(name: str, descriptor: str) -> None:
    """array_api_strict has only the standard: any call that would not port fails here."""
    xs = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    p, algorithm = parse(descriptor), registry.get("conv2d", name)
    reason = algorithm.why_not(p, "numpy")
    if reason:
        pytest.skip(reason)
    inputs = oracle.make_inputs(p)
    y = algorithm.fn(p, *(None if a is None else xs.asarray(a) for a in inputs.arrays))
    assert type(y).__module__.startswith("array_api_strict")
    check = oracle.check_algorithm(p, np.asarray(y), oracle.reference(p, inputs), algorithm)
    assert check.ok, check


def test_arrays_move_to_torch_and_back() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = to_backend(a, "torch")
    assert type(t).__module__ == "torch" and np.array_equal(to_numpy(t), a)
    assert to_backend(None, "torch") is None and to_backend(a, "numpy") is a


def test_list_names_every_backend_without_importing_torch_or_cupy() -> None:
    heavy = ("torch", "cupy", "pandas", "scipy.stats", "matplotlib")
    code = ("import sys; from convbench.cli import main; main(['list']); "
            f"print('imported:', sorted(m for m in {heavy!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"COLUMNS": "250", "PATH": ""}, timeout=60)
    assert result.returncode == 0, result.stderr
    for backend in BACKENDS:
        assert backend in result.stdout
    assert "imported: []" in result.stdout


def test_unavailable_backends_are_skipped_with_their_reason(tmp_path: Path) -> None:
    suite = load_suite("smoke")
    frame = read_results(run(suite, tmp_path, RunOptions(algorithms=("im2col", "torch"),
                                                         backends=BACKENDS)))
    declared = frame.apply(lambda row: row["backend"] in registry.get("conv2d", row["algo"])
                           .backends, axis=1)
    assert set(frame[~declared]["status"]) == {"unsupported"}  # e.g. torch on cupy
    for backend in BACKENDS:
        rows = frame[declared & (frame["backend"] == backend)]
        reason = backend_why_not(backend, probe=True)
        if reason:
            assert set(rows["status"]) == {"skipped"} and set(rows["reason"]) == {reason}
        else:
            assert set(rows["status"]) == {"ok"}, rows[["case", "algo", "reason"]]


def _gpu(backend: str) -> None:
    reason = backend_why_not(backend, probe=True)
    if reason:
        pytest.skip(reason)


@pytest.mark.gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_run_times_with_events_and_reads_device_memory(backend: str, tmp_path: Path) -> None:
    _gpu(backend)
    names = ("im2col", "winograd_f4x3", "fft") + (("torch",) if backend == "torch-cuda" else
                                                   ("direct_cuda",))
    frame = read_results(run(load_suite("smoke"), tmp_path,
                             RunOptions(algorithms=names, backends=(backend,))))
    ok = frame[frame["status"] == "ok"]
    bad = frame[~frame["status"].isin(["ok", "unsupported"])]
    assert bad.empty, bad[["case", "algo", "status", "reason"]].to_string()
    assert len(ok) >= 8
    assert (ok["calls_per_sample"] == 1).all()  # one CUDA-event pair per call
    assert ok["peak_mem_bytes"].notna().all()
    meta = json.loads((tmp_path / "meta.json").read_text())
    if backend == "torch-cuda":
        assert meta["torch_cuda"]["cudnn_allow_tf32"] is False
        assert (ok[ok["algo"] == "torch"]["kernels"].str.len() > 0).all()


@pytest.mark.gpu
def test_cuda_memory_reading_sees_a_known_temporary() -> None:
    _gpu("cupy")
    import cupy

    from convbench.backends.gpu import peak_extra_bytes

    def allocates() -> object:
        temporary = cupy.ones(2**20, dtype=cupy.float32)  # 4 MiB
        return cupy.zeros(16, dtype=cupy.float32) + temporary[:16]

    reading = peak_extra_bytes("cupy", allocates)
    assert 4 * 2**20 <= reading.peak_extra_bytes < 5 * 2**20


CUDA_KERNELS = ["im2col_cuda", "winograd_f2x3_cuda", "winograd_f4x3_cuda", "winograd_f6x3_cuda"]


@pytest.mark.gpu
@pytest.mark.parametrize("descriptor", ["n8c64h28k64r3p1", "n4c32h30k48r3st2p1", "n8c128h14k64r1",
                                        "n4c64h7k256r1", "n2c12h17k8r3p1g2b1"])
@pytest.mark.parametrize("name", CUDA_KERNELS)
def test_cuda_kernels_workspace_within_10_percent_of_the_model(name: str, descriptor: str) -> None:
    _gpu("cupy")
    from convbench.backends.gpu import peak_extra_bytes

    p = parse(descriptor)
    algorithm = registry.get("conv2d", name)
    if algorithm.why_not(p, "cupy"):
        pytest.skip(algorithm.why_not(p, "cupy"))
    arrays = [to_backend(a, "cupy") for a in oracle.make_inputs(p).arrays]
    algorithm.fn(p, *arrays)  # compiles the kernels outside the reading
    measured = peak_extra_bytes("cupy", lambda: algorithm.fn(p, *arrays)).peak_extra_bytes
    model = algorithm.workspace_bytes(p)
    assert abs(measured - model) <= 0.1 * model + 4096, (name, descriptor, measured, model)
