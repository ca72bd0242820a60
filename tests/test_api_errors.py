"""convbench.conv2d: every bad input is a ValueError naming the argument and its value, raised
before any algorithm is chosen or run; plus dtype, unbatched input, auto vs torch, the registry
query and the promise that importing convbench never imports torch or cupy."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import convbench
import convbench.api.checks
from convbench.algorithms import registry


def arr(*shape: int, dtype=np.float32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


X = arr(2, 4, 6, 6)  # N=2, C=4, 6x6
W = arr(6, 4, 3, 3)  # K=6, C/g=4, 3x3


@pytest.fixture
def no_work(monkeypatch):
    """Fail loudly if conv2d gets as far as choosing an algorithm (it must validate first)."""

    def boom(*args, **kwargs):
        raise AssertionError("conv2d chose an algorithm before rejecting its input")

    monkeypatch.setattr(convbench.api.checks, "choose", boom)


def _f64(shape):
    return arr(*shape, dtype=np.float64)


BAD_INPUTS = [
    # (id, kwargs for conv2d, regex the message must match)
    ("x-list", dict(x=X.tolist(), w=W), r"\bx must be a numpy array, got list"),
    ("x-ndim2", dict(x=arr(4, 6), w=W), r"\bx must have 3 or 4 dimensions, got shape \(4, 6\)"),
    (
        "x-ndim5",
        dict(x=arr(1, 2, 4, 6, 6), w=W),
        r"\bx must have 3 or 4 dimensions, got shape \(1, 2, 4, 6, 6\)",
    ),
    ("w-list", dict(x=X, w=W.tolist()), r"\bw must be a numpy array, got list"),
    ("w-ndim3", dict(x=X, w=arr(6, 4, 3)), r"\bw must have 4 dimensions, got shape \(6, 4, 3\)"),
    (
        "x-int64",
        dict(x=X.astype(np.int64), w=W),
        r"\bx\.dtype must be float32 or float64, got int64",
    ),
    (
        "x-float16",
        dict(x=X.astype(np.float16), w=W),
        r"\bx\.dtype must be float32 or float64, got float16",
    ),
    (
        "w-int32",
        dict(x=X, w=W.astype(np.int32)),
        r"\bw\.dtype must be float32 or float64, got int32",
    ),
    (
        "x-w-dtype-mismatch",
        dict(x=X, w=W.astype(np.float64)),
        r"x\.dtype=float32, w\.dtype=float64",
    ),
    (
        "bias-dtype-mismatch",
        dict(x=X, w=W, bias=np.zeros(6, np.float64)),
        r"bias\.dtype=float64",
    ),
    (
        "bias-int",
        dict(x=X, w=W, bias=np.zeros(6, np.int64)),
        r"\bbias\.dtype must be float32 or float64, got int64",
    ),
    (
        "bias-wrong-length",
        dict(x=X, w=W, bias=np.zeros(5, np.float32)),
        r"\bbias must have shape \(6,\).*got \(5,\)",
    ),
    (
        "bias-2d",
        dict(x=X, w=W, bias=np.zeros((1, 6), np.float32)),
        r"\bbias must have 1 dimensions, got shape \(1, 6\)",
    ),
    (
        "bias-list",
        dict(x=X, w=W, bias=[0.0] * 6),
        r"\bbias must be a numpy array, got list",
    ),
    (
        "channel-mismatch",
        dict(x=X, w=arr(6, 3, 3, 3)),  # x C=4, w.shape[1]=3
        r"w\.shape\[1\] \* groups = 3 \* 1 must equal the input channels C = 4",
    ),
    (
        "groups-not-dividing-C",
        dict(x=X, w=arr(6, 1, 3, 3), groups=3),  # 4 % 3 != 0
        r"groups = 1 \* 3 must equal the input channels C = 4",
    ),
    (
        "groups-not-dividing-K",
        dict(x=X, w=arr(5, 2, 3, 3), groups=2),  # C=4 fine, K=5 % 2 != 0
        r"groups=2 must divide the output channels K=5",
    ),
    ("groups-0", dict(x=X, w=W, groups=0), r"\bgroups must be a positive int, got 0"),
    ("groups-negative", dict(x=X, w=W, groups=-2), r"\bgroups must be a positive int, got -2"),
    ("groups-float", dict(x=X, w=W, groups=1.0), r"\bgroups must be a positive int, got 1\.0"),
    ("groups-bool", dict(x=X, w=W, groups=True), r"\bgroups must be a positive int, got True"),
    ("stride-0", dict(x=X, w=W, stride=0), r"\bstride must be >= 1, got 0"),
    ("stride-negative", dict(x=X, w=W, stride=-1), r"\bstride must be >= 1, got -1"),
    ("stride-pair-0", dict(x=X, w=W, stride=(1, 0)), r"\bstride must be >= 1, got \(1, 0\)"),
    ("stride-float", dict(x=X, w=W, stride=1.5), r"\bstride must be an int .*got 1\.5"),
    ("padding-negative", dict(x=X, w=W, padding=-1), r"\bpadding must be >= 0, got -1"),
    (
        "padding-pair-negative",
        dict(x=X, w=W, padding=(0, -1)),
        r"\bpadding must be >= 0, got \(0, -1\)",
    ),
    ("padding-bogus", dict(x=X, w=W, padding="bogus"), r"\bpadding must be .*got 'bogus'"),
    (
        "padding-same-stride2",
        dict(x=X, w=W, padding="same", stride=2),
        r"padding='same' needs stride 1, got stride=\(2, 2\)",
    ),
    ("dilation-0", dict(x=X, w=W, dilation=0), r"\bdilation must be >= 1, got 0"),
    (
        "kernel-too-large",
        dict(x=arr(1, 4, 3, 3), w=arr(2, 4, 5, 5)),
        r"kernel height 5 .*padded input height 3 \+ 2\*0",
    ),
    (
        "dilated-kernel-too-large",
        dict(x=X, w=W, dilation=(1, 3)),  # width extent 3*2 + 1 = 7 > 6
        r"kernel width 3 \(dilated extent 7\) .*padded input width 6",
    ),
]


@pytest.mark.parametrize(
    "kwargs, pattern", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_raises_before_any_work(no_work, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        convbench.conv2d(**kwargs)


@pytest.mark.parametrize("algo", ["direct_naive", "direct", "im2col", "torch"])
def test_bad_input_with_named_algo(algo):
    with pytest.raises(ValueError, match=r"\bstride must be >= 1, got 0"):
        convbench.conv2d(X, W, stride=0, algo=algo)


def test_unknown_algo_lists_known_ones():
    with pytest.raises(ValueError, match=r"algo='nope' is not a registered conv2d algorithm") as e:
        convbench.conv2d(X, W, algo="nope")
    for name in ("direct_naive", "direct", "im2col", "torch"):
        assert re.search(rf"\b{name}\b", str(e.value)), name


def test_unbatched_error_quotes_the_shape_that_was_passed():
    # x is (C=4, H=6, W=6) unbatched; w wants 3 channels. The message should describe the x the
    # caller passed, not the internal batched (1, 4, 6, 6) view of it (whose shape[1] is not
    # the caller's x.shape[1]).
    with pytest.raises(ValueError) as e:
        convbench.conv2d(arr(4, 6, 6), arr(2, 3, 3, 3))
    assert "(4, 6, 6)" in str(e.value)
    assert "(1, 4, 6, 6)" not in str(e.value)


# --- Unsupported ---------------------------------------------------------------------------


def test_unsupported_is_a_value_error():
    assert issubclass(convbench.Unsupported, ValueError)


@pytest.fixture
def picky_algorithm():
    """A registered algorithm whose declaration refuses strided problems."""

    def refuse_strided(p):
        return "handles stride 1 only" if p.stride != (1, 1) else None

    def fn(p, x, w, bias):
        raise AssertionError("must not run")

    convbench.register("conv2d", "test_picky", checks=(refuse_strided,))(fn)
    yield "test_picky"
    registry.remove("conv2d", "test_picky")


def test_unsupported_raised_with_reason(picky_algorithm):
    with pytest.raises(convbench.Unsupported, match=r"test_picky: handles stride 1 only"):
        convbench.conv2d(X, W, stride=2, algo=picky_algorithm)


# --- results ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo", ["auto", "direct_naive", "direct", "im2col", "torch"])
def test_dtype_preserved(dtype, algo):
    x, w, b = arr(1, 2, 5, 5, dtype=dtype), arr(3, 2, 3, 3, dtype=dtype), arr(3, dtype=dtype)
    y = convbench.conv2d(x, w, b, padding=1, algo=algo)
    assert isinstance(y, np.ndarray)
    assert y.dtype == dtype
    assert y.shape == (1, 3, 5, 5)  # (5 + 2 - 2 - 1)/1 + 1 = 5


@pytest.mark.parametrize("algo", ["auto", "direct_naive", "direct", "im2col", "torch"])
def test_unbatched_matches_batched(algo):
    x, w, b = arr(4, 7, 6, seed=1), arr(6, 2, 3, 3, seed=2), arr(6, seed=3)
    y3 = convbench.conv2d(x, w, b, stride=2, padding=1, groups=2, algo=algo)
    y4 = convbench.conv2d(x[None], w, b, stride=2, padding=1, groups=2, algo=algo)
    # height (7 + 2 - 2 - 1)/2 = 3, +1 = 4; width (6 + 2 - 2 - 1)/2 = 2.5 -> 2, +1 = 3
    assert y3.shape == (6, 4, 3)
    assert y4.shape == (1, 6, 4, 3)
    np.testing.assert_array_equal(y3, y4[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(stride=2, padding=1),
        dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1)),
        dict(padding="same", dilation=2),
        dict(groups=2, padding=1),
    ],
    ids=["plain", "strided", "mixed", "same-dilated", "grouped"],
)
def test_auto_matches_torch(kwargs):
    import torch

    x = arr(2, 4, 9, 8, seed=4)
    w = arr(6, 4 // kwargs.get("groups", 1), 3, 3, seed=5)
    b = arr(6, seed=6)
    y = convbench.conv2d(x, w, b, algo="auto", **kwargs)
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kwargs
    ).numpy()
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, atol=1e-4, rtol=1e-4)


# --- registry queries ------------------------------------------------------------------------


def test_algorithms_lists_builtins():
    names = convbench.algorithms("conv2d")
    assert {"direct_naive", "direct", "im2col", "torch"} <= set(names)
    assert convbench.algorithms() == names  # conv2d is the default op


def test_algorithms_unknown_op():
    with pytest.raises(ValueError, match=r"op='nope' is not a known op \(known: .*conv2d"):
        convbench.algorithms("nope")


@pytest.mark.slow
def test_import_does_not_import_torch_or_cupy():
    code = (
        "import json, sys\n"
        "heavy = lambda: sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'cupy'))\n"
        "import convbench\n"
        "after_import = heavy()\n"
        "names = convbench.algorithms('conv2d')\n"
        "print(json.dumps({'import': after_import, 'algorithms': heavy(), 'names': names}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["import"] == []
    assert report["algorithms"] == []
    assert "torch" in report["names"]  # registered without importing it
