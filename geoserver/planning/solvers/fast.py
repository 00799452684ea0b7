"""The fast solver: lazy greedy with swap improvement; reports a valid upper bound (see core/siting.py)."""

from __future__ import annotations

from ...core.siting import mclp, min_sites_for_target
from . import Solver, register


@register
class FastSolver(Solver):
    name = "fast"
    label = "greedy with swaps"
    description = "lazy greedy + swap improvement; seconds on the largest instances, reports an upper bound"

    def cover_k(self, coverage, weights, already_covered, k, *, time_limit_s, progress=None, cancel=None):
        return mclp(coverage, weights, already_covered, k, solver="fast", time_limit_s=time_limit_s,
                    progress=progress, cancel=cancel)

    def reach_target(self, coverage, weights, already_covered, target_fraction, *, time_limit_s, progress=None,
                     cancel=None):
        return min_sites_for_target(coverage, weights, already_covered, target_fraction, solver="fast",
                                    time_limit_s=time_limit_s, progress=progress, cancel=cancel)
