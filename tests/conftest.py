from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from convbench.algorithms import registry
from convbench.algorithms.registry import Algorithm

AddAlgorithm = Callable[..., Algorithm]

# Machine peaks and tuning tables go to a cache of the test session's own, never to the user's
# (subprocesses inherit it through the environment).
os.environ["CONVBENCH_CACHE"] = tempfile.mkdtemp(prefix="convbench-cache-")


@pytest.fixture
def temporary_algorithm() -> Iterator[AddAlgorithm]:
    """Register conv2d algorithms for one test; they are removed afterwards whatever happens."""
    added: list[str] = []

    def add(name: str, fn: Callable[..., Any], **declaration: Any) -> Algorithm:
        algorithm = Algorithm(op="conv2d", name=name, fn=fn, backends=("numpy",), **declaration)
        registry.add(algorithm)
        added.append(name)
        return algorithm

    yield add
    for name in added:
        registry.remove("conv2d", name)


# The optional extras (convbench[models], convbench[onnx]): a test that needs one is skipped, with
# the install line, where it is missing.
@pytest.fixture(scope="module")
def torchvision() -> Any:
    from convbench.models.optional import MissingExtra, import_torchvision

    try:
        return import_torchvision()
    except MissingExtra as missing:
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def onnx() -> Any:
    from convbench.models.optional import MissingExtra, import_onnx

    try:
        return import_onnx()
    except MissingExtra as missing:
        pytest.skip(str(missing))
