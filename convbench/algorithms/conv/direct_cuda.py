"""Direct convolution as a CUDA kernel (cupy.RawKernel): one thread per output element, the
textbook loops over C/g, R and S inside it. Stride, padding, dilation, groups and bias."""

from __future__ import annotations

import math
from typing import Any

from convbench.algorithms import cost
from convbench.algorithms.conv._cuda import blocks, compiled, launch
from convbench.problems import ConvProblem
from convbench.algorithms.registry import register

_SOURCE = r"""
extern "C" __global__ void conv2d_direct(
    const SCALAR* x, const SCALAR* w, const SCALAR* bias, SCALAR* y,
    int N, int C, int H, int W, int K, int R, int S, int OH, int OW,
    int sh, int sw, int ph, int pw, int dh, int dw, int G, int has_bias) {
  long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= (long long)N * K * OH * OW) return;
  int ow = idx % OW, oh = (idx / OW) % OH;
  int k = (idx / ((long long)OW * OH)) % K;
  int n = idx / ((long long)OW * OH * K);
  int cg = C / G, g = k / (K / G);
  SCALAR acc = has_bias ? bias[k] : (SCALAR)0;
  for (int c = 0; c < cg; ++c) {
    const SCALAR* xc = x + ((long long)n * C + g * cg + c) * H * W;
    const SCALAR* wc = w + ((long long)k * cg + c) * R * S;
    for (int r = 0; r < R; ++r) {
      int ih = oh * sh - ph + r * dh;
      if (ih < 0 || ih >= H) continue;
      for (int s = 0; s < S; ++s) {
        int iw = ow * sw - pw + s * dw;
        if (iw >= 0 && iw < W) acc += xc[ih * W + iw] * wc[r * S + s];
      }
    }
  }
  y[idx] = acc;
}
"""


# A row of the kernel's loop (its bounds check and address arithmetic, per c and r) takes about
# as long as ten of its multiply-adds: fitted to H100 timings of 1x1, 3x3 and 7x7 layers.
ROW_STEPS = 10


def cost_s(p: ConvProblem) -> float:
    """One kernel: per output, C/g * R rows of S multiply-adds in a thread's loop over global
    memory; x and w read, y written; and the host's array calls."""
    outputs = p.n * p.k * p.out_h * p.out_w
    steps = p.macs + ROW_STEPS * outputs * (p.c // p.groups) * p.r
    nbytes = (p.n * p.c * p.h * p.w + p.k * p.reduction_length + outputs) * p.itemsize
    return cost.kernel_s(2 * steps, nbytes, looped=True) + cost.calls_s(4)


@register(
    "conv2d", "direct_cuda", backends=("cupy",), requires=("cupy",), exact=True,
    workspace_bytes=lambda p: 0, cost_s=cost_s,
    summary="CUDA RawKernel: one thread per output element, loops over C/g, R, S",
)
def conv2d_direct_cuda(p: ConvProblem, x: Any, w: Any, bias: Any | None) -> Any:
    import cupy

    x, w = cupy.ascontiguousarray(x), cupy.ascontiguousarray(w)
    y = cupy.empty(p.output_shape, dtype=x.dtype)
    launch(compiled(_SOURCE, "conv2d_direct", x.dtype.name), (blocks(math.prod(p.output_shape)),),
           x, w, x if bias is None else bias, y, *p.input_shape[:4], p.k, p.r, p.s, p.out_h,
           p.out_w, *p.stride, *p.padding, *p.dilation, p.groups, int(bias is not None))
    return y
