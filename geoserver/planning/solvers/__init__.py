"""Siting solvers as registered objects: a new solver is one file in this folder defining a ``Solver`` subclass
decorated with ``@register``. The ``solver`` parameter of siting (HTTP, CLI, its documentation and its error
message) lists exactly the registered solvers.

A solver answers two questions on the same instance (candidates x demand coverage matrix, demand weights, the
demand already covered by existing facilities): ``cover_k`` places k sites covering the most new demand (MCLP);
``reach_target`` places the fewest sites reaching a covered fraction. Both return ``core.siting.SitingResult``.
"""

from __future__ import annotations

import importlib
import pkgutil

from ...core.siting import mclp, min_sites_for_target

SOLVERS: dict[str, "Solver"] = {}


class Solver:
    """A solver of ``core.siting`` (by ``name``); a solver implemented elsewhere overrides both methods."""

    name: str = ""
    #: a few words for messages: "fast (greedy with swaps)"
    label: str = ""
    description: str = ""

    def cover_k(self, coverage, weights, already_covered, k: int, *, time_limit_s: float, progress=None,
                cancel=None):
        return mclp(coverage, weights, already_covered, k, solver=self.name, time_limit_s=time_limit_s,
                    progress=progress, cancel=cancel)

    def reach_target(self, coverage, weights, already_covered, target_fraction: float, *, time_limit_s: float,
                     progress=None, cancel=None):
        return min_sites_for_target(coverage, weights, already_covered, target_fraction, solver=self.name,
                                    time_limit_s=time_limit_s, progress=progress, cancel=cancel)


def register(cls):
    """Class decorator: register one instance of the solver under its name."""
    solver = cls()
    if not solver.name:
        raise ValueError(f"{cls.__name__} has no name")
    SOLVERS[solver.name] = solver
    return cls


def load() -> dict[str, Solver]:
    """Import every module of this folder (each registers its solver); the registry by name."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")
    return SOLVERS


def get(name: str) -> Solver:
    return load()[name]


def choices() -> tuple[str, ...]:
    """Registered solver names, the default (fast) first."""
    names = sorted(load(), key=lambda n: (n != "fast", n))
    return tuple(names)
