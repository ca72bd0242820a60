"""Compact problem descriptors in the style of oneDNN's benchdnn, e.g. ``n8c64h56k64r3p1``.

A descriptor is a run of ``<key><int>`` tokens. Keys (the NCHW/KCRS letters):

==============  =====================================  ==========================================
key             meaning                                default when omitted
==============  =====================================  ==========================================
n               batch                                  1
c               input channels                         required
id, h, w        input depth, height, width             w = h; no id: 2-D; w alone: 1-D
k               output channels (conv only)            required for conv
kd, r, s        kernel (window) depth, height, width   s = r, kd = r (the square/cube rule)
st              stride, every axis (or sd, sh, sw)     1 (conv), the window (pool)
p               padding before, every axis (pd/ph/pw)  0
pe              padding after, every axis (ped/peh/    the padding before (symmetric)
                pew): TF's SAME, ONNX's pads
d               dilation, every axis (or dd, dh, dw)   1 = dense (torch's convention)
g               groups (conv only)                     1
b               bias, 0 or 1 (conv only)               0
f               float width, 32 or 64                  32
cm              ceil mode, 0 or 1 (pool only)          0
ci              count_include_pad, 0 or 1 (avg pool)   1
dv              divisor_override (avg pool)            none
op              output_padding (opd/oph/opw; deconv)   0
==============  =====================================  ==========================================

The rank follows from the sizes given: ``h`` makes a 2-D problem, ``id`` with ``h`` a 3-D one,
and ``w`` without ``h`` a 1-D one (its kernel is ``s``, its per-axis keys end in ``w``).

Prefixes name what is not a forward 2-D convolution in channels-first memory, in this order:

============================  ===============================================================
prefix                        meaning
============================  ===============================================================
``bwd_data_``                 direction: the input's gradient (benchdnn's BWD_D); conv, pool
``bwd_weight_``               direction: the weights' (and bias') gradient (BWD_W); conv only
``fwd_``                      direction: the forward pass, the default (never written)
``nhwc_``                     layout: channels last in memory (NWC, NHWC, NDHWC by rank)
``maxpool_``, ``avgpool_``    pooling: ``maxpool_n1c64h112r3st2p1``
``deconv_``                   transposed convolution: ``deconv_n1c64h16k32r4st2p1``
============================  ===============================================================

Examples:

- ``bwd_weight_n8c64h56k64r3p1``: a ResNet-50 layer's weight gradient;
- ``bwd_data_maxpool_n1c64h112r3st2p1``: a max pooling's backward pass;
- ``n1c32h224k64r3st2p0pe1``: TensorFlow's SAME at stride 2 on 224x224 (out = ceil(224/2) =
  112; the odd pixel of padding after: 0 rows on top, 1 at the bottom);
- ``n4c16w1000k32s3d4p4``: a 1-D dilated convolution (WaveNet/TCN-style), 'same' length;
- ``n1c3id16h112k64r3p1``: a 3-D (C3D) convolution over 16 frames of 112x112, 3x3x3 kernel;
- ``nhwc_n8c64h56k64r3p1``: the ResNet-50 layer in channels-last memory.

Formatting writes the canonical form, so ``parse(str(p)) == p`` for every problem.
"""

from __future__ import annotations

import re

from convbench.problems.conv import ConvProblem
from convbench.problems.family import Problem
from convbench.problems.grammar import (
    DECONV_PREFIX,
    FIELD_KEYS,
    LAYOUT_PREFIX,
    POOL_PREFIXES,
    axis_keys,
    format_descriptor,
)
from convbench.problems.pool import PoolProblem
from convbench.problems.transpose import ConvTransposeProblem

_TOKEN = re.compile(r"([a-z]+)(\d+)")
_AXIS_FIELDS = ("stride", "padding", "padding_end", "dilation")
_SPATIAL_KEYS = ({"id", "h", "w", "kd", "r", "s", "st", "p", "pe", "d"}
                 | {key for f in _AXIS_FIELDS for key in axis_keys(f, 3)})
_CONV_KEYS = {"n", "c", "k", "g", "b", "f"} | _SPATIAL_KEYS
_POOL_KEYS = _CONV_KEYS - {"k", "g", "b"} | {"cm", "ci", "dv"}
_DECONV_KEYS = _CONV_KEYS | {"op"} | set(axis_keys("output_padding", 3))
_DIRECTION_PREFIXES = {"bwd_data_": "bwd_data", "bwd_weight_": "bwd_weight", "fwd_": "fwd"}


def _tokens(text: str, body: str, allowed: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    position = 0
    for match in _TOKEN.finditer(body):
        if match.start() != position:
            break
        key, value = match.group(1), int(match.group(2))
        if key not in allowed:
            raise ValueError(f"descriptor {text!r}: unknown key {key!r} (known: {sorted(allowed)})")
        if key in found:
            raise ValueError(f"descriptor {text!r}: key {key!r} given twice")
        found[key] = value
        position = match.end()
    if position != len(body) or not body:
        raise ValueError(f"descriptor {text!r}: cannot read {body[position:]!r}; expected <key><int>")
    return found


def _rank(text: str, t: dict[str, int]) -> int:
    """3 with a depth (id), 2 with a height, 1 with a width alone; the keys must agree."""
    depth_keys = {"id", "kd"} | {axis_keys(f, 3)[0] for f in (*_AXIS_FIELDS, "output_padding")}
    if depth_keys & t.keys():
        _required(text, t, "id", "h")
        return 3
    if "h" in t:
        return 2
    if "w" not in t:
        raise ValueError(f"descriptor {text!r}: missing h (or w alone for a 1-D problem)")
    two_d = {"r"} | {axis_keys(f, 2)[0] for f in (*_AXIS_FIELDS, "output_padding")}
    if two_d & t.keys():
        raise ValueError(f"descriptor {text!r}: a 1-D problem (w without h) takes no "
                         f"{', '.join(sorted(two_d & t.keys()))}")
    return 1


def _axes(t: dict[str, int], field: str, rank: int, default: tuple[int, ...]) -> tuple:
    """One int per axis from the all-axes key or the per-axis keys; an axis not given takes its
    default."""
    both, keys = FIELD_KEYS[field], axis_keys(field, rank)
    if both in t and any(k in t for k in keys):
        raise ValueError(f"give either {both!r} or {'/'.join(map(repr, keys))}, not both")
    if both in t:
        return (t[both],) * rank
    return tuple(t.get(key, d) for key, d in zip(keys, default, strict=True))


def _sizes(text: str, t: dict[str, int], rank: int) -> tuple[tuple, tuple]:
    if rank == 1:
        _required(text, t, "w", "s")
        return (t["w"],), (t["s"],)
    _required(text, t, "h", "r")
    size = (t["h"], t.get("w", t["h"]))
    kernel = (t["r"], t.get("s", t["r"]))
    if rank == 3:
        size, kernel = (t["id"], *size), (t.get("kd", t["r"]), *kernel)
    return size, kernel


def _required(text: str, t: dict[str, int], *keys: str) -> None:
    missing = [key for key in keys if key not in t]
    if missing:
        raise ValueError(f"descriptor {text!r}: missing {', '.join(missing)}")


def _dtype(text: str, t: dict[str, int]) -> str:
    bits = t.get("f", 32)
    if bits not in (32, 64):
        raise ValueError(f"descriptor {text!r}: f must be 32 or 64, got {bits}")
    return f"float{bits}"


def _flag(text: str, t: dict[str, int], key: str, default: int) -> bool:
    value = t.get(key, default)
    if value not in (0, 1):
        raise ValueError(f"descriptor {text!r}: {key} must be 0 or 1, got {value}")
    return bool(value)


def _split_direction(text: str) -> tuple[str, str]:
    """(direction, the rest) of a descriptor with or without its direction prefix."""
    for prefix, direction in _DIRECTION_PREFIXES.items():
        if text.startswith(prefix):
            return direction, text[len(prefix):]
    return "fwd", text


def parse(text: str) -> Problem:
    """Parse a descriptor into a ConvProblem, PoolProblem or ConvTransposeProblem (which then
    validates itself); every error names the descriptor."""
    try:
        return _parse(text.strip())
    except ValueError as error:
        if str(error).startswith("descriptor "):
            raise
        raise ValueError(f"descriptor {text.strip()!r}: {error}") from None


def _parse(text: str) -> Problem:
    direction, rest = _split_direction(text)
    layout = "nchw"
    if rest.startswith(LAYOUT_PREFIX):
        layout, rest = "nhwc", rest[len(LAYOUT_PREFIX):]
    for prefix, kind in POOL_PREFIXES.items():
        if rest.startswith(prefix):
            return _parse_pool(text, rest[len(prefix):], kind, direction, layout)
    if rest.startswith(DECONV_PREFIX):
        if direction != "fwd":
            raise ValueError(f"descriptor {text!r}: a transposed convolution has only the fwd "
                             f"direction, got {direction}")
        return _parse_deconv(text, rest[len(DECONV_PREFIX):], layout)
    return _parse_conv(text, rest, direction, layout)


def _common(text: str, t: dict[str, int], layout: str, stride_default: str = "one") -> dict:
    rank = _rank(text, t)
    size, kernel = _sizes(text, t, rank)
    padding = _axes(t, "padding", rank, (0,) * rank)
    return dict(
        n=t.get("n", 1), c=t["c"], size=size, kernel=kernel,
        stride=_axes(t, "stride", rank, kernel if stride_default == "window" else (1,) * rank),
        padding=padding, padding_end=_axes(t, "padding_end", rank, padding),
        dilation=_axes(t, "dilation", rank, (1,) * rank), dtype=_dtype(text, t), layout=layout,
    )


def _parse_conv(text: str, body: str, direction: str, layout: str) -> ConvProblem:
    t = _tokens(text, body, _CONV_KEYS)
    _required(text, t, "c")
    common = _common(text, t, layout)
    _required(text, t, "k")
    return ConvProblem(k=t["k"], groups=t.get("g", 1), bias=_flag(text, t, "b", 0),
                       direction=direction, **common)


def _parse_deconv(text: str, body: str, layout: str) -> ConvTransposeProblem:
    t = _tokens(text, body, _DECONV_KEYS)
    _required(text, t, "c")
    common = _common(text, t, layout)
    _required(text, t, "k")
    rank = len(common["size"])
    return ConvTransposeProblem(
        k=t["k"], groups=t.get("g", 1), bias=_flag(text, t, "b", 0),
        output_padding=_axes(t, "output_padding", rank, (0,) * rank), **common,
    )


def _parse_pool(text: str, body: str, kind: str, direction: str, layout: str) -> PoolProblem:
    t = _tokens(text, body, _POOL_KEYS)
    _required(text, t, "c")
    return PoolProblem(
        kind, ceil_mode=_flag(text, t, "cm", 0), count_include_pad=_flag(text, t, "ci", 1),
        divisor_override=t.get("dv"), direction=direction,
        **_common(text, t, layout, "window"),
    )


__all__ = ["format_descriptor", "parse"]
