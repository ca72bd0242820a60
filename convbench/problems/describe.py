"""The facts `convbench describe` prints: about one problem, with the arithmetic shown, or about a
suite, case by case, with the receptive field layer by layer for a network."""

from __future__ import annotations

from collections.abc import Sequence

from convbench.problems.family import Problem

LAYOUT_TEXT = {"nchw": "nchw (channels first in memory; torch's contiguous format)",
               "nhwc": "nhwc (channels last in memory; torch's channels_last)"}
from convbench.problems.receptive_field import receptive_fields


def describe_rows(p: Problem) -> list[tuple[str, str]]:
    """Every fact of one problem: its shapes, output sizes with their formulas, receptive field,
    and the counts its family declares (`facts`)."""
    rows = [("descriptor", str(p)), ("op, direction", f"{p.op}, {p.direction}"),
            ("layout", LAYOUT_TEXT[p.layout]),
            (f"input {p.shape_label()}", str(p.input_shape))]
    if p.weight_layout:
        rows.append((f"weights {p.weight_layout}", str(p.weight_shape)))
    rows += [("output", str(p.output_shape)), *p.size_lines()]
    extent = p.kernel_extent
    rows.append(("receptive field (dilated extent d(K-1)+1)", " x ".join(map(str, extent))))
    if not p.symmetric:
        rows.append(("padding (before, after) per axis",
                     ", ".join(f"{a} ({b}, {e})" for a, _, _, _, b, e, _, _ in p.axes())))
    return rows + p.facts()


def _pair_text(sizes: tuple[int, ...]) -> str:
    return str(sizes[0]) if len(set(sizes)) == 1 else "x".join(map(str, sizes))


SUITE_COLUMNS = ("case", "descriptor", "output", "MACs", "FLOPs")
NETWORK_COLUMNS = ("extent k'", "stride", "jump", "receptive field")


def suite_rows(cases: Sequence[tuple[str, Problem]], network: bool) -> list[tuple[str, ...]]:
    """One row per case: its descriptor, output shape, MACs and FLOPs; for a network, the
    layer's extent and stride, and the jump and receptive field on the input after it."""
    rows = []
    for name, p in cases:
        macs = f"{p.macs:,}" if p.weight_layout else "-"
        rows.append((name, str(p), str(p.output_shape), macs, f"{p.flops:,}"))
    if not network:
        return rows
    fields = receptive_fields(cases)
    return [row + (_pair_text(f.extent), _pair_text(f.stride), _pair_text(f.jump),
                   _pair_text(f.field)) for row, f in zip(rows, fields, strict=True)]
