"""The problem families and the union type every other package names."""

from __future__ import annotations

from typing import TypeAlias

from convbench.problems.conv import ConvProblem
from convbench.problems.pool import PoolProblem
from convbench.problems.transpose import ConvTransposeProblem

Problem: TypeAlias = ConvProblem | PoolProblem | ConvTransposeProblem
