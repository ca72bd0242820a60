"""Formatting a problem as its canonical descriptor (the grammar is in convbench.problems.descriptor).

It reads a problem's fields and its `family` ("conv", "deconv" or "pool") and imports no problem
class, so that every problem can call it from __str__ while parsing imports the classes: one way.
"""

from __future__ import annotations

from typing import Any

POOL_PREFIXES = {"maxpool_": "max", "avgpool_": "avg"}
DECONV_PREFIX = "deconv_"


def _fmt_pair(both: str, h: str, w: str, pair: tuple[int, int], default: tuple | None) -> str:
    if pair == default:
        return ""
    return f"{both}{pair[0]}" if pair[0] == pair[1] else f"{h}{pair[0]}{w}{pair[1]}"


def _fmt_common(p: Any) -> list[str]:
    return [
        f"n{p.n}c{p.c}h{p.h}" + (f"w{p.w}" if p.w != p.h else ""),
        f"k{p.k}" if p.family in ("conv", "deconv") else "",
        f"r{p.r}" + (f"s{p.s}" if p.s != p.r else ""),
    ]


def format_descriptor(p: Any) -> str:
    """The canonical descriptor: every non-default field, in a fixed order, after the direction
    and op prefixes."""
    parts = _fmt_common(p)
    if p.family == "pool":
        parts.append(_fmt_pair("st", "sh", "sw", p.stride, (p.r, p.s)))  # type: ignore[arg-type]
    else:
        parts.append(_fmt_pair("st", "sh", "sw", p.stride, (1, 1)))
    parts.append(_fmt_pair("p", "ph", "pw", p.padding, (0, 0)))
    if p.family == "deconv":
        parts.append(_fmt_pair("op", "oph", "opw", p.output_padding, (0, 0)))
    parts.append(_fmt_pair("d", "dh", "dw", p.dilation, (1, 1)))
    if p.family == "pool":
        parts += ["cm1" if p.ceil_mode else "", "" if p.count_include_pad else "ci0"]
    else:
        parts += [f"g{p.groups}" if p.groups != 1 else "", "b1" if p.bias else ""]
    parts.append("f64" if p.dtype == "float64" else "")
    body = "".join(parts)
    if p.family == "pool":
        body = f"{p.kind}pool_{body}"
    elif p.family == "deconv":
        body = f"{DECONV_PREFIX}{body}"
    return body if p.direction == "fwd" else f"{p.direction}_{body}"
