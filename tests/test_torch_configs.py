"""PyTorch's own module-test configurations (tests/fixtures/torch_module_configs.json, read from
pytorch/pytorch's common_nn.py and common_modules.py at the commit it names) through convbench's
API: every algorithm that supports a configuration returns torch's shape and values (in float64),
forward and backward; what an algorithm refuses it refuses with a reason; what torch refuses,
convbench refuses with a ValueError naming the argument."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convbench
from convbench.algorithms.registry import Unsupported

torch = pytest.importorskip("torch")
F = torch.nn.functional

FIXTURE = Path(__file__).parent / "fixtures" / "torch_module_configs.json"
CONFIGS = [c for c in json.loads(FIXTURE.read_text())["configs"] if "duplicate_of" not in c]
RUNS = [c for c in CONFIGS if "expected_error" not in c]
REFUSED = [c for c in CONFIGS if "expected_error" in c]
# torch's own modules warn that 'same' with an even kernel copies the input (as convbench does)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
TOLERANCE = 1e-9  # float64, relative to the output's largest magnitude


def _id(c: dict) -> str:
    return f"{c['module']}-{c['desc']}"


def _rank(c: dict) -> int:
    return int(c["module"][-2])


def _module(c: dict) -> Any:
    torch.manual_seed(0)
    return getattr(torch.nn, c["module"])(**c["kwargs"]).double()


def _close(ours: np.ndarray, theirs: Any) -> None:
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    scale = max(float(np.abs(theirs).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE * scale)


def _each_algorithm(op: str, call: Any) -> list[str]:
    """call(algo) for every algorithm of `op`; the names that ran. A refusal must say why."""
    ran = []
    for algo in convbench.algorithms(op):
        try:
            call(algo)
        except Unsupported as error:
            assert str(error).split(": ", 1)[1].strip(), f"{algo} refused without a reason"
            continue
        ran.append(algo)
    return ran


def _conv_args(c: dict) -> dict:
    k = c["kwargs"]
    args = {name: k[name] for name in ("stride", "padding", "dilation", "groups") if name in k}
    if k.get("padding_mode", "zeros") != "zeros":
        args["padding_mode"] = k["padding_mode"]
    return {name: tuple(v) if isinstance(v, list) else v for name, v in args.items()}


def _check_conv(c: dict) -> list[str]:
    module, rank = _module(c), _rank(c)
    x = torch.randn(c["input_shape"], dtype=torch.float64, requires_grad=True)
    y = module(x)
    grad = torch.randn_like(y)
    y.backward(grad)
    w, b = module.weight.detach().numpy(), module.bias
    bias = None if b is None else b.detach().numpy()
    fn = getattr(convbench, f"conv{rank}d")

    def forward(algo: str) -> None:
        _close(fn(x.detach().numpy(), w, bias, **_conv_args(c), algo=algo), y)

    ran = _each_algorithm(f"conv{rank}d", forward)
    if _conv_args(c).get("padding_mode"):
        return ran  # torch pads before the convolution: its backward is the pad's too
    backward = getattr(convbench, f"conv{rank}d_backward")

    def gradients(algo: str) -> None:
        gx, gw, gb = backward(grad.numpy(), x.detach().numpy(), w, **_conv_args(c), algo=algo)
        _close(gx, x.grad)
        _close(gw, module.weight.grad)
        if b is not None:
            _close(gb, b.grad)

    return ran + _each_algorithm(f"conv{rank}d_backward", gradients)


def _check_transpose(c: dict) -> list[str]:
    module, rank = _module(c), _rank(c)
    x = torch.randn(c["input_shape"], dtype=torch.float64)
    k = c["kwargs"]
    args = {n: tuple(v) if isinstance(v, list) else v for n, v in k.items()
            if n in ("stride", "padding", "output_padding", "groups", "dilation")}
    y = module(x)
    bias = None if module.bias is None else module.bias.detach().numpy()
    fn = getattr(convbench, f"conv_transpose{rank}d")
    return _each_algorithm(f"conv_transpose{rank}d", lambda algo: _close(
        fn(x.numpy(), module.weight.detach().numpy(), bias, **args, algo=algo), y))


def _check_pool(c: dict) -> list[str]:
    module, rank = _module(c), _rank(c)
    kind = "max" if c["module"].startswith("Max") else "avg"
    k = dict(c["kwargs"])
    x = torch.randn(c["input_shape"], dtype=torch.float64, requires_grad=True)
    out = module(x)
    y, indices = out if k.get("return_indices") else (out, None)
    grad = torch.randn_like(y)
    y.backward(grad)
    args = {n: tuple(v) if isinstance(v, list) else v for n, v in k.items()
            if n not in ("kernel_size", "return_indices")}
    size = k["kernel_size"]
    kernel = tuple(size) if isinstance(size, list) else size
    forward = getattr(convbench, f"{kind}_pool{rank}d")
    backward = getattr(convbench, f"{kind}_pool{rank}d_backward")
    xs = x.detach().numpy()

    def values(algo: str) -> None:
        if indices is None:
            _close(forward(xs, kernel, **args, algo=algo), y)
            return
        ours, where = forward(xs, kernel, **args, return_indices=True, algo=algo)
        _close(ours, y)
        np.testing.assert_array_equal(where, indices.numpy())
        by_index = backward(grad.numpy(), xs, kernel, **args, indices=where, algo=algo)
        _close(by_index, x.grad)

    def gradient(algo: str) -> None:
        _close(backward(grad.numpy(), xs, kernel, **args, algo=algo), x.grad)

    return (_each_algorithm(f"{kind}_pool{rank}d", values)
            + _each_algorithm(f"{kind}_pool{rank}d_backward", gradient))


CASES = [pytest.param(c, id=_id(c)) for c in RUNS]


@pytest.mark.parametrize("config", CASES)
def test_convbench_returns_torchs_shape_and_values(config: dict) -> None:
    name = config["module"]
    check = (_check_transpose if name.startswith("ConvTranspose") else
             _check_conv if name.startswith("Conv") else _check_pool)
    ran = check(config)
    assert "torch" in ran and len(ran) >= 2, ran  # the reference, and at least one of ours


@pytest.mark.parametrize("config", REFUSED, ids=[_id(c) for c in REFUSED])
def test_what_torch_refuses_convbench_refuses_naming_the_argument(config: dict) -> None:
    x = np.zeros(config["input_shape"])
    k = config["kwargs"]
    with pytest.raises(ValueError, match=r"\b(x|padding)\b"):
        getattr(convbench, f"max_pool{_rank(config)}d")(x, **k)


def test_the_fixture_covers_every_module_and_edge() -> None:
    modules = {c["module"] for c in CONFIGS}
    assert modules == {f"{m}{r}d" for m in ("Conv", "ConvTranspose", "MaxPool", "AvgPool")
                       for r in (1, 2, 3)}
    kwargs = [c["kwargs"] for c in RUNS]
    assert any(k.get("padding") == "same" and k["kernel_size"] in (2, 4) for k in kwargs)
    assert any(k.get("divisor_override") for k in kwargs)
    assert any(k.get("return_indices") for k in kwargs)
    assert any(c["input_shape"][0] == 0 for c in RUNS)  # a batch of 0
    assert any(len(c["input_shape"]) == _rank(c) + 1 for c in RUNS)  # unbatched
