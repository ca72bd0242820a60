"""The facts `convbench describe` prints: about one problem, with the arithmetic shown, or about a
suite, case by case, with the receptive field layer by layer for a network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from convbench.problems.base import DIRECTIONS
from convbench.problems.conv import ConvProblem
from convbench.problems.family import Problem
from convbench.problems.pool import PoolProblem
from convbench.problems.transpose import ConvTransposeProblem
from convbench.problems.receptive_field import receptive_fields


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _out_size_line(size: int, k: int, s: int, p: int, d: int, out: int,
                   ceil_mode: bool = False) -> str:
    if not ceil_mode:
        return f"floor(({size} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {out}"
    line = f"ceil(({size} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1"
    ceiled = -(-(size + 2 * p - d * (k - 1) - 1) // s) + 1
    if ceiled != out:  # torch drops a last window that would start in the right padding
        return f"{line} - 1 = {out} (the last window would start in the padding)"
    return f"{line} = {out}"


def _transpose_size_line(size: int, k: int, s: int, p: int, d: int, op: int, out: int) -> str:
    return f"({size}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 = {out}"


def _output_rows(p: Problem) -> list[tuple[str, str]]:
    (sh, sw), (ph, pw), (dh, dw) = p.stride, p.padding, p.dilation  # type: ignore[misc]
    if isinstance(p, ConvTransposeProblem):
        (oph, opw) = p.output_padding
        return [("output height", _transpose_size_line(p.h, p.r, sh, ph, dh, oph, p.out_h)),
                ("output width", _transpose_size_line(p.w, p.s, sw, pw, dw, opw, p.out_w))]
    ceil_mode = isinstance(p, PoolProblem) and p.ceil_mode
    return [("output height", _out_size_line(p.h, p.r, sh, ph, dh, p.out_h, ceil_mode)),
            ("output width", _out_size_line(p.w, p.s, sw, pw, dw, p.out_w, ceil_mode))]


def _shape_rows(p: Problem) -> list[tuple[str, str]]:
    rows = [("op, direction", f"{p.op}, {p.direction}"), ("input (N, C, H, W)", str(p.input_shape))]
    if isinstance(p, ConvProblem):
        rows.append(("weights (K, C/g, R, S)", str(p.weight_shape)))
    if isinstance(p, ConvTransposeProblem):
        rows.append(("weights (C, K/g, R, S)", str(p.weight_shape)))
    rows += [("output", str(p.output_shape)), *_output_rows(p)]
    extent = p.window_extent if isinstance(p, PoolProblem) else p.kernel_extent
    rows.append(("receptive field (dilated extent d(K-1)+1)", f"{extent[0]} x {extent[1]}"))
    return rows


def _direction_flops(p: ConvProblem | PoolProblem) -> str:
    """The FLOPs of each direction the op has (the same MACs in each, for a convolution)."""
    directions = DIRECTIONS if isinstance(p, ConvProblem) else ("fwd", "bwd_data")
    return ", ".join(f"{d} {replace(p, direction=d).flops:,}" for d in directions)


def _conv_rows(p: ConvProblem | ConvTransposeProblem) -> list[tuple[str, str]]:
    rows = [
        ("parameters (C/g*R*S + bias) * K", f"{p.params:,}"),
        ("MACs", f"{p.macs:,}"),
        ("FLOPs (2 per MAC + bias adds)", f"{p.flops:,}"),
        ("bytes moved (input + weights + output)", f"{p.bytes_moved:,} ({human_bytes(p.bytes_moved)})"),
        ("arithmetic intensity", f"{p.intensity:.2f} FLOP/byte"),
        ("im2col workspace (C*R*S x N*OH*OW)", human_bytes(p.im2col_bytes)),
    ]
    if isinstance(p, ConvProblem):
        rows.insert(3, ("FLOPs by direction", _direction_flops(p)))
    return rows


def _pool_rows(p: PoolProblem) -> list[tuple[str, str]]:
    return [
        ("FLOPs (compares or adds)", f"{p.flops:,}"),
        ("FLOPs by direction", _direction_flops(p)),
        ("bytes moved (input + output)", f"{p.bytes_moved:,} ({human_bytes(p.bytes_moved)})"),
        ("arithmetic intensity", f"{p.intensity:.3f} FLOP/byte"),
    ]


def describe_rows(p: Problem) -> list[tuple[str, str]]:
    extra = _pool_rows(p) if isinstance(p, PoolProblem) else _conv_rows(p)
    return [("descriptor", str(p)), *_shape_rows(p), *extra]


def _pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


SUITE_COLUMNS = ("case", "descriptor", "output", "MACs", "FLOPs")
NETWORK_COLUMNS = ("extent k'", "stride", "jump", "receptive field")


def suite_rows(cases: Sequence[tuple[str, Problem]], network: bool) -> list[tuple[str, ...]]:
    """One row per case: its descriptor, output shape, MACs and FLOPs; for a network, the
    layer's extent and stride, and the jump and receptive field on the input after it."""
    rows = []
    for name, p in cases:
        macs = "-" if isinstance(p, PoolProblem) else f"{p.macs:,}"
        rows.append((name, str(p), str(p.output_shape), macs, f"{p.flops:,}"))
    if not network:
        return rows
    fields = receptive_fields(cases)
    return [row + (_pair_text(f.extent), _pair_text(f.stride), _pair_text(f.jump),
                   _pair_text(f.field)) for row, f in zip(rows, fields, strict=True)]
