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


BYTE_UNITS = {"": 1, "B": 1, "K": 2**10, "KB": 10**3, "KIB": 2**10, "M": 2**20, "MB": 10**6,
              "MIB": 2**20, "G": 2**30, "GB": 10**9, "GIB": 2**30}


def parse_bytes(text: str) -> int:
    """'64MiB', '1.5 GiB', '512k', '1000000' -> bytes (KiB = 1024 B, KB = 1000 B); a ValueError
    names the text otherwise."""
    number = text.strip().upper().replace(" ", "")
    split = len(number) - len(number.lstrip("0123456789.eE+"))
    value, unit = number[:split], number[split:]
    try:
        amount = float(value) * BYTE_UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError(f"expected a size such as 64MiB, 1.5GiB or 512KiB, got {text!r}") from None
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"expected a finite, non-negative size, got {text!r}")
    return int(amount)
