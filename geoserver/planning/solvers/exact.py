"""The exact solver: the MILP solved with HiGHS (via PuLP), warm-started from the fast solution; reports the dual
bound and gap (see core/siting.py)."""

from __future__ import annotations

from . import Solver, register


@register
class ExactSolver(Solver):
    name = "exact"
    label = "MILP, HiGHS"
    description = "mixed-integer programme with HiGHS within time_limit_s; reports the dual bound and gap"
