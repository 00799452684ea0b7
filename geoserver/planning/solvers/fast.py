"""The fast solver: lazy greedy with swap improvement; reports a valid upper bound (see core/siting.py)."""

from __future__ import annotations

from . import Solver, register


@register
class FastSolver(Solver):
    name = "fast"
    label = "greedy with swaps"
    description = "lazy greedy + swap improvement; seconds on the largest instances, reports an upper bound"
