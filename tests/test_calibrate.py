"""The cost model's calibration (`convbench machine`): rates measured here make a model with
positive finite rates, auto prices with it when this machine has one at the thread count, and a
missing, corrupt or damaged record leaves the defaults with a reason. No timed assertions: the
real measurement runs once, at small sizes, and only its form is checked."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from convbench.algorithms import auto, cost
from convbench.backends import compiled
from convbench.cli import EXIT_OK, main
from convbench.measure import calibrate, machine
from convbench.measure.timing import TimingPolicy
from convbench.problems.descriptor import parse

LAYER4 = parse("n8c512h7k512r3p1")
LAYER1 = parse("n8c64h56k64r3p1")
RATES = {"gemm_flops_per_s": 190e9, "gemm_half_size": 20, "gemm_call_s": 5e-8,
         "copy_bytes_per_s": 10e9, "run_s": 4e-9, "transform_flops_per_s": 3e9,
         "call_s": 1e-6, "cache_bytes": 1 << 20}


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache of this test's own; auto's cached choices and models dropped before and after."""
    monkeypatch.setenv("CONVBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(machine, "_UNCACHED", {})
    auto.forget()
    yield tmp_path / "cache"
    auto.forget()


def record(rates: dict[str, float], threads: int = 1) -> dict[str, object]:
    return {"fingerprint": machine.fingerprint(threads), "threads": threads, "rates": rates,
            "measured_at": "2026-11-30T12:00:00+00:00", "took_s": 3.0, "other_load": 0.01,
            "under_load": False}


def test_a_real_calibration_gives_positive_finite_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibrate, "POLICY", TimingPolicy(budget_s=0.0, min_repeats=2))
    monkeypatch.setattr(calibrate, "GEMM_ROUNDS", TimingPolicy(budget_s=0.0, min_repeats=2))
    monkeypatch.setattr(calibrate, "GEMM_SIZE", 128)
    monkeypatch.setattr(calibrate, "NARROW_GEMMS", ((4, 64, 64, 32), (2, 64, 64, 64)))
    monkeypatch.setattr(calibrate, "COPY_BYTES", 1 << 20)
    monkeypatch.setattr(calibrate, "FFT_SHAPES", ((8, 16, 16),))
    measured = auto.calibrate(1)
    model = cost.from_rates(measured["rates"])
    for name in RATES:
        if name in measured["rates"]:
            value = getattr(model, name)
            assert math.isfinite(value) and value > 0, name
    assert set(measured["rates"]) >= set(RATES) - {"cache_bytes"}
    # each engine's own GEMM rates beside them, the picked engine's the rates' own
    own = measured["engine_gemm_rates"]
    assert set(own) == set(calibrate.installed_engines())
    assert all(math.isfinite(v) and v > 0 for rates in own.values() for v in rates.values())
    picked = own[measured["gemm_engine"]]
    assert picked == {k: measured["rates"][k] for k in ("gemm_flops_per_s", "gemm_half_size")}
    # the compiled kernels' loop rate where they run (numba installed, not switched off)
    assert ("compiled_flops_per_s" in measured["rates"]) == compiled.enabled()
    if compiled.enabled():
        assert math.isfinite(model.compiled_flops_per_s) and model.compiled_flops_per_s > 0
    assert measured["threads"] == 1 and measured["fingerprint"] == machine.fingerprint(1)


def test_auto_prices_with_the_calibrated_model_when_there_is_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "_threads", lambda: 1)
    assert auto.machine_model()[0] is cost.DEFAULTS
    assert "default rates: no calibration for this machine at 1 threads" in auto.explain(LAYER4)
    assert auto.choose(LAYER1).name.startswith("winograd")
    # A machine whose compiled loops are slow (1 GFLOP/s): Winograd's tile transforms and
    # layout transposes (compiled kernels) lose to im2col's one GEMM.
    calibrate.save(record(RATES | {"compiled_flops_per_s": 1e9}))
    auto.forget()
    model, source = auto.machine_model()
    assert model.compiled_flops_per_s == 1e9 and source.startswith("rates calibrated 2026-11-30")
    assert auto.choose(LAYER1).name == "im2col"
    assert "priced with rates calibrated" in auto.explain(LAYER1)


def test_a_model_set_in_the_process_wins_over_the_calibrated_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "_threads", lambda: 1)
    calibrate.save(record(RATES))
    chosen = cost.MachineModel(gemm_flops_per_s=1e9)
    with cost.priced_by(chosen):
        assert auto.machine_model() == (chosen, "rates set by cost.set_machine")
    assert auto.machine_model()[0].gemm_flops_per_s == 190e9


@pytest.mark.parametrize(("content", "reason"), [
    (None, "no calibration for this machine at 1 threads"),
    ("{not json", "unreadable"),
    (json.dumps({"rates": RATES}), "unreadable: another machine's record"),
])
def test_a_missing_or_corrupt_calibration_leaves_the_defaults(
        content: str | None, reason: str) -> None:
    if content is not None:
        path = calibrate.model_path(1)
        path.parent.mkdir(parents=True)
        path.write_text(content)
    model, source = auto.calibrated_model(1)
    assert model is cost.DEFAULTS and source.startswith("default rates") and reason in source


@pytest.mark.parametrize(("rates", "reason"), [
    (RATES | {"run_s": -1.0}, "rates not positive and finite: run_s"),
    (RATES | {"call_s": float("nan")}, "rates not positive and finite: call_s"),
    (RATES | {"warp_s": 1.0}, "unknown rates warp_s"),
])
def test_a_damaged_calibration_is_never_half_used(rates: dict[str, float], reason: str) -> None:
    calibrate.save(record(rates))
    model, source = auto.calibrated_model(1)
    assert model is cost.DEFAULTS
    assert source == f"default rates: calibration unusable: {reason}"


def test_a_calibration_under_load_is_cached_only_when_forced() -> None:
    loaded = record(RATES) | {"under_load": True, "other_load": 0.6}
    with pytest.raises(ValueError, match="other processes took 60% of the CPU"):
        calibrate.save(loaded)
    calibrate.save(loaded, force=True)
    assert json.loads(calibrate.model_path(1).read_text())["forced"] is True


def test_the_command_calibrates_and_shows_the_model(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(machine, "measure_round",
                        lambda threads: machine.PeakRound(195.0, 20.0, 0.01))
    monkeypatch.setattr(calibrate, "rates", lambda threads, extra, engine: dict(RATES))
    monkeypatch.setattr(calibrate, "gemm_times_s",
                        lambda threads, engines: {e: [1.0] * 7 for e in engines})
    monkeypatch.setattr(calibrate, "engine_rates",
                        lambda times_s: {"numpy": 190e9, "torch": 250e9})
    assert main(["machine", "--threads", "1", "--force"]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "cost model (calibrated in" in out and "GEMM 190 GFLOP/s, half rate at 20 wide" in out
    assert "GEMM engine torch (numpy 190, torch 250 GFLOP/s, geometric mean" in out
    # RATES has no loop rate: a record from before the kernels were calibrated, or none to run
    assert ("compiled loops not calibrated" if compiled.enabled() else "compiled loops off") in out
    assert calibrate.model_path(1).exists()
    assert main(["machine", "--threads", "1", "--show"]) == EXIT_OK
    assert "cost model (calibrated 20" in " ".join(capsys.readouterr().out.split())


def test_a_failed_calibration_keeps_the_peaks_and_the_defaults(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(threads: int, extra: object, engine: str) -> dict[str, float]:
        raise RuntimeError("no BLAS")

    monkeypatch.setattr(machine, "measure_round",
                        lambda threads: machine.PeakRound(195.0, 20.0, 0.01))
    monkeypatch.setattr(calibrate, "rates", broken)
    assert main(["machine", "--threads", "1"]) == EXIT_OK
    out = " ".join(capsys.readouterr().out.split())
    assert "cost model not calibrated, auto keeps the default rates: no BLAS" in out
    assert not calibrate.model_path(1).exists() and machine.cached(1) is not None


def test_the_kernels_own_gemms_are_priced_at_numpys_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The calibration records the rate of the GEMMs the fused Winograd kernels call
    themselves (numpy's BLAS, whichever engine is picked): the engine's large-GEMM rate times
    numpy's share of the engines' rates over the large and narrow GEMMs; numpy's own where
    numpy is the engine."""
    monkeypatch.setattr(calibrate, "rates", lambda threads, extra, engine: dict(RATES))
    monkeypatch.setattr(calibrate, "gemm_times_s",
                        lambda threads, engines: {e: [1.0] * 7 for e in engines})
    for numpy_rate, engine, kernel in ((190e9, "torch", RATES["gemm_flops_per_s"] * 0.76),
                                       (250e9, "numpy", RATES["gemm_flops_per_s"])):
        monkeypatch.setattr(calibrate, "engine_rates",
                            lambda times_s, r=numpy_rate: {"numpy": r, "torch": 250e9})
        found = calibrate.calibrate(1)
        assert found["gemm_engine"] == engine
        assert found["rates"]["kernel_gemm_flops_per_s"] == pytest.approx(kernel)
        assert cost.from_rates(found["rates"]).kernel_gemm_flops_per_s == pytest.approx(kernel)


def test_a_record_from_before_the_kernels_gemm_rate_prices_them_at_its_gemm_rate() -> None:
    """A calibration without kernel_gemm_flops_per_s (written before it existed) prices the
    kernels' GEMMs at its own GEMM rate, as the model did then, not at the defaults'."""
    model = cost.from_rates(RATES)
    assert model.kernel_gemm_flops_per_s == RATES["gemm_flops_per_s"] != \
        cost.DEFAULTS.kernel_gemm_flops_per_s


def test_auto_prices_the_gemms_of_the_engine_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    """A calibration that picked torch's engine keeps numpy's GEMM rates beside its own: a run
    that sets numpy's engine is priced at them (the other rates unchanged), one under torch's
    at the record's own; a record without them keeps its own rates and says so."""
    from convbench.backends import gemm

    monkeypatch.setattr(auto, "_threads", lambda: 1)
    own = {"numpy": {"gemm_flops_per_s": 120e9, "gemm_half_size": 40.0},
           "torch": {"gemm_flops_per_s": 190e9, "gemm_half_size": 20.0}}
    calibrate.save(record(RATES) | {"gemm_engine": "torch", "engine_gemm_rates": own})
    auto.forget()
    with gemm.pinned("numpy"):
        model, source = auto.machine_model()
        assert (model.gemm_flops_per_s, model.gemm_half_size) == (120e9, 40.0)
        assert model.copy_bytes_per_s == RATES["copy_bytes_per_s"]
        assert source.endswith("GEMMs at the numpy engine's rates")
    with gemm.pinned("torch"):
        model, source = auto.machine_model()
        assert (model.gemm_flops_per_s, model.gemm_half_size) == (190e9, 20.0)
        assert "engine's rates" not in source
    calibrate.save(record(RATES) | {"gemm_engine": "torch"})
    auto.forget()
    with gemm.pinned("numpy"):
        model, source = auto.machine_model()
        assert model.gemm_flops_per_s == RATES["gemm_flops_per_s"]
        assert source.endswith("GEMMs priced at the torch engine's rates")


@pytest.mark.parametrize("by_engine", [["not", "a", "dict"], {"numpy": 5},
                                       {"numpy": {"gemm_flops_per_s": 120e9, "call_s": 1.0}}])
def test_damaged_engine_rates_never_price_more_than_the_gemms(
        monkeypatch: pytest.MonkeyPatch, by_engine: object) -> None:
    """engine_gemm_rates of the wrong form leave the record's own rates (and say so); of the
    right form, only the GEMM rates are taken from it."""
    from convbench.backends import gemm

    monkeypatch.setattr(auto, "_threads", lambda: 1)
    calibrate.save(record(RATES) | {"gemm_engine": "torch", "engine_gemm_rates": by_engine})
    auto.forget()
    with gemm.pinned("numpy"):
        model, source = auto.machine_model()
    assert model.call_s == RATES["call_s"]
    if isinstance(by_engine, dict) and isinstance(by_engine.get("numpy"), dict):
        assert model.gemm_flops_per_s == 120e9 and source.endswith("numpy engine's rates")
    else:
        assert model.gemm_flops_per_s == RATES["gemm_flops_per_s"]
        assert source.endswith("GEMMs priced at the torch engine's rates")
