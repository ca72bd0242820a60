"""Winograd minimal filtering of rank 3 (and any rank): F(m x m x m, r x r x r) from the same
1-D transforms, one axis at a time.

A tile of a 3-D convolution is alpha x alpha x alpha input pixels giving m_d x m_h x m_w
outputs. Its transforms are the Kronecker products of each axis's 1-D ones (Lavin & Gray's
nesting), applied here axis by axis: for axis i the tiles are viewed as (before, alpha, after)
and BT_i multiplies the middle axis (one broadcast GEMM), so a tile costs sum(alpha) MACs per
element, not alpha^3 as the Kronecker matrix would. The alpha^3 channel GEMMs (K/g x C/g) @
(C/g x tiles) are the multiplies Winograd saves: (m*r)^3 / alpha^3 fewer than direct. A kernel
axis of size k <= r uses F(alpha - k + 1, k), as in 2-D. Stride 1 and dilation 1 only.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from convbench.algorithms import cost
from convbench.algorithms.conv.winograd_matrices import MATRICES
from convbench.backends.xp import Array, array_strides, constant, contiguous, device, namespace
from convbench.backends.xp import matmul, strided
from convbench.problems import ConvProblem


@functools.cache
def matrices(m: int, r: int, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(AT, G, BT) of F(m, r) as arrays of `dtype`."""
    entry = MATRICES[(m, r)]
    as_array = lambda rows: np.array([[float(Fraction(v)) for v in row] for row in rows],  # noqa: E731
                                     dtype=dtype)
    return as_array(entry["AT"]), as_array(entry["G"]), as_array(entry["BT"])


def tiles(p: ConvProblem, alpha: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(output tile sizes m_i, tiles per axis t_i)."""
    sizes = tuple(alpha - k + 1 for k in p.kernel)
    return sizes, tuple(math.ceil(o / m) for o, m in zip(p.out_size, sizes, strict=True))


def _transforms(p: ConvProblem, alpha: int, like: Array, which: int) -> list[Array]:
    """Each axis's 1-D AT (0), G (1) or BT (2) in `like`'s library, dtype and device."""
    return [constant(matrices(alpha - k + 1, k, "float64")[which], like)
            for k in p.kernel]


def _along(xp: object, matrix: Array, a: Array, axis: int) -> Array:
    """`matrix` applied to axis `axis` of `a` (one broadcast GEMM over the axes around it)."""
    shape = a.shape
    before, after = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    out = matmul(matrix, xp.reshape(a, (before, shape[axis], after)))  # type: ignore[attr-defined]
    return xp.reshape(out, (*shape[:axis], matrix.shape[0], *shape[axis + 1:]))  # type: ignore[attr-defined]


def _padded(p: ConvProblem, x: Array, alpha: int) -> Array:
    xp = namespace(x)
    sizes, counts = tiles(p, alpha)
    shape = (p.n, p.c, *(t * m + k - 1 for t, m, k in zip(counts, sizes, p.kernel, strict=True)))
    out = xp.zeros(shape, dtype=x.dtype, device=device(x))
    out[(slice(None), slice(None), *(slice(b, b + s) for b, s in zip(p.padding, p.size,
                                                                      strict=True)))] = x
    return out


def input_transform(p: ConvProblem, x: Array, alpha: int) -> Array:
    """V: every input tile transformed, (alpha^rank, G, C/g, tiles)."""
    xp = namespace(x)
    sizes, counts = tiles(p, alpha)
    padded = _padded(p, x, alpha)
    sn, sc, *spatial = array_strides(padded)
    view = strided(padded, (*(alpha,) * p.rank, p.c, p.n, *counts),
                   (*spatial, sc, sn, *(m * s for m, s in zip(sizes, spatial, strict=True))))
    v = contiguous(view)  # the one gather: (alpha, ..., C, N, *counts)
    for axis, bt in enumerate(_transforms(p, alpha, x, 2)):
        v = _along(xp, bt, v, axis)
    return xp.reshape(v, (alpha ** p.rank, p.groups, p.c // p.groups, -1))


def filter_transform(p: ConvProblem, w: Array, alpha: int) -> Array:
    """U = G g G^T per axis, for every (k, c): (alpha^rank, G, K/g, C/g)."""
    xp = namespace(w)
    u = xp.permute_dims(w, (*range(2, 2 + p.rank), 0, 1))  # (*kernel, K, C/g)
    for axis, g in enumerate(_transforms(p, alpha, w, 1)):
        u = _along(xp, g, u, axis)
    return xp.reshape(u, (alpha ** p.rank, p.groups, p.k // p.groups, p.c // p.groups))


def winograd_nd(p: ConvProblem, x: Array, w: Array, alpha: int,
                prepared: Array | None = None) -> Array:
    """(N, K, *out): the tiles' products, transformed back axis by axis and cropped."""
    xp = namespace(x, w)
    sizes, counts = tiles(p, alpha)
    u = filter_transform(p, w, alpha) if prepared is None else prepared
    m = matmul(u, input_transform(p, x, alpha))  # (alpha^rank, G, K/g, tiles)
    y = xp.reshape(m, (*(alpha,) * p.rank, p.k, p.n, *counts))
    for axis, at in enumerate(_transforms(p, alpha, x, 0)):
        y = _along(xp, at, y, axis)  # (*sizes, K, N, *counts)
    rank = p.rank
    order = (rank + 1, rank, *(i for a in range(rank) for i in (rank + 2 + a, a)))
    y = xp.reshape(xp.permute_dims(y, order), (p.n, p.k, *(t * s for t, s in zip(
        counts, sizes, strict=True))))  # the copy into channels first
    if tuple(y.shape[2:]) != p.out_size:
        y = contiguous(y[(slice(None), slice(None), *(slice(0, o) for o in p.out_size))])
    return y


def workspace_elements(p: ConvProblem, alpha: int) -> int:
    """The padded input, the gathered tiles and one axis's transformed copy, the products, the
    output tiles and the filters' transform."""
    sizes, counts = tiles(p, alpha)
    count, volume = p.n * math.prod(counts), alpha ** p.rank
    padded = p.n * p.c * math.prod(t * m + k - 1 for t, m, k in zip(counts, sizes, p.kernel,
                                                                      strict=True))
    gathered = volume * p.c * count
    return (padded + 2 * gathered + 2 * volume * p.k * count + volume * p.k * (p.c // p.groups))


def cost_s(p: ConvProblem, alpha: int) -> float:
    """The padded copy and the gather; per axis one transform GEMM of the tiles (input and
    output); the alpha^rank channel GEMMs; the copy into channels first."""
    sizes, counts = tiles(p, alpha)
    count, volume, item = p.n * math.prod(counts), alpha ** p.rank, p.itemsize
    kg, cg = p.k // p.groups, p.c // p.groups
    gather = cost.copy_s(volume * p.c * count, item, alpha) + cost.padding_s(p)
    transforms = sum(cost.gemm_s(alpha, volume // alpha * p.c * count, alpha, item)
                     for _ in range(p.rank))
    back = sum(cost.gemm_s(alpha, volume // alpha * p.k * count, alpha, item)
               for _ in range(p.rank))
    channels = cost.gemm_s(kg, count, cg, item, batch=volume * p.groups)
    return (gather + transforms + channels + back
            + cost.copy_s(p.n * p.k * p.pixels, item, sizes[-1]) + cost.calls_s(12))
