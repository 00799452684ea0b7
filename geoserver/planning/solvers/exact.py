"""The exact solver: the MILP solved with HiGHS (via PuLP), warm-started from the fast solution; reports the dual
bound and gap (see core/siting.py)."""

from __future__ import annotations

from ...core.siting import mclp, min_sites_for_target
from . import Solver, register


@register
class ExactSolver(Solver):
    name = "exact"
    label = "MILP, HiGHS"
    description = "mixed-integer programme with HiGHS within time_limit_s; reports the dual bound and gap"

    def cover_k(self, coverage, weights, already_covered, k, *, time_limit_s, progress=None, cancel=None):
        return mclp(coverage, weights, already_covered, k, solver="exact", time_limit_s=time_limit_s,
                    progress=progress, cancel=cancel)

    def reach_target(self, coverage, weights, already_covered, target_fraction, *, time_limit_s, progress=None,
                     cancel=None):
        return min_sites_for_target(coverage, weights, already_covered, target_fraction, solver="exact",
                                    time_limit_s=time_limit_s, progress=progress, cancel=cancel)
