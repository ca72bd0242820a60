"""The library API of the other ops: conv_transpose2d, conv2d_backward and pooling.

Every bad input is a ValueError naming the argument and its value, raised before any algorithm
is chosen; good input agrees with torch, keeps its dtype and may be unbatched."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convbench
import convbench.api.checks


def arr(*shape: int, dtype: type = np.float32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


X = arr(2, 4, 7, 7)
W_T = arr(4, 3, 3, 3)  # transposed: (C, K/g, R, S)
W = arr(6, 4, 3, 3)  # conv: (K, C/g, R, S)
GRAD = arr(2, 6, 4, 4)  # conv2d(X, W, stride=2, padding=1): 7 -> 4


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if an op gets as far as choosing an algorithm (it must validate first)."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("an algorithm was chosen before the input was rejected")

    monkeypatch.setattr(convbench.api.checks, "choose", boom)


def transposed(**kwargs: object) -> np.ndarray:
    return convbench.conv_transpose2d(**({"x": X, "w": W_T} | kwargs))


def backward(**kwargs: object) -> tuple:
    return convbench.conv2d_backward(**({"grad_out": GRAD, "x": X, "w": W, "stride": 2,
                                         "padding": 1} | kwargs))


def max_pool(**kwargs: object) -> np.ndarray:
    return convbench.max_pool2d(**({"x": X, "kernel_size": 3} | kwargs))


def avg_pool(**kwargs: object) -> np.ndarray:
    return convbench.avg_pool2d(**({"x": X, "kernel_size": 3} | kwargs))


def max_back(**kwargs: object) -> np.ndarray:
    return convbench.max_pool2d_backward(**({"grad_out": arr(2, 4, 2, 2), "x": X,
                                             "kernel_size": 3} | kwargs))


def avg_back(**kwargs: object) -> np.ndarray:
    return convbench.avg_pool2d_backward(**({"grad_out": arr(2, 4, 2, 2), "x": X,
                                             "kernel_size": 3} | kwargs))


BAD_INPUTS = [
    # conv_transpose2d
    ("t-x-list", transposed, {"x": X.tolist()}, r"\bx must be a numpy array, got list"),
    ("t-w-ndim", transposed, {"w": arr(4, 3, 3)}, r"\bw must have 4 dimensions, got shape"),
    ("t-dtype", transposed, {"w": W_T.astype(np.float64)}, r"x\.dtype=float32, w\.dtype=float64"),
    ("t-w-channels", transposed, {"w": arr(5, 3, 3, 3)},
     r"w\.shape\[0\] = 5 must equal the input channels C = 4"),
    ("t-bias-shape", transposed, {"bias": np.zeros(4, np.float32)},
     r"bias must have shape \(3,\) = w\.shape\[1\] \* groups, got \(4,\)"),
    ("t-output-padding-vs-stride", transposed, {"stride": 2, "output_padding": 2},
     r"output_padding=\(2, 2\) must be smaller than either stride=\(2, 2\) or dilation"),
    ("t-output-padding-stride1", transposed, {"output_padding": 1},
     r"output_padding=\(1, 1\) must be smaller"),
    ("t-output-padding-negative", transposed, {"output_padding": -1},
     r"output_padding must be >= 0, got -1"),
    ("t-stride-0", transposed, {"stride": 0}, r"stride must be >= 1, got 0"),
    ("t-padding-same", transposed, {"padding": "same"},
     r"padding must be ints or per-side pairs, got 'same'"),
    ("t-groups", transposed, {"groups": 3}, r"groups=3 must divide the input channels C=4"),
    ("t-groups-0", transposed, {"groups": 0}, r"groups must be a positive int, got 0"),
    ("t-no-output", transposed, {"padding": 9}, r"padding=\(9, 9\) leaves no output"),
    # conv2d_backward
    ("b-grad-shape", backward, {"grad_out": arr(2, 6, 5, 4)},
     r"grad_out must have the forward output's shape \(2, 6, 4, 4\), got \(2, 6, 5, 4\)"),
    ("b-grad-channels", backward, {"grad_out": arr(2, 5, 4, 4)},
     r"grad_out must have the forward output's shape \(2, 6, 4, 4\), got \(2, 5, 4, 4\)"),
    ("b-grad-batched-vs-x", backward, {"x": X[0]},
     r"grad_out must have the forward output's shape \(6, 4, 4\), got \(2, 6, 4, 4\)"),
    ("b-grad-ndim", backward, {"grad_out": arr(6, 4)},
     r"grad_out must have 3 or 4 dimensions, got shape \(6, 4\)"),
    ("b-grad-dtype", backward, {"grad_out": GRAD.astype(np.float64)},
     r"x\.dtype=float32, w\.dtype=float32, grad_out\.dtype=float64"),
    ("b-w-channels", backward, {"w": arr(6, 3, 3, 3)},
     r"w\.shape\[1\] \* groups = 3 \* 1 must equal the input channels C = 4"),
    ("b-stride-0", backward, {"stride": 0}, r"stride must be >= 1, got 0"),
    # pooling
    ("p-kernel-0", max_pool, {"kernel_size": 0}, r"kernel_size must be >= 1, got 0"),
    ("p-kernel-pair-0", avg_pool, {"kernel_size": (2, 0)},
     r"kernel_size must be >= 1, got \(2, 0\)"),
    ("p-kernel-str", max_pool, {"kernel_size": "3"},
     r"kernel_size must be an int or a pair of ints, got '3'"),
    ("p-stride-0", max_pool, {"stride": 0}, r"stride must be >= 1, got 0"),
    ("p-padding-over-half", max_pool, {"padding": 2},
     r"padding=\(2, 2\) must be at most half the window \(3, 3\)"),
    ("p-padding-over-half-avg", avg_pool, {"kernel_size": (4, 2), "padding": (1, 2)},
     r"padding=\(1, 2\) must be at most half the window \(4, 2\)"),
    ("p-window-over-input", max_pool, {"kernel_size": 9},
     r"pool window extent 9 is larger than the padded input 7 \+ 2\*0 on the height axis "
     r"\(kernel_size=\(9, 9\)"),
    ("p-dilated-window-over-input", max_pool, {"kernel_size": 3, "dilation": 4},
     r"window extent 9 is larger than the padded input 7 .*dilation=\(4, 4\)"),
    ("p-dilation-0", max_pool, {"dilation": 0}, r"dilation must be >= 1, got 0"),
    ("p-ceil-mode", max_pool, {"ceil_mode": "yes"}, r"ceil_mode must be a bool, got 'yes'"),
    ("p-count-include-pad", avg_pool, {"count_include_pad": 1},
     r"count_include_pad must be a bool, got 1"),
    ("p-x-ndim", avg_pool, {"x": arr(7, 7)}, r"\bx must have 3 or 4 dimensions, got shape"),
    ("p-x-int", max_pool, {"x": X.astype(np.int64)}, r"x\.dtype must be float32 or float64"),
    ("pb-grad-shape", max_back, {"grad_out": arr(2, 4, 3, 3)},
     r"grad_out must have the forward output's shape \(2, 4, 2, 2\), got \(2, 4, 3, 3\)"),
    ("pb-grad-dtype", avg_back, {"grad_out": arr(2, 4, 2, 2, dtype=np.float64)},
     r"grad_out\.dtype=float64, x\.dtype=float32"),
    ("pb-kernel-0", avg_back, {"kernel_size": 0}, r"kernel_size must be >= 1, got 0"),
    ("pb-padding", max_back, {"padding": 2}, r"padding=\(2, 2\) must be at most half"),
    ("global-x-ndim", convbench.global_avg_pool2d, {"x": arr(4, 7)},
     r"\bx must have 3 or 4 dimensions, got shape \(4, 7\)"),
]


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize("call, kwargs, pattern", [b[1:] for b in BAD_INPUTS],
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_a_value_error_naming_it(call: Callable[..., object], kwargs: dict,
                                              pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        call(**kwargs)


def test_unknown_algorithm_names_the_op() -> None:
    with pytest.raises(ValueError, match=re.escape("algo='im2col' is not a registered "
                                                   "max_pool2d algorithm (known: naive, windowed")):
        max_pool(algo="im2col")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


@pytest.mark.parametrize("algo", ["auto", *convbench.algorithms("conv2d_backward")])
def test_conv2d_backward_agrees_with_torch_autograd(algo: str) -> None:
    x, w = _t(X.astype(np.float64)).requires_grad_(), _t(W.astype(np.float64)).requires_grad_()
    bias = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    F.conv2d(x, w, bias, 2, 1).backward(_t(GRAD.astype(np.float64)))
    try:
        grads = convbench.conv2d_backward(GRAD, X, W, stride=2, padding=1, algo=algo)
    except convbench.Unsupported as refused:  # bwd_data-only or stride-1-only algorithms
        pytest.skip(str(refused))
    for got, expected in zip(grads, (x.grad, w.grad, bias.grad), strict=True):
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_unbatched_inputs_give_unbatched_outputs() -> None:
    assert convbench.conv_transpose2d(X[0], W_T, stride=2).shape == (3, 15, 15)
    grad_x, grad_w, grad_bias = convbench.conv2d_backward(GRAD[0], X[0], W, stride=2, padding=1)
    assert (grad_x.shape, grad_w.shape, grad_bias.shape) == ((4, 7, 7), W.shape, (6,))
    assert convbench.max_pool2d(X[0], 2).shape == (4, 3, 3)
    assert convbench.avg_pool2d_backward(arr(4, 3, 3), X[0], 2).shape == (4, 7, 7)
    assert convbench.global_avg_pool2d(X[0]).shape == (4, 1, 1)


def test_float64_is_kept_and_auto_agrees_with_torch() -> None:
    x = X.astype(np.float64)
    y = convbench.conv_transpose2d(x, W_T.astype(np.float64), np.ones(3), stride=2, padding=1,
                                   output_padding=1)
    expected = F.conv_transpose2d(_t(x), _t(W_T.astype(np.float64)), torch.ones(3, dtype=float),
                                  stride=2, padding=1, output_padding=1)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, expected.numpy(), rtol=1e-12, atol=1e-12)
    pooled = convbench.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(pooled, F.avg_pool2d(_t(x), 3, 2, 1, ceil_mode=True,
                                                    count_include_pad=False).numpy())
    np.testing.assert_allclose(convbench.global_avg_pool2d(x), x.mean(axis=(2, 3),
                                                                      keepdims=True))


def test_algorithms_answers_for_every_op() -> None:
    for op in ("conv2d", "conv_transpose2d", "conv2d_backward", "max_pool2d", "avg_pool2d",
               "max_pool2d_backward", "avg_pool2d_backward"):
        assert "torch" in convbench.algorithms(op)
    assert convbench.algorithms("max_pool2d") == ["naive", "windowed", "torch"]
