"""im2col on CuPy with generated kernels: one CUDA kernel writes the column matrix straight from
x, one GEMM per group (cuBLAS through cupy.matmul), one kernel writes the result into NCHW.

The generic `im2col` (im2col.py) gathers through a six-axis strided view, which CuPy copies
with a generic elementwise kernel. Here each thread takes one output position of one (image,
channel) plane and writes its R*S column entries (zero in the padding), coalesced along the
positions. The columns are (G, C/g*R*S, N*OH*OW), so each group's product is one plain GEMM;
a per-image layout would need a broadcast batched GEMM, which CuPy runs as cuBLAS's slower
pointer-array batch. A last kernel moves the (K, N, OH*OW) result into (N, K, OH*OW) and adds
the bias on the way.

A 1x1, stride-1, unpadded layer needs no columns: the input is them, image by image. Where the
weights are no larger than one image's plane per channel (K/g <= H*W), they are copied once per
image, so that the per-image GEMMs are one strided batch whose result is the NCHW output
itself; otherwise (late layers: small images, many filters) that copy would outgrow the input,
and the layer takes the column path like any other.
"""

from __future__ import annotations

from typing import Any

from convbench.algorithms import cost
from convbench.algorithms.conv._cuda import blocks, compiled, grid_fits, launch
from convbench.algorithms.windows import add_bias
from convbench.algorithms.conv.im2col import is_pointwise
from convbench.problems import ConvProblem
from convbench.algorithms.registry import register

_IM2COL = r"""
extern "C" __global__ void im2col(
    const SCALAR* __restrict__ x, SCALAR* __restrict__ cols, int N, int C, int H, int W,
    int R, int S, int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw) {
  int q = blockIdx.x * blockDim.x + threadIdx.x;  // the output position
  if (q >= OH * OW) return;
  int n = blockIdx.y, c = blockIdx.z;
  int ow = q % OW, oh = q / OW;
  const SCALAR* xc = x + ((long long)n * C + c) * H * W;
  long long positions = (long long)N * OH * OW;
  SCALAR* out = cols + (long long)c * R * S * positions + (long long)n * OH * OW + q;
  for (int r = 0; r < R; ++r) {
    int ih = oh * sh - ph + r * dh;
    for (int s = 0; s < S; ++s) {
      int iw = ow * sw - pw + s * dw;
      out[(r * S + s) * positions] =
          (ih >= 0 && ih < H && iw >= 0 && iw < W) ? xc[ih * W + iw] : (SCALAR)0;
    }
  }
}
"""

_TO_NCHW = r"""
extern "C" __global__ void to_nchw(
    const SCALAR* __restrict__ product, const SCALAR* __restrict__ bias, SCALAR* __restrict__ y,
    int N, int K, int Q, int has_bias) {
  int q = blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= Q) return;
  int k = blockIdx.y, n = blockIdx.z;
  y[((long long)n * K + k) * Q + q] =
      product[((long long)k * N + n) * Q + q] + (has_bias ? bias[k] : (SCALAR)0);
}
"""


def columns(p: ConvProblem, x: Any) -> Any:
    """The column matrix (G, C/g*R*S, N*OH*OW)."""
    import cupy

    x = cupy.ascontiguousarray(x)
    positions = p.out_h * p.out_w
    cols = cupy.empty((p.c * p.r * p.s, p.n * positions), dtype=x.dtype)
    launch(compiled(_IM2COL, "im2col", x.dtype.name), (blocks(positions), p.n, p.c),
           x, cols, p.n, p.c, p.h, p.w, p.r, p.s, p.out_h, p.out_w, *p.stride, *p.padding,
           *p.dilation)
    return cols.reshape(p.groups, -1, p.n * positions)


def per_image_weights(p: ConvProblem) -> bool:
    """A 1x1 stride-1 layer whose weights, copied once per image, stay within the input's size."""
    return is_pointwise(p) and p.k // p.groups <= p.h * p.w


def workspace_bytes(p: ConvProblem) -> int:
    """Peak allocator memory above the call's start, less the output (the pool's bytes in use):
    the column matrix beside the GEMM's result, then that result beside the output; for a 1x1
    stride-1 layer with few filters, the weights copied per image."""
    if per_image_weights(p):
        return p.n * p.k * (p.c // p.groups) * p.itemsize
    output = p.n * p.k * p.out_h * p.out_w
    columns = p.c * p.r * p.s * p.n * p.out_h * p.out_w
    return max(columns, output) * p.itemsize


def cost_s(p: ConvProblem) -> float:
    """1x1 stride 1 with few filters: the weights copied per image, then one batched GEMM;
    otherwise the gather kernel (reads x, writes C*R*S x N*OH*OW columns), one GEMM per group
    and the kernel into NCHW (reads and writes the output)."""
    g, kg, cg, item = p.groups, p.k // p.groups, p.c // p.groups, p.itemsize
    pixels = p.out_h * p.out_w
    if per_image_weights(p):
        weights = cost.kernel_s(0, 2 * p.n * p.k * cg * item)
        return weights + cost.device_gemm_s(kg, pixels, cg, item, batch=p.n * g) \
            + cost.calls_s(6)
    columns = p.c * p.r * p.s * p.n * pixels
    gather = cost.kernel_s(0, (columns + p.n * p.c * p.h * p.w) * item)
    gemm = cost.device_gemm_s(kg, p.n * pixels, cg * p.r * p.s, item, batch=g)
    return gather + gemm + cost.kernel_s(0, 2 * p.n * p.k * pixels * item) + cost.calls_s(8)


@register(
    "conv2d", "im2col_cuda", backends=("cupy",), requires=("cupy",), exact=True,
    checks=(grid_fits,), workspace_bytes=workspace_bytes, cost_s=cost_s,
    summary="CUDA: a generated gather into columns, one GEMM per group, a kernel into NCHW",
)
def conv2d_im2col_cuda(p: ConvProblem, x: Any, w: Any, bias: Any | None) -> Any:
    import cupy

    g, kg, positions = p.groups, p.k // p.groups, p.out_h * p.out_w
    if bias is not None:  # the kernel reads it as a contiguous array of x's dtype
        bias = cupy.ascontiguousarray(bias, dtype=x.dtype)
    if per_image_weights(p):
        weights = cupy.ascontiguousarray(cupy.broadcast_to(
            cupy.ascontiguousarray(w).reshape(g, kg, -1), (p.n, g, kg, p.c // g)))
        images = cupy.ascontiguousarray(x).reshape(p.n, g, p.c // g, positions)
        return add_bias(cupy.matmul(weights, images).reshape(p.output_shape), bias)
    cols = columns(p, x)
    weights = cupy.ascontiguousarray(w).reshape(g, kg, -1)
    product = weights[0] @ cols[0] if g == 1 else cupy.matmul(weights, cols)  # (K, N*OH*OW)
    del cols
    y = cupy.empty(p.output_shape, dtype=x.dtype)
    launch(compiled(_TO_NCHW, "to_nchw", x.dtype.name), (blocks(positions), p.k, p.n),
           product, product if bias is None else bias, y, p.n, p.k, positions,
           int(bias is not None))
    return y
