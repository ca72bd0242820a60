"""The array shim: the one module the algorithms use that tells numpy, cupy and torch apart.

Algorithms take their namespace from their inputs (``xp = namespace(x, w)``, array-api-compat)
and write array-API code. What the standard lacks lives here: strided views, writing into an
existing array, FFTs with numpy's fast path (scipy.fft), contiguity. Every function has a
generic path (used for array_api_strict in the tests) and takes a library's own call where one
exists. Nothing here imports a backend; the namespace of an array that turns up is used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_cupy_array, is_numpy_array
from array_api_compat import is_torch_array

from convbench.backends import gemm

Array = Any


# The namespace of numpy's, CuPy's and torch's arrays depends on the array type alone; it is asked
# on every call of every algorithm (several times on tiny problems that take tens of
# microseconds), so it is looked up by type once array_namespace has answered for that type.
_BY_TYPE: dict[type, Any] = {}


def namespace(*arrays: Array) -> Any:
    """The array-API namespace of the arrays (None entries are ignored)."""
    if len(arrays) <= 2 and arrays and arrays[0] is not None and (
            len(arrays) == 1 or arrays[1] is None or type(arrays[1]) is type(arrays[0])):
        xp = _BY_TYPE.get(type(arrays[0]))  # the common calls, one or two arrays of one kind,
        if xp is not None:  # without the set below (every call of every algorithm asks)
            return xp
    kinds = {type(a) for a in arrays if a is not None}
    if len(kinds) == 1:
        xp = _BY_TYPE.get(next(iter(kinds)))
        if xp is not None:
            return xp
    xp = array_namespace(*(a for a in arrays if a is not None))
    if len(kinds) == 1:
        first = next(a for a in arrays if a is not None)
        if is_numpy_array(first) or is_cupy_array(first) or is_torch_array(first):
            _BY_TYPE[type(first)] = xp
    return xp


def strided(x: Array, shape: tuple[int, ...], strides: tuple[int, ...]) -> Array:
    """A view of contiguous `x` with `strides` counted in elements (numpy's as_strided, torch's
    Tensor.as_strided); elsewhere the same elements gathered by index."""
    if is_numpy_array(x):
        import numpy

        return numpy.lib.stride_tricks.as_strided(
            x, shape=shape, strides=tuple(s * x.itemsize for s in strides), writeable=False)
    if is_cupy_array(x):
        import cupy

        return cupy.lib.stride_tricks.as_strided(
            x, shape=shape, strides=tuple(s * x.itemsize for s in strides))
    if is_torch_array(x):
        return x.as_strided(shape, strides)
    xp = namespace(x)
    flat_index = xp.zeros(shape, dtype=xp.int64, device=device(x))
    for axis, (size, stride) in enumerate(zip(shape, strides)):
        steps = xp.reshape(xp.arange(size, device=device(x)) * stride,
                           tuple(size if i == axis else 1 for i in range(len(shape))))
        flat_index = flat_index + steps
    taken = xp.take(xp.reshape(x, (-1,)), xp.reshape(flat_index, (-1,)))
    return xp.reshape(taken, shape)


def array_strides(x: Array) -> tuple[int, ...]:
    """Strides of `x` in elements (a C-contiguous layout where the library has none)."""
    if is_numpy_array(x) or is_cupy_array(x):
        return tuple(s // x.itemsize for s in x.strides)
    if is_torch_array(x):
        return tuple(x.stride())
    return tuple(math.prod(x.shape[i + 1:]) for i in range(len(x.shape)))


def contiguous(x: Array) -> Array:
    """A C-contiguous copy of `x` when it is not one (a no-op without layouts)."""
    if is_numpy_array(x) or is_cupy_array(x):
        return __import__("cupy" if is_cupy_array(x) else "numpy").ascontiguousarray(x)
    if is_torch_array(x):
        return x.contiguous()
    return x


def reshape_copy(x: Array, shape: tuple[int, ...], out: Array) -> Array:
    """xp.reshape(x, shape) for a non-contiguous `x`, written into the existing buffer `out`
    (of `shape`) where the library has views; elsewhere a new array."""
    if is_numpy_array(out) or is_cupy_array(out):
        out.reshape(x.shape)[...] = x
        return out
    if is_torch_array(out):
        out.view(x.shape).copy_(x)
        return out
    return namespace(x).reshape(x, shape)


def matmul(a: Array, b: Array) -> Array:
    """a @ b: numpy arrays' by the GEMM engine (convbench.backends.gemm), others' by their
    library."""
    if type(a) is np.ndarray and type(b) is np.ndarray:
        return gemm.matmul(a, b)
    return a @ b


def matmul_into(a: Array, b: Array, out: Array) -> Array:
    """out = a @ b in an existing buffer (numpy by the GEMM engine, cupy, torch); generic: a
    new array."""
    if type(out) is np.ndarray or is_numpy_array(out):  # the type first: tiny calls ask it
        return gemm.matmul(a, b, out=out)
    if is_cupy_array(out):
        return __import__("cupy").matmul(a, b, out=out)
    if is_torch_array(out):
        return __import__("torch").matmul(a, b, out=out)
    return a @ b


def _scipy_fft() -> Any:
    import scipy.fft  # imported on first use: `import convbench` stays light

    return scipy.fft


def rfftn(x: Array, shape: tuple[int, ...], axes: tuple[int, ...] | None = None) -> Array:
    """Real FFT over the last len(shape) axes at `shape` (zero-extended or cut to it); numpy's
    through scipy.fft (workers, in place), which the harness gives the run's thread count.
    `axes` (the last len(shape), precomputed) spares a per-call cost on tiny problems."""
    axes = axes or tuple(range(-len(shape), 0))
    if is_numpy_array(x):
        sfft = _scipy_fft()
        return sfft.rfftn(x, s=shape, axes=axes, overwrite_x=True, workers=sfft.get_workers())
    return namespace(x).fft.rfftn(x, s=shape, axes=axes)


def irfftn(x: Array, shape: tuple[int, ...], axes: tuple[int, ...] | None = None) -> Array:
    """The inverse of rfftn: real output of `shape` over the last len(shape) axes."""
    axes = axes or tuple(range(-len(shape), 0))
    if is_numpy_array(x):
        sfft = _scipy_fft()
        return sfft.irfftn(x, s=shape, axes=axes, overwrite_x=True, workers=sfft.get_workers())
    return namespace(x).fft.irfftn(x, s=shape, axes=axes)


def rfft2(x: Array, shape: tuple[int, int]) -> Array:
    """Real 2-D FFT over the last two axes at `shape` (rfftn of two axes)."""
    return rfftn(x, shape)


def irfft2(x: Array, shape: tuple[int, int]) -> Array:
    return irfftn(x, shape)


def device_key(x: Array) -> Any:
    """A cheap hashable name of `x`'s device, for caches of per-device constants (CuPy's
    Device objects do not hash)."""
    if is_numpy_array(x):
        return "cpu"
    if is_cupy_array(x):
        return ("cupy", x.device.id)
    if is_torch_array(x):
        return x.device
    return str(device(x))


CPU_CHUNK_BYTES = 1 << 19
GPU_CHUNK_BYTES = 1 << 30


def cache_bytes(x: Array) -> int:
    """How many bytes a blocked loop over `x` should keep in each working buffer: a share of a
    CPU core's L2; on a GPU, where each block costs kernel launches and the host's time to
    issue them, as much as one block can reasonably take (one block for most problems)."""
    if is_cupy_array(x) or (is_torch_array(x) and x.device.type == "cuda"):
        return GPU_CHUNK_BYTES
    return CPU_CHUNK_BYTES


def constant(values: Any, like: Array) -> Array:
    """A small constant matrix (numpy data) on `like`'s library, device and dtype."""
    xp = namespace(like)
    return xp.asarray(values, dtype=like.dtype, device=device(like))


def matmul_into_part(a: Array, b: Array, dst: Array, index: tuple, shape: tuple[int, ...]) -> None:
    """dst[index] = a @ b, where a @ b has `shape` and dst[index] holds the same elements in
    another shape: numpy, cupy and torch write the product straight into that view of `dst` (no
    temporary; dst[index] must reshape to `shape` without a copy); elsewhere it is computed and
    assigned."""
    part = dst[index]
    if is_cupy_array(dst) and a.ndim < b.ndim:  # CuPy runs a broadcast operand as cuBLAS's
        import cupy  # pointer-array batch; a real batch of copies takes the strided one

        a = cupy.ascontiguousarray(cupy.broadcast_to(a, (*b.shape[:-2], *a.shape[-2:])))
    if is_numpy_array(dst) or is_cupy_array(dst):
        view = part.view()
        view.shape = shape  # raises rather than copy if the view cannot take the shape
        if is_cupy_array(dst):
            __import__("cupy").matmul(a, b, out=view)
        else:
            gemm.matmul(a, b, out=view)
        return
    if is_torch_array(dst):
        __import__("torch").matmul(a, b, out=part.view(shape))
        return
    dst[index] = namespace(dst).reshape(a @ b, part.shape)


def pad_constant(x: Array, widths: tuple[tuple[int, int], ...], value: float = 0.0) -> Array:
    """`x` with widths[axis] = (before, after) elements of `value` added on each axis (numpy's
    np.pad, constant mode): the library's own pad where there is one; elsewhere a filled array
    with `x` written into its middle."""
    if is_numpy_array(x) or is_cupy_array(x):
        library = __import__("cupy" if is_cupy_array(x) else "numpy")
        return library.pad(x, widths, constant_values=value)
    if is_torch_array(x):  # torch's pad lists (before, after) from the last axis backwards
        sides = [width for pair in reversed(widths) for width in pair]
        return __import__("torch").nn.functional.pad(x, sides, value=value)
    shape = tuple(size + before + after for size, (before, after) in zip(x.shape, widths))
    out = namespace(x).full(shape, value, dtype=x.dtype, device=device(x))
    out[tuple(slice(before, before + size) for size, (before, _) in zip(x.shape, widths))] = x
    return out


def argmax(x: Array, axis: int, keepdims: bool = False) -> Array:
    """xp.argmax: the index of the first maximum along `axis` (the standard's tie rule, numpy's
    and torch's), through the array's own method where it has one (no wrapper: loops call this
    once per window). torch.argmax is fast along the last axis only; along another it runs many
    times slower than torch.max(dim), which keeps the same rule (torch 2.x, CPU)."""
    if is_numpy_array(x) or is_cupy_array(x):
        return x.argmax(axis=axis, keepdims=keepdims)
    if is_torch_array(x):
        if axis in (-1, x.ndim - 1):
            return x.argmax(dim=axis, keepdim=keepdims)
        return x.max(dim=axis, keepdim=keepdims).indices
    return namespace(x).argmax(x, axis=axis, keepdims=keepdims)


def add_into(x: Array, index: tuple, values: Array) -> None:
    """x[index] += values, in place: through the view where the library has views (numpy, cupy,
    torch: no write-back of the view onto itself); elsewhere read, add and write back."""
    if is_numpy_array(x) or is_cupy_array(x) or is_torch_array(x):
        view = x[index]
        view += values
        return
    x[index] = x[index] + values


def add_at(x: Array, index: tuple[Array, ...], values: Array) -> None:
    """x[index] += values, in place, for integer arrays `index` (one per axis of x, broadcast
    with `values`) that name each element at most once: numpy's and cupy's integer indexing,
    torch's index_put_. The standard has no scatter: elsewhere the values are summed into x
    through a one-hot comparison with x's flat positions (values' size times x's: small arrays)."""
    if is_numpy_array(x) or is_cupy_array(x):
        x[index] += values
        return
    if is_torch_array(x):
        x.index_put_(index, values, accumulate=True)
        return
    xp = namespace(x)
    *index, values = xp.broadcast_arrays(*index, values)
    flat = index[0]
    for axis in range(1, len(index)):  # each named element's position in x, C order
        flat = flat * x.shape[axis] + index[axis]
    hits = xp.reshape(flat, (-1, 1)) == xp.arange(math.prod(x.shape), device=device(x))
    added = xp.sum(xp.where(hits, xp.reshape(values, (-1, 1)), 0.0), axis=0)  # (x.size,)
    x[...] = x + xp.reshape(added, x.shape)


def reduce_view(x: Array, kind: str, axis: tuple[int, ...]) -> Array:
    """xp.max or xp.sum (`kind`) of a strided view over `axis`. torch reduces a small strided
    view several times slower than it copies it to one block and reduces that (torch 2.x, CPU):
    there the view is made contiguous first; numpy (its own method: loops call this once per
    window) and the rest reduce the view as it is."""
    if is_numpy_array(x):
        return x.max(axis=axis) if kind == "max" else x.sum(axis=axis)
    if is_torch_array(x):
        x = x.contiguous()
    xp = namespace(x)
    return xp.max(x, axis=axis) if kind == "max" else xp.sum(x, axis=axis)
