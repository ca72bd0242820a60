"""Compact problem descriptors in the style of oneDNN's benchdnn, e.g. ``n8c64h56k64r3p1``.

A descriptor is a run of ``<key><int>`` tokens. Keys (the NCHW/KCRS letters):

========  =====================================  =========================
key       meaning                                default when omitted
========  =====================================  =========================
n         batch                                  1
c         input channels                         required
h, w      input height, width                    w = h
k         output channels (conv only)            required for conv
r, s      kernel (window) height, width          s = r
st        stride, both axes (or sh, sw)          1 (conv), the window (pool)
p         padding, both axes (or ph, pw)         0
d         dilation, both axes (or dh, dw)        1 = dense (torch's convention)
g         groups (conv only)                     1
b         bias, 0 or 1 (conv only)               0
f         float width, 32 or 64                  32
cm        ceil mode, 0 or 1 (pool only)          0
ci        count_include_pad, 0 or 1 (avg pool)   1
op        output_padding (or oph, opw; deconv)   0
========  =====================================  =========================

Prefixes name what is not a forward conv2d, in this order:

============================  ===============================================================
prefix                        meaning
============================  ===============================================================
``bwd_data_``                 direction: the input's gradient (benchdnn's BWD_D); conv, pool
``bwd_weight_``               direction: the weights' (and bias') gradient (BWD_W); conv only
``fwd_``                      direction: the forward pass, the default (never written)
``maxpool_``, ``avgpool_``    pooling: ``maxpool_n1c64h112r3st2p1``
``deconv_``                   transposed convolution: ``deconv_n1c64h16k32r4st2p1``
============================  ===============================================================

So ``bwd_weight_n8c64h56k64r3p1`` is a ResNet-50 layer's weight gradient and
``bwd_data_maxpool_n1c64h112r3st2p1`` a max pooling's backward pass.
Formatting writes the canonical form, so ``parse(str(p)) == p`` for every problem.
"""

from __future__ import annotations

import re

from convbench.problems.conv import ConvProblem
from convbench.problems.family import Problem
from convbench.problems.grammar import DECONV_PREFIX, POOL_PREFIXES, format_descriptor
from convbench.problems.pool import PoolProblem
from convbench.problems.transpose import ConvTransposeProblem

_TOKEN = re.compile(r"([a-z]+)(\d+)")
_CONV_KEYS = {"n", "c", "h", "w", "k", "r", "s", "st", "sh", "sw", "p", "ph", "pw", "d", "dh",
              "dw", "g", "b", "f"}
_POOL_KEYS = _CONV_KEYS - {"k", "g", "b"} | {"cm", "ci"}
_DECONV_KEYS = _CONV_KEYS | {"op", "oph", "opw"}
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


def _pair(t: dict[str, int], keys: tuple[str, str, str], default: tuple[int, int]) -> tuple:
    """A (h, w) pair from `both` or `h`/`w` keys; an axis not given takes its default."""
    both, h, w = keys
    if both in t and (h in t or w in t):
        raise ValueError(f"give either {both!r} or {h!r}/{w!r}, not both")
    if both in t:
        return (t[both], t[both])
    return (t.get(h, default[0]), t.get(w, default[1]))


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
    for prefix, kind in POOL_PREFIXES.items():
        if rest.startswith(prefix):
            return _parse_pool(text, rest[len(prefix):], kind, direction)
    if rest.startswith(DECONV_PREFIX):
        if direction != "fwd":
            raise ValueError(f"descriptor {text!r}: a transposed convolution has only the fwd "
                             f"direction, got {direction}")
        return _parse_deconv(text, rest[len(DECONV_PREFIX):])
    return _parse_conv(text, rest, direction)


def _common(text: str, t: dict[str, int]) -> dict:
    return dict(
        n=t.get("n", 1), c=t["c"], h=t["h"], w=t.get("w", t["h"]), r=t["r"], s=t.get("s", t["r"]),
        padding=_pair(t, ("p", "ph", "pw"), (0, 0)), dilation=_pair(t, ("d", "dh", "dw"), (1, 1)),
        dtype=_dtype(text, t),
    )


def _parse_conv(text: str, body: str, direction: str) -> ConvProblem:
    t = _tokens(text, body, _CONV_KEYS)
    _required(text, t, "c", "h", "k", "r")
    return ConvProblem(
        k=t["k"], stride=_pair(t, ("st", "sh", "sw"), (1, 1)), groups=t.get("g", 1),
        bias=_flag(text, t, "b", 0), direction=direction, **_common(text, t),
    )


def _parse_deconv(text: str, body: str) -> ConvTransposeProblem:
    t = _tokens(text, body, _DECONV_KEYS)
    _required(text, t, "c", "h", "k", "r")
    return ConvTransposeProblem(
        k=t["k"], stride=_pair(t, ("st", "sh", "sw"), (1, 1)), groups=t.get("g", 1),
        output_padding=_pair(t, ("op", "oph", "opw"), (0, 0)), bias=_flag(text, t, "b", 0),
        **_common(text, t),
    )


def _parse_pool(text: str, body: str, kind: str, direction: str) -> PoolProblem:
    t = _tokens(text, body, _POOL_KEYS)
    _required(text, t, "c", "h", "r")
    return PoolProblem(
        kind=kind, stride=_pair(t, ("st", "sh", "sw"), (t["r"], t.get("s", t["r"]))),
        ceil_mode=_flag(text, t, "cm", 0), count_include_pad=_flag(text, t, "ci", 1),
        direction=direction, **_common(text, t),
    )


__all__ = ["format_descriptor", "parse"]
