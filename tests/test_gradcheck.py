"""A second, independent oracle: central finite differences on tiny float64 problems.

For a forward op f and an upstream gradient g, the backward pass must give the gradient of
L(x) = sum(f(x) * g): dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / 2h, which for these piecewise
linear ops is exact up to rounding (max pooling: with distinct values, far from any tie). The
forward passes come from convbench itself, so no torch is involved. The transposed convolution
is checked as the adjoint of conv2d: <conv2d(y, w), x> == <y, conv_transpose2d(x, w)>.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import convbench
from convbench.algorithms import registry

H = 1e-3


def numeric_gradient(loss: Callable[[np.ndarray], float], a: np.ndarray) -> np.ndarray:
    grad = np.zeros_like(a)
    for index in np.ndindex(a.shape):
        saved = a[index]
        a[index] = saved + H
        up = loss(a)
        a[index] = saved - H
        down = loss(a)
        a[index] = saved
        grad[index] = (up - down) / (2 * H)
    return grad


def rand(*shape: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


CONV_CASES = {  # (x shape, w shape, stride, padding, dilation, groups)
    "strided_padded": ((2, 2, 5, 6), (3, 2, 3, 2), (2, 1), (1, 0), 1, 1),
    "dilated_grouped": ((1, 4, 6, 5), (4, 2, 2, 2), 1, 1, (2, 1), 2),
}


@pytest.mark.parametrize("algo", registry.algorithms("conv2d_backward"))
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d_backward_matches_finite_differences(algo: str, case: tuple) -> None:
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w = rand(*x_shape, seed=1), rand(*w_shape, seed=2)
    bias = np.zeros(w_shape[0])

    def forward(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
        return convbench.conv2d(x, w, bias, stride, padding, dilation, groups, algo="direct")

    g = rand(*forward(x, w, bias).shape, seed=3)
    try:
        grad_x, grad_w, grad_bias = convbench.conv2d_backward(g, x, w, stride, padding,
                                                              dilation, groups, algo=algo)
    except convbench.Unsupported as refused:  # bwd_data-only algorithms (FFT, Winograd)
        pytest.skip(str(refused))
    np.testing.assert_allclose(grad_x, numeric_gradient(
        lambda a: float((forward(a, w, bias) * g).sum()), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad_w, numeric_gradient(
        lambda a: float((forward(x, a, bias) * g).sum()), w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad_bias, numeric_gradient(
        lambda a: float((forward(x, w, a) * g).sum()), bias), rtol=1e-6, atol=1e-8)


def distinct(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Values a permutation apart (spacing 0.1 >> H): no ties, no near-ties for max pooling."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))) * 0.1
    return values.reshape(shape).astype(np.float64)


POOL_CASES = {  # keyword arguments of the pooling call
    "max_ceil_padded": ("max", {"kernel_size": 3, "stride": 2, "padding": 1,
                                "ceil_mode": True}),
    "max_dilated_nonsquare": ("max", {"kernel_size": (2, 3), "stride": (1, 2),
                                      "dilation": (2, 1)}),
    "avg_exclude_pad_ceil": ("avg", {"kernel_size": 3, "stride": 2, "padding": 1,
                                     "ceil_mode": True, "count_include_pad": False}),
    "avg_nonsquare": ("avg", {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 0)}),
}


@pytest.mark.parametrize("algo", registry.algorithms("max_pool2d_backward"))
@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_pool_backward_matches_finite_differences(algo: str, case: tuple) -> None:
    kind, kwargs = case
    forward = convbench.max_pool2d if kind == "max" else convbench.avg_pool2d
    backward = convbench.max_pool2d_backward if kind == "max" else convbench.avg_pool2d_backward
    x = distinct((2, 2, 7, 6), seed=4)
    g = rand(*forward(x, **kwargs, algo="naive").shape, seed=5)
    grad_x = backward(g, x, **kwargs, algo=algo)
    expected = numeric_gradient(lambda a: float((forward(a, **kwargs, algo="naive") * g).sum()),
                                x)
    np.testing.assert_allclose(grad_x, expected, rtol=1e-6, atol=1e-8)


# (x shape, w shape (C, K/g, R, S), stride, padding, output_padding, groups, dilation)
TRANSPOSED_CASES = {
    "k4_s2_p1": ((2, 4, 3, 4), (4, 3, 4, 4), 2, 1, 0, 1, 1),
    "k3_s2_p1_op1_groups": ((1, 4, 3, 3), (4, 1, 3, 2), 2, (1, 0), 1, 2, 1),
    "dilated_op_below_dilation": ((1, 2, 3, 3), (2, 2, 2, 3), 1, 0, 1, 1, 2),
}


@pytest.mark.parametrize("algo", registry.algorithms("conv_transpose2d"))
@pytest.mark.parametrize("case", TRANSPOSED_CASES.values(), ids=TRANSPOSED_CASES.keys())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(algo: str, case: tuple) -> None:
    x_shape, w_shape, stride, padding, output_padding, groups, dilation = case
    x, w = rand(*x_shape, seed=6), rand(*w_shape, seed=7)
    y = convbench.conv_transpose2d(x, w, None, stride, padding, output_padding, groups,
                                   dilation, algo=algo)
    probe = rand(*y.shape, seed=8)
    back = convbench.conv2d(probe, w, None, stride, padding, dilation, groups, algo="direct")
    # With output_padding >= stride (allowed below the dilation) conv2d has extra outputs that
    # no input of the transposed convolution reaches: the adjoint pairs x with the rest.
    assert back.shape[2:] >= x.shape[2:]
    back = back[:, :, : x.shape[2], : x.shape[3]]
    assert float((y * probe).sum()) == pytest.approx(float((back * x).sum()), rel=1e-10)
