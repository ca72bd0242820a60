"""The registry: duplicates refused, why_not's sentences, Unsupported from convbench.conv2d,
entry-point plugins (good and broken), and what every built-in declares.

Every test that registers something takes it out again, whatever happens in the test."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import convbench
from convbench.algorithms import registry
from convbench.problems import ConvProblem, PoolProblem
from convbench.algorithms.registry import Algorithm, Unsupported

BUILTINS = ("direct_naive", "direct", "im2col", "torch")
P = ConvProblem(1, 4, 8, 8, 4, 3, 3, padding=1)


def never_called(*args, **kwargs):
    raise AssertionError("the algorithm's function must not run")


def algo(**declaration) -> Algorithm:
    """An Algorithm that is never registered: why_not is a pure function of its declaration."""
    declaration.setdefault("backends", ("numpy",))
    return Algorithm(op="conv2d", name="probe", fn=never_called, **declaration)


@pytest.fixture
def temp_algorithm() -> Iterator[Callable[..., Algorithm]]:
    """Register conv2d algorithms for one test; all of them are removed afterwards."""
    registry.all_algorithms()  # built-ins and plugins loaded first, so they are not ours
    added: list[tuple[str, str]] = []

    def add(name: str, fn: Callable, **declaration) -> Algorithm:
        algorithm = Algorithm(op="conv2d", name=name, fn=fn, **declaration)
        registry.add(algorithm)
        added.append((algorithm.op, algorithm.name))
        return algorithm

    try:
        yield add
    finally:
        for op, name in added:
            registry.remove(op, name)


# --- duplicates -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTINS)
def test_duplicate_registration_refused(name: str) -> None:
    before = registry.get("conv2d", name)
    with pytest.raises(ValueError, match=f"'{name}' is already registered for conv2d"):
        registry.add(Algorithm(op="conv2d", name=name, fn=never_called, backends=("numpy",)))
    with pytest.raises(ValueError, match="already registered"):
        registry.register("conv2d", name)(never_called)
    assert registry.get("conv2d", name) is before  # the original is untouched


def test_same_name_for_another_op_is_not_a_duplicate() -> None:
    registry.all_algorithms()
    algorithm = Algorithm(op="test_op_tmp", name="direct", fn=never_called, backends=("numpy",))
    registry.add(algorithm)
    try:
        assert registry.get("test_op_tmp", "direct") is algorithm
        assert registry.get("conv2d", "direct") is not algorithm
    finally:
        registry.remove("test_op_tmp", "direct")
    assert "test_op_tmp" not in registry.ops()


def test_remove_unknown_raises() -> None:
    with pytest.raises(KeyError):
        registry.remove("conv2d", "never_registered_" + uuid.uuid4().hex)


# --- why_not ----------------------------------------------------------------------------------


def test_why_not_none_when_supported() -> None:
    assert algo().why_not(P, "numpy") is None
    assert algo().why_not(P) is None  # numpy is the default backend


def test_why_not_wrong_op() -> None:
    pool = PoolProblem("max", 1, 4, 8, 8, 2, 2)
    assert algo().why_not(pool) == "probe implements conv2d, not max_pool2d"


def test_why_not_backend_not_declared() -> None:
    assert algo().why_not(P, "cupy") == "runs on numpy only, not cupy"
    two = algo(backends=("numpy", "cupy"))
    assert two.why_not(P, "metal") == "runs on numpy, cupy only, not metal"


def test_why_not_unknown_backend() -> None:
    # declared by the algorithm, but not a backend convbench knows
    reason = algo(backends=("numpy", "quantum")).why_not(P, "quantum")
    assert reason == "unknown backend 'quantum' (known: numpy, torch, torch-cuda, cupy)"


def test_why_not_missing_required_module() -> None:
    reason = algo(requires=("surely_not_installed_mod",)).why_not(P)
    assert reason == "needs surely_not_installed_mod, which is not installed"
    # an installed requirement is no reason
    assert algo(requires=("numpy",)).why_not(P) is None
    # the first missing one is named
    both = algo(requires=("numpy", "surely_not_installed_mod", "other_missing_mod"))
    assert both.why_not(P) == "needs surely_not_installed_mod, which is not installed"


def test_why_not_missing_required_submodule_is_a_sentence_not_a_crash() -> None:
    # find_spec("a.b") imports "a" and raises ModuleNotFoundError when "a" is missing;
    # why_not promises a sentence, not an exception.
    reason = algo(requires=("surely_not_installed_mod.sub",)).why_not(P)
    assert reason is not None and "surely_not_installed_mod" in reason
    assert "not installed" in reason


def test_why_not_custom_check_reason_verbatim() -> None:
    sentence = "needs an even number of channels per group, and 3 is odd (C/g = 3)"
    seen: list[ConvProblem] = []

    def check(p: ConvProblem) -> str | None:
        seen.append(p)
        return sentence if p.c % 2 else None

    a = algo(checks=(lambda p: None, check))
    odd = ConvProblem(1, 3, 8, 8, 4, 3, 3)
    assert a.why_not(odd) == sentence
    assert a.why_not(P) is None
    assert seen == [odd, P]


def test_why_not_order_backend_before_requirement_before_checks() -> None:
    a = algo(requires=("surely_not_installed_mod",), checks=(lambda p: "check says no",))
    assert a.why_not(P, "cupy") == "runs on numpy only, not cupy"
    assert a.why_not(P) == "needs surely_not_installed_mod, which is not installed"
    assert algo(checks=(lambda p: "check says no",)).why_not(P) == "check says no"


# --- Unsupported from the API -----------------------------------------------------------------


def test_conv2d_raises_unsupported_with_the_checks_reason(temp_algorithm) -> None:
    calls: list[ConvProblem] = []

    def fn(p, x, w, bias):
        calls.append(p)
        return np.zeros(p.output_shape, dtype=x.dtype)

    reason = "refuses grouped convolutions in this test"
    temp_algorithm("refusing_tmp", fn, backends=("numpy",),
                   checks=(lambda p: reason if p.groups > 1 else None,))
    assert "refusing_tmp" in convbench.algorithms("conv2d")

    x = np.ones((1, 4, 6, 6), dtype=np.float32)
    with pytest.raises(Unsupported) as info:
        convbench.conv2d(x, np.ones((4, 2, 3, 3), dtype=np.float32), groups=2,
                         algo="refusing_tmp")
    assert isinstance(info.value, ValueError)
    assert str(info.value) == f"refusing_tmp: {reason}"
    assert calls == []  # refused before running

    # the same algorithm runs a problem its check accepts
    y = convbench.conv2d(x, np.ones((4, 4, 3, 3), dtype=np.float32), algo="refusing_tmp")
    assert y.shape == (1, 4, 4, 4)
    assert len(calls) == 1


def test_temp_algorithm_was_cleaned_up() -> None:
    # runs after the test above in file order; also holds when run alone
    assert "refusing_tmp" not in convbench.algorithms("conv2d")


# --- entry-point plugins ----------------------------------------------------------------------


@pytest.fixture
def plugin_env(monkeypatch, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """A registry that will load again, seeing only the entry points a test installs.

    Restores _loaded, _PLUGIN_ERRORS and the registry's contents, and forgets the modules."""
    registry.all_algorithms()  # the real load happens first; its results are what we restore
    saved_algorithms = dict(registry._REGISTRY)
    saved_errors = dict(registry._PLUGIN_ERRORS)
    saved_modules = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", False)
    registry._PLUGIN_ERRORS.clear()

    def install(*entries: importlib.metadata.EntryPoint) -> None:
        def entry_points(**params):
            assert params == {"group": registry.ENTRY_POINT_GROUP}
            return importlib.metadata.EntryPoints(entries)

        monkeypatch.setattr(registry.importlib.metadata, "entry_points", entry_points)

    try:
        yield install
    finally:
        for key in set(registry._REGISTRY) - set(saved_algorithms):
            registry.remove(*key)
        registry._PLUGIN_ERRORS.clear()
        registry._PLUGIN_ERRORS.update(saved_errors)
        for name in set(sys.modules) - saved_modules:
            if name.startswith("cb_test_plugin_"):
                del sys.modules[name]


def plugin_module(tmp_path: Path, source: str) -> str:
    name = f"cb_test_plugin_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(source)
    return name


def entry(name: str, module: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=module, group=registry.ENTRY_POINT_GROUP)


PLUGIN_SOURCE = '''
import numpy as np
from convbench.algorithms.registry import register

@register("conv2d", "{name}", summary="a test plugin")
def conv(p, x, w, bias):
    return np.full(p.output_shape, 7.0, dtype=x.dtype)
'''


def test_entry_point_plugin_registers_an_algorithm(plugin_env, tmp_path: Path) -> None:
    algo_name = "plugin_algo_tmp"
    module = plugin_module(tmp_path, PLUGIN_SOURCE.format(name=algo_name))
    plugin_env(entry("good_plugin", module))
    assert ("conv2d", algo_name) not in registry._REGISTRY  # not loaded yet

    names = convbench.algorithms("conv2d")
    assert algo_name in names
    assert set(BUILTINS) <= set(names)
    assert registry.plugin_errors() == {}
    y = convbench.conv2d(np.ones((1, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32),
                         algo=algo_name)
    assert y.shape == (1, 3, 3, 3) and np.all(y == 7.0)


def test_broken_plugins_are_recorded_and_builtins_survive(plugin_env, tmp_path: Path) -> None:
    exploding = plugin_module(tmp_path, 'raise RuntimeError("plugin exploded on import")\n')
    good = plugin_module(tmp_path, PLUGIN_SOURCE.format(name="after_broken_tmp"))
    missing = f"cb_test_plugin_missing_{uuid.uuid4().hex}"
    plugin_env(entry("exploding", exploding), entry("missing", missing), entry("good", good))

    errors = registry.plugin_errors()
    assert errors["exploding"] == "RuntimeError: plugin exploded on import"
    assert errors["missing"].startswith("ModuleNotFoundError: ")
    assert missing in errors["missing"]
    assert set(errors) == {"exploding", "missing"}

    names = convbench.algorithms("conv2d")
    assert set(BUILTINS) <= set(names)
    assert "after_broken_tmp" in names  # a later good plugin still loads
    x = np.ones((1, 2, 5, 5), np.float32)
    assert convbench.conv2d(x, np.ones((3, 2, 3, 3), np.float32), algo="direct").shape == (
        1, 3, 3, 3)


def test_plugin_state_restored() -> None:
    # after the plugin tests: no plugin algorithms, no recorded errors from them
    names = convbench.algorithms("conv2d")
    assert "plugin_algo_tmp" not in names and "after_broken_tmp" not in names
    assert "exploding" not in registry.plugin_errors()
    assert registry._loaded


# --- the built-ins ----------------------------------------------------------------------------


def test_builtins_registered_in_order() -> None:
    # in a fresh interpreter: other tests may take a built-in out and put it back (at the end)
    code = "import convbench; print(','.join(convbench.algorithms('conv2d')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=60).stdout.strip().split(",")
    assert [n for n in out if n in BUILTINS] == list(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_declares_numpy_and_a_summary(name: str) -> None:
    a = registry.get("conv2d", name)
    assert a.op == "conv2d"
    assert "numpy" in a.backends
    assert isinstance(a.summary, str) and a.summary.strip()
    assert a.why_not(P) is None  # every built-in can run a plain 3x3 here (torch is installed)


def test_direct_naive_estimate_grows_with_problem_size() -> None:
    estimate = registry.get("conv2d", "direct_naive").estimate_s
    assert estimate is not None
    small = ConvProblem(1, 8, 16, 16, 8, 3, 3, padding=1)
    sizes = [
        small,
        ConvProblem(1, 8, 32, 32, 8, 3, 3, padding=1),  # more pixels
        ConvProblem(1, 64, 32, 32, 64, 3, 3, padding=1),  # more channels
        ConvProblem(8, 64, 32, 32, 64, 3, 3, padding=1),  # bigger batch
    ]
    values = [estimate(p) for p in sizes]
    assert all(v > 0 for v in values)
    assert values == sorted(values) and len(set(values)) == len(values), values
    # grouped: more Python iterations for the same pixels
    assert estimate(ConvProblem(1, 8, 16, 16, 8, 3, 3, padding=1, groups=8)) > estimate(small)
