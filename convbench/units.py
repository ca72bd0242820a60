"""How times and byte counts read, everywhere convbench prints them (tables, reports, describe)."""

from __future__ import annotations

import math


def format_time(seconds: float) -> str:
    """Seconds with three significant digits in the unit that fits: 45.7 ms, 13.7 us."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def format_bytes(count: float, digits: int = 3) -> str:
    """Bytes in binary units (KiB = 1024 B) with `digits` significant digits; NaN reads as ''."""
    number = float(count)
    if math.isnan(number):
        return ""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(number) >= scale:
            return f"{number / scale:.{digits}g} {unit}"
    return f"{number:.0f} B"
