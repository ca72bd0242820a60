"""Every op is declared once (convbench.problems.ops) and every part of convbench that keys on
ops follows that declaration: the descriptor grammar, describe, the oracle, the registry and
the library API. A new op that misses one of them fails here, naming the part."""

from __future__ import annotations

from dataclasses import replace

import pytest

import convbench
from convbench import oracle
from convbench.algorithms import registry
from convbench.problems import OPS, Op, op_named, parse
from convbench.problems.describe import describe_rows

NAMES = [op.name for op in OPS]


def test_ops_are_declared_once() -> None:
    assert len(set(NAMES)) == len(NAMES)


def test_every_registered_op_is_declared() -> None:
    assert set(registry.ops()) <= set(NAMES)


@pytest.mark.parametrize("op", OPS, ids=NAMES)
def test_example_parses_to_its_op_and_round_trips(op: Op) -> None:
    p = parse(op.example)
    assert isinstance(p, op.problem) and p.op == op.name and p.direction in op.directions
    assert parse(str(p)) == p


@pytest.mark.parametrize("op", OPS, ids=NAMES)
def test_every_direction_of_the_op_is_a_problem_of_it(op: Op) -> None:
    p = parse(op.example)
    for direction in op.directions:
        q = p if direction == p.direction else replace(p, direction=direction)  # type: ignore[call-arg]
        assert q.op == op.name


@pytest.mark.parametrize("op", OPS, ids=NAMES)
def test_describe_shows_the_op(op: Op) -> None:
    rows = dict(describe_rows(parse(op.example)))
    assert rows["op, direction"].startswith(op.name + ",")
    assert "FLOPs" in " ".join(rows) and "output" in rows


@pytest.mark.parametrize("op", OPS, ids=NAMES)
def test_the_oracle_checks_the_op(op: Op) -> None:
    p = parse(op.example)
    inputs = oracle.make_inputs(p)
    ref = oracle.reference(p, inputs)
    shapes = {"fwd": p.output_shape, "bwd_data": p.input_shape}
    expected = shapes.get(p.direction) or p.weight_shape  # type: ignore[union-attr]
    assert ref.outputs[0].shape == expected and ref.magnitudes[0].shape == expected


@pytest.mark.parametrize("op", OPS, ids=NAMES)
def test_the_registry_has_algorithms_for_the_op(op: Op) -> None:
    names = [a.name for a in registry.all_algorithms(op.name)]
    assert "torch" in names and len(names) >= 2, names


@pytest.mark.parametrize("op", OPS, ids=NAMES)
def test_the_api_exports_the_op(op: Op) -> None:
    for function in op.api:
        assert function in convbench.__all__ and callable(getattr(convbench, function))


def test_an_unknown_op_is_named() -> None:
    with pytest.raises(ValueError, match=r"op='conv4d' is not a known op \(known: conv2d, "):
        op_named("conv4d")
