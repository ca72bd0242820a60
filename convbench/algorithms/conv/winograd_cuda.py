"""Winograd F(m x m, 3 x 3) on CuPy with fused transforms: two generated CUDA kernels around
cuBLAS's batched GEMM.

The generic `winograd_f*` algorithms (winograd.py) run on CuPy too, but each of their stages is
a separate array operation: a padded copy, a strided gather of the tiles, a GEMM for each axis of
the input transform, a Kronecker-product GEMM for the output transform and a permuting copy
into NCHW. Here one kernel reads each input tile
straight from x (zeros where it reaches past the padding) and writes its transform
V = BT d B; the alpha^2 channel GEMMs M = U V are one cupy.matmul; one more kernel applies
Y = AT M A to each tile and writes it, with the bias, into the NCHW output, cropping the edge
tiles. The transforms are written out as straight-line sums of the pinned matrices' nonzero
entries, so no multiply by 0 or 1 is left in them. A third kernel transforms the filters,
U = G g GT, unless they come prepared.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any

from convbench.algorithms import cost
from convbench.algorithms.conv import winograd
from convbench.algorithms.conv._cuda import THREADS, blocks, channels_fit, compiled, launch
from convbench.algorithms.conv.winograd_matrices import MATRICES
from convbench.problems import ConvProblem
from convbench.algorithms.registry import register

FAMILY: dict[str, tuple[int, int]] = {
    "winograd_f2x3_cuda": (2, 3), "winograd_f4x3_cuda": (4, 3), "winograd_f6x3_cuda": (6, 3),
}


def _literal(value: Fraction) -> str:
    return f"(SCALAR){float(value)!r}"


def _combination(row: list[Fraction], terms: list[str]) -> str:
    """sum(row[i] * terms[i]) as C, nonzero entries only and no multiply by +-1."""
    parts = []
    for coefficient, term in zip(row, terms):
        if coefficient == 0:
            continue
        sign = "-" if coefficient < 0 else "+"
        magnitude = abs(coefficient)
        parts.append(f" {sign} {term}" if magnitude == 1 else f" {sign} {_literal(magnitude)} * {term}")
    if not parts:
        return "(SCALAR)0"
    text = "".join(parts).strip()
    return text.removeprefix("+ ")


def _matrix(m: int, r: int, name: str) -> list[list[Fraction]]:
    return [[Fraction(v) for v in row] for row in MATRICES[(m, r)][name]]


def _two_sided(matrix: list[list[Fraction]], loads: list[str], names: str,
               stores: list[str]) -> str:
    """A kernel body: the loads, then target = matrix @ source @ matrix.T as C statements over
    the names source{a}_{b} (square, matrix's columns a side), through middle{i}_{b}, then
    the stores. `names` is source, middle and target, one letter each."""
    source, middle, target = names
    rows, inner = len(matrix), len(matrix[0])
    lines = [f"const SCALAR {middle}{i}_{b} = "
             + _combination(matrix[i], [f"{source}{a}_{b}" for a in range(inner)]) + ";"
             for i in range(rows) for b in range(inner)]
    lines += [f"const SCALAR {target}{i}_{j} = "
              + _combination(matrix[j], [f"{middle}{i}_{b}" for b in range(inner)]) + ";"
              for i in range(rows) for j in range(rows)]
    return "\n  ".join(loads + lines + stores)


def _plane_stores(name: str, alpha: int) -> list[str]:
    """out[(i*alpha + j) * plane] = name{i}_{j}: an alpha x alpha result, one plane a value."""
    return [f"out[{i * alpha + j}LL * plane] = {name}{i}_{j};"
            for i in range(alpha) for j in range(alpha)]


@functools.cache
def input_source(m: int, r: int) -> str:
    """Kernel: v[(i*alpha + j), c, p] = (BT d B)[i, j] for the tile p of channel c."""
    alpha, bt = m + r - 1, _matrix(m, r, "BT")
    loads = [f"const SCALAR d{a}_{b} = (h0 + {a} >= 0 && h0 + {a} < H && w0 + {b} >= 0 && "
             f"w0 + {b} < W) ? xc[(h0 + {a}) * W + w0 + {b}] : (SCALAR)0;"
             for a in range(alpha) for b in range(alpha)]
    statements = _two_sided(bt, loads, "dtv", _plane_stores("v", alpha))
    return f"""
extern "C" __global__ void winograd_input(
    const SCALAR* __restrict__ x, SCALAR* __restrict__ v,
    int C, int H, int W, int ph, int pw, int TH, int TW, int P) {{
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= P) return;
  int c = blockIdx.y;
  int tj = p % TW, ti = (p / TW) % TH, n = p / (TW * TH);
  const SCALAR* xc = x + ((long long)n * C + c) * H * W;
  int h0 = ti * {m} - ph, w0 = tj * {m} - pw;
  long long plane = (long long)C * P;
  SCALAR* out = v + (long long)c * P + p;
  {statements}
}}
"""


@functools.cache
def filter_source(m: int, r: int) -> str:
    """Kernel: u[(i*alpha + j), k, c] = (G g GT)[i, j] for the filter of (k, c)."""
    alpha, g = m + r - 1, _matrix(m, r, "G")
    loads = [f"const SCALAR g{a}_{b} = in[{a * r + b}];" for a in range(r) for b in range(r)]
    statements = _two_sided(g, loads, "ghu", _plane_stores("u", alpha))
    return f"""
extern "C" __global__ void winograd_filter(
    const SCALAR* __restrict__ w, SCALAR* __restrict__ u, int filters) {{
  int f = blockIdx.x * blockDim.x + threadIdx.x;
  if (f >= filters) return;
  const SCALAR* in = w + (long long)f * {r * r};
  long long plane = filters;
  SCALAR* out = u + f;
  {statements}
}}
"""


def filter_transform(p: ConvProblem, w: Any, m: int, r: int) -> Any:
    """U (alpha^2, G, K/g, C/g), one thread per filter (k, c)."""
    import cupy

    alpha, filters = m + r - 1, p.k * (p.c // p.groups)
    w = cupy.ascontiguousarray(w)
    u = cupy.empty((alpha * alpha, p.groups, p.k // p.groups, p.c // p.groups), dtype=w.dtype)
    launch(compiled(filter_source(m, r), "winograd_filter", w.dtype.name), (blocks(filters),),
           w, u, filters)
    return u


@functools.cache
def output_source(m: int, r: int) -> str:
    """Kernel: y[n, k, ti*m + i, tj*m + j] = (AT M A)[i, j] (+ bias[k]) for the tile p."""
    alpha, at = m + r - 1, _matrix(m, r, "AT")
    loads = [f"const SCALAR s{a}_{b} = in[{a * alpha + b}LL * plane];"
             for a in range(alpha) for b in range(alpha)]
    stores = [f"if (h0 + {i} < OH && w0 + {j} < OW) yk[(h0 + {i}) * OW + w0 + {j}] = o{i}_{j} + b;"
              for i in range(m) for j in range(m)]
    statements = _two_sided(at, loads, "suo", stores)
    return f"""
extern "C" __global__ void winograd_output(
    const SCALAR* __restrict__ mm, const SCALAR* __restrict__ bias, SCALAR* __restrict__ y,
    int K, int OH, int OW, int TH, int TW, int P, int has_bias) {{
  int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= P) return;
  int k = blockIdx.y;
  int tj = p % TW, ti = (p / TW) % TH, n = p / (TW * TH);
  long long plane = (long long)K * P;
  const SCALAR* in = mm + (long long)k * P + p;
  SCALAR* yk = y + ((long long)n * K + k) * OH * OW;
  const SCALAR b = has_bias ? bias[k] : (SCALAR)0;
  int h0 = ti * {m}, w0 = tj * {m};
  {statements}
}}
"""


def winograd_cuda(p: ConvProblem, x: Any, w: Any, bias: Any | None, m: int, r: int,
                  prepared: Any | None = None) -> Any:
    import cupy

    alpha = m + r - 1
    _, _, th, tw = winograd._tiles(p, alpha)
    tiles, dtype = p.n * th * tw, x.dtype.name
    x = cupy.ascontiguousarray(x)
    u = filter_transform(p, w, m, r) if prepared is None else prepared
    v = cupy.empty((alpha * alpha, p.c, tiles), dtype=x.dtype)
    launch(compiled(input_source(m, r), "winograd_input", dtype), (blocks(tiles), p.c),
           x, v, p.c, p.h, p.w, *p.padding, th, tw, tiles)
    products = cupy.matmul(u, v.reshape(alpha * alpha, p.groups, p.c // p.groups, tiles))
    del v
    y = cupy.empty(p.output_shape, dtype=x.dtype)
    if bias is not None:  # the kernel reads it as a contiguous array of x's dtype
        bias = cupy.ascontiguousarray(bias, dtype=x.dtype)
    launch(compiled(output_source(m, r), "winograd_output", dtype), (blocks(tiles), p.k),
           products, x if bias is None else bias, y, p.k, p.out_h, p.out_w, th, tw, tiles,
           int(bias is not None))
    return y


def workspace_bytes(p: ConvProblem, alpha: int) -> int:
    """Peak allocator memory above the call's start, less the output: the transformed filters,
    tiles and products during the GEMM. The tiles are freed before the output is made, so the
    output takes memory already counted in that peak (the pool's bytes in use)."""
    _, _, th, tw = winograd._tiles(p, alpha)
    tiles, a2 = p.n * th * tw, alpha * alpha
    filters = a2 * p.k * (p.c // p.groups)
    output = p.n * p.k * p.out_h * p.out_w
    peak = filters + a2 * tiles * max(p.c + p.k, p.k) + max(0, output - a2 * p.c * tiles)
    return (peak - output) * p.itemsize


@functools.cache
def _nonzeros(m: int, r: int, name: str) -> int:
    return sum(v != 0 for row in _matrix(m, r, name) for v in row)


def cost_s(p: ConvProblem, m: int, r: int) -> float:
    """Three kernels around the channel GEMMs, each bound by its traffic or by its straight-line
    sums (two per nonzero of the pinned matrix, per column of a side): the filter transform
    (writes alpha^2 * K * C/g), the input transform (reads x, writes alpha^2 * C * tiles), the
    alpha^2 * groups GEMMs (K/g x C/g) @ (C/g x tiles), the output transform (reads alpha^2 *
    K * tiles, writes the output); and the host's array calls."""
    alpha, item = m + r - 1, p.itemsize
    _, _, th, tw = winograd._tiles(p, alpha)
    tiles, a2, kg, cg = p.n * th * tw, alpha * alpha, p.k // p.groups, p.c // p.groups
    sides = {name: 2 * _nonzeros(m, r, name) for name in ("G", "BT", "AT")}
    filters = cost.kernel_s(sides["G"] * (r + alpha) * p.k * cg, (r * r + a2) * p.k * cg * item)
    inputs = cost.kernel_s(sides["BT"] * 2 * alpha * p.c * tiles,
                           (p.n * p.c * p.h * p.w + a2 * p.c * tiles) * item)
    gemm = cost.device_gemm_s(kg, tiles, cg, item, batch=a2 * p.groups)
    outputs = cost.kernel_s(sides["AT"] * (alpha + m) * p.k * tiles,
                            (a2 * p.k * tiles + p.n * p.k * p.out_h * p.out_w) * item)
    return filters + inputs + gemm + outputs + cost.calls_s(9)


def _register(name: str, m: int, r: int) -> None:
    alpha = m + r - 1

    def square(p: ConvProblem) -> str | None:
        if (p.r, p.s) != (r, r):
            return f"{name} is F({m},{r}) for {r}x{r} kernels only, got {p.r}x{p.s}"
        return None

    register(
        "conv2d", name, backends=("cupy",), requires=("cupy",),
        checks=(winograd._checks(name, m, r)[0], square, channels_fit),
        workspace_bytes=functools.partial(workspace_bytes, alpha=alpha),
        cost_s=functools.partial(cost_s, m=m, r=r),
        prepare=lambda p, x, w, bias: filter_transform(p, w, m, r),
        tolerance_floor_eps=winograd.TOLERANCE_FLOOR_EPS[alpha], error_spreads=True,
        summary=f"CUDA: F({m}x{m},{r}x{r}) with fused tile transforms ({THREADS}-thread blocks) "
        "around cuBLAS's batched channel GEMMs",
    )(functools.partial(winograd_cuda, m=m, r=r))


for _name, (_m, _r) in FAMILY.items():
    _register(_name, _m, _r)
