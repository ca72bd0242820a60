"""Formatting a problem as its canonical descriptor (the grammar is in convbench.problems.descriptor).

It reads a problem's fields and its `family` ("conv", "deconv" or "pool") and imports no problem
class, so that every problem can call it from __str__ while parsing imports the classes: one way.
"""

from __future__ import annotations

from typing import Any

POOL_PREFIXES = {"maxpool_": "max", "avgpool_": "avg"}
DECONV_PREFIX = "deconv_"
LAYOUT_PREFIX = "nhwc_"

# The per-axis key of each spatial field, by rank (the all-axes key is the tuple's first item).
AXIS_SUFFIXES: dict[int, tuple[str, ...]] = {1: ("w",), 2: ("h", "w"), 3: ("d", "h", "w")}
FIELD_KEYS: dict[str, str] = {"stride": "st", "padding": "p", "padding_end": "pe",
                              "dilation": "d", "output_padding": "op"}
AXIS_PREFIXES: dict[str, str] = {"stride": "s", "padding": "p", "padding_end": "pe",
                                 "dilation": "d", "output_padding": "op"}


def axis_keys(field: str, rank: int) -> tuple[str, ...]:
    """The per-axis keys of a field: sh, sw for a 2-D stride; sd, sh, sw in 3-D; sw in 1-D."""
    return tuple(AXIS_PREFIXES[field] + suffix for suffix in AXIS_SUFFIXES[rank])


def _fmt_axes(field: str, values: tuple[int, ...], default: tuple[int, ...] | None) -> str:
    if values == default:
        return ""
    if len(set(values)) == 1:
        return f"{FIELD_KEYS[field]}{values[0]}"
    return "".join(f"{key}{v}" for key, v in zip(axis_keys(field, len(values)), values,
                                                  strict=True))


def _fmt_sizes(p: Any) -> list[str]:
    """Input sizes and kernel: h (w if it differs) in 2-D; id, h, w in 3-D; w alone in 1-D.
    The kernel the same way: r (s); kd, r (s); s."""
    if p.rank == 1:
        return [f"n{p.n}c{p.c}w{p.size[0]}", _fmt_k(p), f"s{p.kernel[0]}"]
    *depth, h, w = p.size
    *kd, r, s = p.kernel
    size = (f"id{depth[0]}" if depth else "") + f"h{h}" + (f"w{w}" if w != h else "")
    kernel = (f"kd{kd[0]}" if kd and kd[0] != r else "") + f"r{r}" + (f"s{s}" if s != r else "")
    return [f"n{p.n}c{p.c}{size}", _fmt_k(p), kernel]


def _fmt_k(p: Any) -> str:
    return f"k{p.k}" if p.family in ("conv", "deconv") else ""


def format_descriptor(p: Any) -> str:
    """The canonical descriptor: every non-default field, in a fixed order, after the direction,
    layout and op prefixes."""
    parts = _fmt_sizes(p)
    parts.append(_fmt_axes("stride", p.stride, p.kernel if p.family == "pool" else
                           (1,) * p.rank))
    parts.append(_fmt_axes("padding", p.padding, (0,) * p.rank))
    parts.append(_fmt_axes("padding_end", p.padding_after, p.padding))
    if p.family == "deconv":
        parts.append(_fmt_axes("output_padding", p.output_padding, (0,) * p.rank))
    parts.append(_fmt_axes("dilation", p.dilation, (1,) * p.rank))
    if p.family == "pool":
        parts += ["cm1" if p.ceil_mode else "", "" if p.count_include_pad else "ci0",
                  f"dv{p.divisor_override}" if p.divisor_override is not None else ""]
    else:
        parts += [f"g{p.groups}" if p.groups != 1 else "", "b1" if p.bias else ""]
    parts.append("f64" if p.dtype == "float64" else "")
    body = "".join(parts)
    if p.family == "pool":
        body = f"{p.kind}pool_{body}"
    elif p.family == "deconv":
        body = f"{DECONV_PREFIX}{body}"
    if p.layout == "nhwc":
        body = f"{LAYOUT_PREFIX}{body}"
    return body if p.direction == "fwd" else f"{p.direction}_{body}"
