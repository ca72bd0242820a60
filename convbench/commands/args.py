"""The argument types the commands share: argparse calls them on the text given, and their names
appear in its error messages ("invalid positive_int value: '0'")."""

from __future__ import annotations

import argparse


def csv_list(text: str) -> tuple[str, ...]:
    """'im2col, fft,' -> ('im2col', 'fft')."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value
