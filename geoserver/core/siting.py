"""Station siting: where should the next stations go (maximal covering location problem, MCLP)?

The numeric core only: no geometry, no web framework. A planning question is given as

* ``coverage`` -- a sparse matrix, candidates x demand units; a nonzero entry means "a station built at
  this candidate would serve this demand unit" (e.g. the unit lies within the catchment radius);
* ``weights`` -- demand per unit (people), non-negative;
* ``already_covered`` -- units served by existing stations, which stay where they are.

Two questions are answered:

``mclp(..., k)``
    Place k new stations to serve the most demand that is not served yet::

        maximise    sum_i w_i x_i                      (i: demand units not yet covered)
        subject to  x_i <= sum_{j in N_i} y_j          for every i (N_i: candidates covering i)
                    sum_j y_j <= k
                    y_j in {0, 1},  0 <= x_i <= 1

    x_i may be continuous: for integer y the optimum has x_i = min(1, sum y_j), which is 0 or 1.

``min_sites_for_target(..., target_fraction)``
    The fewest new stations that bring total coverage (existing + new) to a target fraction::

        minimise    sum_j y_j
        subject to  sum_i w_i x_i >= target * W - C0   (W: total demand, C0: demand already covered)
                    x_i <= sum_{j in N_i} y_j,  y_j in {0, 1},  0 <= x_i <= 1

Solvers (``solver=``):

``"fast"`` (default)
    Lazy greedy (CELF: marginal gains only shrink as sites are added, so a stale gain is an upper bound
    and only the top of a heap needs re-evaluating) followed by a best-improvement 1-swap local search that
    replaces a chosen site with an unchosen one while that serves more demand. Its ``objective_bound``
    is the online submodular bound: for any set S, OPT_k <= f(S) + (sum of the k largest marginal gains
    over S); the minimum over all greedy prefixes and the final solution is reported.
``"greedy"``
    The lazy greedy alone (no swap phase); mainly for comparison.
``"exact"``
    The MILP above, solved by HiGHS through PuLP, warm-started with the fast solution. The model is
    shrunk first: demand that is already covered, has zero weight or that no candidate reaches is
    dropped, units with identical candidate sets are merged (weights summed), and candidates whose
    remaining catchment is contained in another candidate's are dropped (the other is always at least
    as good). ``objective_bound`` is HiGHS's dual bound.

Cancellation: ``cancel()`` is polled about every 50 ms; once it returns True the call returns normally
with ``status == "cancelled"`` and the best solution found so far (no exception is raised). The exact
solver runs HiGHS in a daemon thread so that it can return at once even where HiGHS does not call back
(PuLP's model hand-over, presolve, the root LP); the abandoned solve stops at HiGHS's next callback or
its time limit. ``progress`` and ``cancel`` may therefore be called from that thread. ``time_limit_s``
covers the whole call; when it runs out the status is "time_limit", again with the best solution found.

Example (two uncovered homes and one covered one; the second candidate serves both uncovered ones):

>>> import numpy as np
>>> from scipy import sparse
>>> coverage = sparse.csr_array(np.array([[1, 1, 0], [0, 1, 1]]))
>>> result = mclp(coverage, np.array([5.0, 2.0, 3.0]), np.array([True, False, False]), k=1)
>>> result.selected.tolist(), result.newly_covered, result.covered_after, result.status
([1], 5.0, 10.0, 'optimal')
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import sparse

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]

SOLVERS = ("fast", "greedy", "exact")
EXACT_SOLVER_NAME = "milp (HiGHS via PuLP)"

#: Relative tolerance when comparing demand sums (floating-point sums of many weights).
_REL_TOL = 1e-9
#: Seconds between two progress reports (the first and the last are always sent).
_PROGRESS_INTERVAL_S = 0.25
#: Seconds between two cancel() checks from inside HiGHS (its callbacks fire very often).
_CANCEL_INTERVAL_S = 0.05
#: HiGHS's LP solver inside branch and bound. The interior point method solves the large, degenerate root
#: relaxations of coverage models much faster than dual simplex: on the benchmark's "large" instance
#: (about 18,200 sites x 98,600 demand groups after shrinking) k = 50 went from no root solution in 120 s
#: to optimal in about 40 s and the target problem from 99 s to about 23 s, while k = 20 went from 13 s
#: to about 40 s; models of a few thousand rows were no slower.
_MIP_LP_SOLVER = "ipm"


@dataclass(frozen=True)
class SitingResult:
    """The answer to one siting question; immutable.

    ``selected`` holds candidate indices (rows of ``coverage``) ordered by decreasing marginal
    contribution: each site adds the most new demand given the sites before it (for the greedy solver
    this is the order it picked them). Sites that would add nothing are left out, so ``selected`` can be
    shorter than k. ``new_coverage_by_site[i]`` is the demand first covered by ``selected[i]`` in that
    order; it sums to ``newly_covered``.

    ``objective_bound`` and ``gap`` refer to the problem's own objective:

    * ``mclp``: an upper bound on ``newly_covered`` (fast: online submodular bound; exact: HiGHS's dual
      bound) and gap = (bound - newly_covered) / bound;
    * ``min_sites_for_target``: a lower bound on the number of sites (fast: from the same submodular
      bound; exact: HiGHS's dual bound, rounded up) and gap = (len(selected) - bound) / len(selected).

    ``max_fraction`` is the coverage fraction reachable if every candidate were built. Fractions are 1.0
    when there is no demand at all.
    """

    selected: np.ndarray
    new_coverage_by_site: np.ndarray
    newly_covered: float
    covered_before: float
    covered_after: float
    total_demand: float
    covered_mask_after: np.ndarray
    solver: str
    status: str
    objective_bound: float | None
    gap: float | None
    runtime_s: float
    k: int | None
    target_fraction: float | None
    max_fraction: float
    message: str = ""

    @property
    def fraction_before(self) -> float:
        """Share of all demand served by existing facilities."""
        return _fraction(self.covered_before, self.total_demand)

    @property
    def fraction_after(self) -> float:
        """Share of all demand served once the selected sites are built."""
        return _fraction(self.covered_after, self.total_demand)


def _fraction(part: float, total: float) -> float:
    return part / total if total > 0 else 1.0


# --------------------------------------------------------------------------------------------------
# Input validation and the shrunken problem
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Instance:
    """The validated inputs, in the original index space."""

    cover: sparse.csr_array       # bool, candidates x demand
    weights: np.ndarray           # float64, (n_demand,)
    already: np.ndarray           # bool, (n_demand,)
    total: float
    covered_before: float

    @property
    def n_candidates(self) -> int:
        return self.cover.shape[0]


@dataclass(frozen=True)
class _Reduced:
    """The problem that solvers see: only demand that can still be won, merged into groups.

    ``cover`` is candidates x groups (float 0/1, rows in reduced-candidate order); ``candidates[r]`` is
    the original index of reduced candidate r.
    """

    cover: sparse.csr_array
    weight: np.ndarray
    candidates: np.ndarray

    @property
    def n_candidates(self) -> int:
        return self.cover.shape[0]

    @property
    def coverable(self) -> float:
        return float(self.weight.sum())


def _validate(coverage, weights, already_covered) -> _Instance:
    """Check shapes and values; raise ValueError (or TypeError) saying what is wrong."""
    if not sparse.issparse(coverage):
        coverage = np.asarray(coverage)
        if coverage.ndim != 2:
            raise ValueError(f"coverage must be a 2-D (candidates x demand) matrix, got {coverage.ndim}-D")
    cover = sparse.csr_array(coverage).astype(bool)
    cover.eliminate_zeros()
    n_candidates, n_demand = cover.shape
    w = np.asarray(weights, dtype=float)
    if w.shape != (n_demand,):
        raise ValueError(f"weights must have shape ({n_demand},) to match coverage's {n_demand} demand "
                         f"columns, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite (found NaN or infinity)")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    already = _as_bool(already_covered, n_demand)
    total = float(w.sum())
    return _Instance(cover, w, already, total, float(w[already].sum()))


def _as_bool(values, n_demand: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n_demand,):
        raise ValueError(f"already_covered must have shape ({n_demand},) to match coverage's {n_demand} "
                         f"demand columns, got {arr.shape}")
    if arr.dtype != bool:
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError("already_covered must be boolean (or 0/1)")
        arr = arr.astype(bool)
    return arr


def _check_k(k, n_candidates: int) -> int:
    """k must be an integer in [1, n_candidates]; larger k is refused rather than silently clamped."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an integer, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > n_candidates:
        raise ValueError(f"k={k} exceeds the number of candidate sites ({n_candidates})")
    return int(k)


def _check_common(solver: str, time_limit_s: float) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}")
    if not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be positive, got {time_limit_s}")


def _reduce(inst: _Instance) -> _Reduced:
    """Drop demand that cannot be won, merge identical demand columns, drop dominated candidates."""
    keep = ~inst.already & (inst.weights > 0)
    cols = inst.cover[:, keep].tocsc()
    w = inst.weights[keep]
    reachable = np.diff(cols.indptr) > 0
    cols, w = cols[:, reachable], w[reachable]
    groups, group_weight = _merge_identical_columns(cols, w)
    cand = _undominated_candidates(groups)
    return _Reduced(groups[cand], group_weight, cand)


def _merge_identical_columns(cols: sparse.csc_array, w: np.ndarray) -> tuple[sparse.csr_array, np.ndarray]:
    """Demand units served by exactly the same candidates behave as one unit of their summed weight."""
    n_candidates = cols.shape[0]
    if cols.shape[1] == 0:
        return sparse.csr_array((n_candidates, 0)), np.zeros(0)
    cols = cols.tocsc()
    cols.sort_indices()
    degree = np.diff(cols.indptr)
    padded = np.full((cols.shape[1], int(degree.max())), -1, dtype=np.int64)
    rank = np.arange(cols.nnz) - np.repeat(cols.indptr[:-1], degree)
    padded[np.repeat(np.arange(cols.shape[1]), degree), rank] = cols.indices
    _, first, inverse = np.unique(padded, axis=0, return_index=True, return_inverse=True)
    group_weight = np.bincount(inverse.ravel(), weights=w, minlength=len(first))
    groups = sparse.csr_array(cols[:, first].astype(float))
    return groups, group_weight


def _undominated_candidates(groups: sparse.csr_array) -> np.ndarray:
    """Original indices of candidates whose catchment is not contained in another candidate's.

    Candidate a is dominated by b when a's groups are a subset of b's and either the subset is strict or
    the two are equal and b has the lower index (so exactly one of a set of twins survives). Replacing a
    by b never loses coverage, so dropping a changes no optimum. Empty catchments are dropped too.
    """
    size = np.diff(groups.indptr)
    overlap = (groups @ groups.T).tocoo()
    a, b, shared = overlap.row, overlap.col, overlap.data
    contained = (a != b) & (np.rint(shared) == size[a])
    dominated_by = contained & ((size[b] > size[a]) | (b < a))
    dominated = np.zeros(groups.shape[0], dtype=bool)
    dominated[a[dominated_by]] = True
    return np.flatnonzero(~dominated & (size > 0))


# --------------------------------------------------------------------------------------------------
# Time limit, cancellation and progress
# --------------------------------------------------------------------------------------------------


class _Control:
    """One run's clock, cancel flag and throttled progress reporting.

    The exact solver's HiGHS thread uses it too; a lock keeps a solver-thread report from slipping out
    after the run was stopped (an abandoned solve must not report progress over the final result).
    """

    def __init__(self, time_limit_s: float, progress: Progress | None, cancel: Cancel | None):
        self.start = time.perf_counter()
        self.time_limit_s = float(time_limit_s)
        self._progress = progress
        self._cancel = cancel
        self._last_report = -math.inf
        self._lock = threading.Lock()
        self.stopped: str | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        return self.time_limit_s - self.elapsed()

    def stop_reason(self) -> str | None:
        """"cancelled" or "time_limit" once the run must stop (and from then on), else None."""
        with self._lock:
            if self.stopped is None:
                if self._cancel is not None and self._cancel():
                    self.stopped = "cancelled"
                elif self.remaining() <= 0:
                    self.stopped = "time_limit"
            return self.stopped

    def report(self, fraction: float, message: str, force: bool = False, from_solver: bool = False) -> None:
        with self._lock:
            now = time.perf_counter()
            if self._progress is None or (not force and now - self._last_report < _PROGRESS_INTERVAL_S):
                return
            if from_solver and self.stopped:
                return
            self._last_report = now
            self._progress(float(min(max(fraction, 0.0), 1.0)), message)


# --------------------------------------------------------------------------------------------------
# Bounds
# --------------------------------------------------------------------------------------------------


class _UpperBound:
    """OPT_k <= f(S) + (sum of the k largest marginal-gain upper bounds over S), for every set S seen."""

    def __init__(self, k: int, coverable: float):
        self.k = k
        self.value = coverable

    def observe(self, covered: float, gain_bounds: np.ndarray) -> None:
        k = min(self.k, len(gain_bounds))
        top = np.partition(gain_bounds, len(gain_bounds) - k)[len(gain_bounds) - k:] if k else gain_bounds[:0]
        self.value = min(self.value, covered + float(top.sum()))


class _SitesLowerBound:
    """Fewest sites able to win ``needed``: m* >= min{m : f(S) + top-m gains over S >= needed} for every S."""

    def __init__(self, needed: float):
        self.needed = needed
        self.value = 0

    def observe(self, covered: float, gain_bounds: np.ndarray) -> None:
        best = np.cumsum(np.sort(gain_bounds)[::-1])
        short = self.needed - covered
        m = int(np.searchsorted(best, short, side="left")) + 1 if short > 0 else 0
        self.value = max(self.value, m if m <= len(best) else len(best) + 1)


def _exact_gains(red: _Reduced, selected: list[int]) -> tuple[float, np.ndarray]:
    """Demand won by ``selected`` (reduced indices) and every candidate's exact marginal gain over it."""
    uncovered = _counts(red, selected) == 0
    gains = red.cover @ (red.weight * uncovered)
    gains[selected] = 0.0
    return float(red.weight[~uncovered].sum()), gains


def _counts(red: _Reduced, selected: list[int]) -> np.ndarray:
    """How many selected sites serve each group."""
    if not selected:
        return np.zeros(red.cover.shape[1])
    return np.asarray(red.cover[np.asarray(selected)].sum(axis=0)).ravel()


# --------------------------------------------------------------------------------------------------
# Fast solver: lazy greedy + swap
# --------------------------------------------------------------------------------------------------


@dataclass
class _GreedyRun:
    selected: list[int]
    covered: float


def _lazy_greedy(red: _Reduced, k: int, control: _Control, *, allowed: np.ndarray | None = None,
                 needed: float | None = None, bound=None, phase: tuple[float, float] = (0.0, 1.0)) -> _GreedyRun:
    """CELF greedy on reduced indices: up to k sites, stopping early once ``needed`` is won or no site adds
    anything. ``allowed`` restricts the choice (used to order a given set); ``bound`` observes every
    intermediate state (covered, gain upper bounds)."""
    indptr, indices, w = red.cover.indptr, red.cover.indices, red.weight
    gain_ub = red.cover @ w
    if allowed is not None:
        mask = np.zeros(red.n_candidates, dtype=bool)
        mask[allowed] = True
        gain_ub[~mask] = 0.0
    stamp = np.zeros(red.n_candidates, dtype=np.int64)
    heap = [(-g, int(j)) for j, g in enumerate(gain_ub) if g > 0]
    heapq.heapify(heap)
    uncovered = np.ones(len(w), dtype=bool)
    run = _GreedyRun([], 0.0)
    while len(run.selected) < k and heap and (needed is None or run.covered < needed):
        if control.stop_reason():
            break
        if bound is not None:
            bound.observe(run.covered, gain_ub)
        pick = _pop_best(heap, stamp, len(run.selected), indptr, indices, w, uncovered, gain_ub)
        if pick is None:
            break
        rows = indices[indptr[pick]:indptr[pick + 1]]
        run.covered += float(w[rows][uncovered[rows]].sum())
        uncovered[rows] = False
        gain_ub[pick] = 0.0
        run.selected.append(pick)
        done = len(run.selected) / k if needed is None else run.covered / needed
        control.report(phase[0] + (phase[1] - phase[0]) * done,
                       f"greedy: {len(run.selected)} sites, {run.covered:,.0f} newly covered")
    return run


def _pop_best(heap, stamp, step, indptr, indices, w, uncovered, gain_ub) -> int | None:
    """CELF step: re-evaluate the heap top until a fresh (this step's) gain is on top; return it."""
    while heap:
        _, j = heapq.heappop(heap)
        if stamp[j] == step + 1:
            return j
        rows = indices[indptr[j]:indptr[j + 1]]
        gain = float(w[rows][uncovered[rows]].sum())
        gain_ub[j] = gain
        stamp[j] = step + 1
        if gain > 0:
            heapq.heappush(heap, (-gain, j))
    return None


def _swap_improve(red: _Reduced, selected: list[int], control: _Control, *, goal: float | None = None,
                  tol: float = 0.0, phase: tuple[float, float] = (0.0, 1.0)) -> list[int]:
    """Best-improvement 1-swap local search (stops at a local optimum, at ``goal``, or when told to).

    For the current set S with c_i sites serving group i: removing s loses L_s, the weight of groups
    only s serves; adding c gains G_c (uncovered groups c serves) plus the part of L_s that c also
    serves. delta(c, s) = G_c + O(c, s) - L_s with O = cover @ E, E[i, s] = w_i if s alone serves i.
    """
    current = list(selected)
    rounds = 0
    while current and not control.stop_reason():
        delta, c, p, covered = _best_swap(red, current)
        if (goal is not None and covered >= goal) or delta <= tol:
            break
        current[p] = c
        rounds += 1
        control.report(phase[0] + (phase[1] - phase[0]) * min(1.0, rounds / len(current)),
                       f"swap: {rounds} improving swaps, {covered + delta:,.0f} newly covered")
    return current


def _best_swap(red: _Reduced, current: list[int]) -> tuple[float, int, int, float]:
    """The best swap (delta, candidate in, position out) and the demand ``current`` wins now.

    O is sparse, so the dense n_candidates x k delta table is never built: a pair outside O's pattern has
    delta = G_c - L_s <= max G - min L, and the pair (argmax G, argmin L) achieves at least that.
    """
    counts = _counts(red, current)
    uncovered_weight = red.weight * (counts == 0)
    gain = red.cover @ uncovered_weight
    gain[np.asarray(current)] = -np.inf
    lone = _lone_weights(red, current, counts)
    loss = np.asarray(lone.sum(axis=0)).ravel()
    overlap = sparse.csr_array(red.cover @ lone)
    c_best, p_best = int(np.argmax(gain)), int(np.argmin(loss))
    best = (float(gain[c_best] + overlap[c_best, p_best] - loss[p_best]), c_best, p_best)
    pairs = overlap.tocoo()
    if pairs.nnz:
        deltas = gain[pairs.row] + pairs.data - loss[pairs.col]
        top = int(np.argmax(deltas))
        if deltas[top] > best[0]:
            best = (float(deltas[top]), int(pairs.row[top]), int(pairs.col[top]))
    return (*best, float(red.weight.sum() - uncovered_weight.sum()))


def _lone_weights(red: _Reduced, current: list[int], counts: np.ndarray) -> sparse.csr_array:
    """Groups x positions: w_i where current[position] is the only selected site serving group i."""
    chosen = red.cover[np.asarray(current)].tocoo()
    lone = counts[chosen.col] == 1
    return sparse.csr_array((red.weight[chosen.col[lone]], (chosen.col[lone], chosen.row[lone])),
                            shape=(red.cover.shape[1], len(current)))


def _order_by_contribution(red: _Reduced, chosen: list[int]) -> list[int]:
    """Chosen sites in greedy order of their marginal gain within the set, dropping those that add nothing."""
    if not chosen:
        return []
    unbounded = _Control(math.inf, None, None)
    return _lazy_greedy(red, len(chosen), unbounded, allowed=np.asarray(chosen)).selected


# --------------------------------------------------------------------------------------------------
# Exact solver: MILP with HiGHS via PuLP
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MilpOutcome:
    chosen: list[int] | None   # reduced indices of the solver's solution; None when it has none
    status: str
    dual_bound: float | None   # in the problem's own sense (upper bound on coverage, lower on sites)


def _highs_solver(control: _Control, warm: dict | None, mip_rel_gap: float):
    """A pulp.HiGHS that is warm-started, interruptible by ``control`` and reports progress."""
    import highspy
    import pulp

    callback_type = highspy.cb.HighsCallbackType
    last_check = [-math.inf]

    def callback(kind, message, data_out, data_in, user_data):
        now = time.perf_counter()
        if now - last_check[0] < _CANCEL_INTERVAL_S:
            return
        last_check[0] = now
        if control.stop_reason():
            data_in.user_interrupt = True
            return
        in_tree = kind == int(callback_type.kCallbackMipInterrupt) and math.isfinite(data_out.mip_gap)
        control.report(0.2 + 0.8 * control.elapsed() / control.time_limit_s,
                       f"HiGHS branch and bound: gap {data_out.mip_gap:.2%}" if in_tree
                       else "HiGHS: solving the LP relaxation", from_solver=True)

    class WarmHiGHS(pulp.HiGHS):
        def callSolver(self, lp):
            if warm:
                index = np.array([var.index for var in warm], dtype=np.int32)
                lp.solverModel.setSolution(len(index), index, np.fromiter(warm.values(), float, len(warm)))
            super().callSolver(lp)

    return WarmHiGHS(msg=False, timeLimit=max(control.remaining(), 0.01), gapRel=mip_rel_gap,
                     mip_lp_solver=_MIP_LP_SOLVER, callbackTuple=(callback, None),
                     callbacksToActivate=[callback_type.kCallbackMipInterrupt,
                                          callback_type.kCallbackSimplexInterrupt,
                                          callback_type.kCallbackIpmInterrupt])


def _solve_in_thread(model, solver, control: _Control) -> bool:
    """Solve in a daemon thread and poll for cancellation; False if the solve was abandoned.

    HiGHS's MIP solver calls back only between its own steps, not during the root LP relaxation (tens of
    seconds on ~100,000-row models) nor while PuLP hands the model over, so a cancel could otherwise
    wait that long. HiGHS releases the GIL while it runs; an abandoned solve is interrupted at its next
    callback (or its time limit) and its result is ignored.
    """
    failure: list[BaseException] = []

    def target():
        try:
            model.solve(solver)
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=target, name="siting-highs", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(_CANCEL_INTERVAL_S)
        if thread.is_alive() and control.stop_reason() == "cancelled":
            return False
    if failure:
        raise failure[0]
    return True


def _build_milp(red: _Reduced, control: _Control, *, k: int | None, needed: float | None,
                max_sites: int | None):
    """The PuLP model (coverage form when k is given, site-count form when ``needed`` is); None if stopped."""
    import pulp

    sense = pulp.LpMaximize if k is not None else pulp.LpMinimize
    model = pulp.LpProblem("mclp" if k is not None else "min_sites", sense)
    y = [model.add_variable(f"y{j}", cat=pulp.LpBinary) for j in range(red.n_candidates)]
    x = [model.add_variable(f"x{i}", lowBound=0, upBound=1) for i in range(len(red.weight))]
    won = pulp.LpAffineExpression(list(zip(x, red.weight.tolist())))
    sites = pulp.LpAffineExpression([(v, 1.0) for v in y])
    model += won if k is not None else sites
    by_group = red.cover.tocsc()
    for i in range(len(x)):
        if i % 2000 == 0:
            if control.stop_reason():
                return None, y, x
            control.report(0.1 + 0.1 * i / len(x), f"building MILP: {i:,}/{len(x):,} demand groups")
        members = by_group.indices[by_group.indptr[i]:by_group.indptr[i + 1]]
        row = pulp.LpAffineExpression([(x[i], 1.0)] + [(y[j], -1.0) for j in members])
        model.addConstraint(pulp.LpConstraint(row, pulp.LpConstraintLE, rhs=0.0))
    if k is not None:
        model.addConstraint(pulp.LpConstraint(sites, pulp.LpConstraintLE, rhs=k))
    else:
        model.addConstraint(pulp.LpConstraint(won, pulp.LpConstraintGE, rhs=needed))
        if max_sites is not None:
            model.addConstraint(pulp.LpConstraint(sites, pulp.LpConstraintLE, rhs=max_sites))
    return model, y, x


def _warm_values(red: _Reduced, y, x, chosen: list[int]) -> dict:
    """Start values for every variable: the fast solution and the groups it serves."""
    values = {v: 0.0 for v in y}
    values.update({y[j]: 1.0 for j in chosen})
    served = _counts(red, chosen) > 0
    values.update({x[i]: float(served[i]) for i in range(len(x))})
    return values


def _solve_milp(red: _Reduced, control: _Control, warm_start: list[int] | None, *, k: int | None = None,
                needed: float | None = None, max_sites: int | None = None,
                mip_rel_gap: float = 1e-6) -> _MilpOutcome:
    """Build and solve the MILP within the remaining time; read back the solution and HiGHS's bound."""
    import highspy

    model, y, x = _build_milp(red, control, k=k, needed=needed, max_sites=max_sites)
    if model is None or control.stop_reason():
        return _MilpOutcome(None, control.stop_reason() or "time_limit", None)
    control.report(0.2, f"solving MILP: {len(y):,} sites, {len(x):,} demand groups", force=True)
    warm = None if warm_start is None else _warm_values(red, y, x, warm_start)
    if not _solve_in_thread(model, _highs_solver(control, warm, mip_rel_gap), control):
        return _MilpOutcome(None, "cancelled", None)
    highs = model.solverModel
    model_status = highs.getModelStatus()
    status_names = {highspy.HighsModelStatus.kOptimal: "optimal",
                    highspy.HighsModelStatus.kTimeLimit: "time_limit",
                    highspy.HighsModelStatus.kInfeasible: "infeasible",
                    highspy.HighsModelStatus.kInterrupt: control.stopped or "cancelled"}
    status = status_names.get(model_status, highs.modelStatusToString(model_status).lower())
    info = highs.getInfo()
    if status == "infeasible" or not math.isfinite(info.objective_function_value):
        return _MilpOutcome(None, status, None)
    dual = float(info.mip_dual_bound)
    dual = -dual if k is not None else dual
    chosen = [j for j, v in enumerate(y) if (v.varValue or 0.0) > 0.5]
    return _MilpOutcome(chosen, status, dual if math.isfinite(dual) else None)


# --------------------------------------------------------------------------------------------------
# Assembling the result in the original index space
# --------------------------------------------------------------------------------------------------


def _result(inst: _Instance, red: _Reduced, order: list[int], control: _Control, *, solver: str, status: str,
            bound: float | None, k: int | None, target: float | None, message: str = "") -> SitingResult:
    """Evaluate the chosen sites on the original matrix and package everything."""
    selected = red.candidates[np.asarray(order, dtype=np.int64)]
    covered = inst.already.copy()
    by_site = np.zeros(len(selected))
    for pos, site in enumerate(selected):
        cols = inst.cover.indices[inst.cover.indptr[site]:inst.cover.indptr[site + 1]]
        fresh = cols[~covered[cols]]
        by_site[pos] = inst.weights[fresh].sum()
        covered[fresh] = True
    newly = float(by_site.sum())
    gap = _gap(newly if k is not None else len(selected), bound, maximise=k is not None)
    control.report(1.0, f"done: {status}", force=True)
    return SitingResult(
        selected=selected, new_coverage_by_site=by_site, newly_covered=newly,
        covered_before=inst.covered_before, covered_after=inst.covered_before + newly,
        total_demand=inst.total, covered_mask_after=covered, solver=solver, status=status,
        objective_bound=None if bound is None else float(bound), gap=gap, runtime_s=control.elapsed(),
        k=k, target_fraction=target, max_fraction=_fraction(inst.covered_before + red.coverable, inst.total),
        message=message)


def _gap(objective: float, bound: float | None, *, maximise: bool) -> float | None:
    if bound is None:
        return None
    slack = bound - objective if maximise else objective - bound
    scale = bound if maximise else objective
    return max(0.0, slack / scale) if scale > 0 else 0.0


def _solver_label(solver: str) -> str:
    return {"fast": "greedy+swap", "greedy": "greedy", "exact": EXACT_SOLVER_NAME}[solver]


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def mclp(coverage, weights, already_covered, k: int, *, solver: str = "fast", time_limit_s: float = 60.0,
         progress: Progress | None = None, cancel: Cancel | None = None,
         mip_rel_gap: float = 1e-6) -> SitingResult:
    """Choose up to k new sites that serve the most demand not served by existing facilities.

    Formulation (see the module docstring)::

        max sum_i w_i x_i  s.t.  x_i <= sum_{j covers i} y_j,  sum_j y_j <= k,  y binary, 0 <= x <= 1

    over demand units i that are not ``already_covered``. ``k`` must be in [1, n_candidates] (larger k is
    refused, not clamped). ``solver`` is "fast" (lazy greedy + swap), "greedy" or "exact" (MILP via
    HiGHS; ``mip_rel_gap`` is its relative optimality tolerance). The status is "optimal" when the
    optimum is proven (for the fast solver: its bound meets its objective), "feasible" for a heuristic
    answer, "time_limit" or "cancelled" when stopped early (with the best solution found so far).

    >>> import numpy as np
    >>> from scipy import sparse
    >>> coverage = sparse.csr_array(np.array([[0, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]))
    >>> r = mclp(coverage, np.ones(6), np.zeros(6, bool), k=2)
    >>> sorted(r.selected.tolist()), r.newly_covered
    ([1, 2], 6.0)
    """
    _check_common(solver, time_limit_s)
    inst = _validate(coverage, weights, already_covered)
    k = _check_k(k, inst.n_candidates)
    control = _Control(time_limit_s, progress, cancel)
    control.report(0.0, f"mclp: {inst.n_candidates:,} candidates, {len(inst.weights):,} demand units",
                   force=True)
    red = _reduce(inst)
    fast_phase = (0.0, 0.1) if solver == "exact" else (0.0, 1.0)
    chosen, bound, status = _fast_mclp(red, k, control, swap=solver != "greedy", phase=fast_phase)
    if solver == "exact" and status not in ("cancelled", "time_limit") and red.coverable > 0:
        chosen, bound, status = _exact_mclp(red, k, control, chosen, mip_rel_gap)
    order = _order_by_contribution(red, chosen)
    return _result(inst, red, order, control, solver=_solver_label(solver), status=status, bound=bound,
                   k=k, target=None)


def _fast_mclp(red: _Reduced, k: int, control: _Control, *, swap: bool,
               phase: tuple[float, float]) -> tuple[list[int], float, str]:
    """Greedy (+ swap) with its online bound; the status is "optimal" only when the bound proves it."""
    bound = _UpperBound(k, red.coverable)
    middle = phase[0] + 0.6 * (phase[1] - phase[0])
    run = _lazy_greedy(red, k, control, bound=bound, phase=(phase[0], middle))
    chosen = run.selected
    if swap:
        chosen = _swap_improve(red, chosen, control, tol=_REL_TOL * red.coverable, phase=(middle, phase[1]))
    covered, gains = _exact_gains(red, chosen)
    bound.observe(covered, gains)
    if control.stopped:
        return chosen, bound.value, control.stopped
    proven = bound.value - covered <= _REL_TOL * max(red.coverable, 1.0)
    return chosen, bound.value, "optimal" if proven else "feasible"


def _exact_mclp(red: _Reduced, k: int, control: _Control, warm: list[int],
                mip_rel_gap: float) -> tuple[list[int], float | None, str]:
    """MILP for coverage; keeps the fast (warm-start) answer when the solver has nothing better."""
    outcome = _solve_milp(red, control, warm, k=k, mip_rel_gap=mip_rel_gap)
    chosen = warm if outcome.chosen is None else outcome.chosen
    if _exact_gains(red, warm)[0] > _exact_gains(red, chosen)[0]:
        chosen = warm
    return chosen, outcome.dual_bound, outcome.status


def min_sites_for_target(coverage, weights, already_covered, target_fraction: float, *, solver: str = "fast",
                         max_sites: int | None = None, time_limit_s: float = 60.0,
                         progress: Progress | None = None, cancel: Cancel | None = None,
                         mip_rel_gap: float = 1e-6) -> SitingResult:
    """The fewest new sites that bring total coverage (existing + new) to ``target_fraction`` of demand.

    Formulation (see the module docstring)::

        min sum_j y_j  s.t.  sum_i w_i x_i >= target * W - C0,  x_i <= sum_{j covers i} y_j,
                             [sum_j y_j <= max_sites],  y binary, 0 <= x <= 1

    ``target_fraction`` must be in (0, 1]. If the target is met already, no site is selected (status
    "optimal"). If even every candidate together cannot reach it, or ``max_sites`` (capped at the number
    of candidates) provably cannot, the status is "infeasible" and ``message`` gives the reachable
    fraction (also in ``max_fraction``). The fast solver reports "not_reached" when its heuristic found
    no way within ``max_sites`` but could not prove that none exists. Otherwise statuses are as in
    ``mclp``; the bound is a lower bound on the number of sites.

    The fast solver runs greedy until the target is met, then repeatedly drops the least useful site and
    repairs with swaps while the target still holds.

    >>> import numpy as np
    >>> from scipy import sparse
    >>> coverage = sparse.csr_array(np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]))
    >>> r = min_sites_for_target(coverage, np.ones(4), np.array([True, False, False, False]), 1.0)
    >>> sorted(r.selected.tolist()), r.covered_after, r.status
    ([0, 2], 4.0, 'optimal')
    """
    _check_common(solver, time_limit_s)
    inst = _validate(coverage, weights, already_covered)
    target = _check_target(target_fraction)
    max_sites = _check_max_sites(max_sites, inst.n_candidates)
    control = _Control(time_limit_s, progress, cancel)
    control.report(0.0, f"min sites for {target:.2%}: {inst.n_candidates:,} candidates", force=True)
    red = _reduce(inst)
    label = _solver_label(solver)
    tol = _REL_TOL * max(inst.total, 1.0)
    needed = target * inst.total - inst.covered_before - tol
    done = dict(solver=label, k=None, target=target)
    if needed <= 0:
        return _result(inst, red, [], control, status="optimal", bound=0.0, message="target already met",
                       **done)
    if red.coverable < needed:
        reach = _fraction(inst.covered_before + red.coverable, inst.total)
        return _result(inst, red, [], control, status="infeasible", bound=None,
                       message=f"target {target:.4%} is unreachable: building every candidate reaches "
                               f"{reach:.4%}", **done)
    fast_phase = (0.0, 0.1) if solver == "exact" else (0.0, 1.0)
    chosen, lower, status = _fast_min_sites(red, needed, max_sites, control, swap=solver != "greedy",
                                            phase=fast_phase, tol=tol)
    if solver == "exact" and status not in ("cancelled", "time_limit"):
        chosen, lower, status = _exact_min_sites(red, needed, max_sites, control, chosen, lower, mip_rel_gap)
    message = _min_sites_message(status, max_sites)
    order = _order_by_contribution(red, chosen)
    return _result(inst, red, order, control, status=status, bound=lower, message=message, **done)


def _check_target(target_fraction) -> float:
    try:
        target = float(target_fraction)
    except (TypeError, ValueError):
        raise ValueError(f"target_fraction must be a number in (0, 1], got {target_fraction!r}") from None
    if not 0 < target <= 1:
        raise ValueError(f"target_fraction must be in (0, 1], got {target_fraction!r}")
    return target


def _check_max_sites(max_sites, n_candidates: int) -> int | None:
    """None (no cap) or an integer >= 1; values above the number of candidates are capped to it."""
    if max_sites is None:
        return None
    if isinstance(max_sites, bool) or not isinstance(max_sites, (int, np.integer)) or max_sites < 1:
        raise ValueError(f"max_sites must be a positive integer or None, got {max_sites!r}")
    return min(int(max_sites), n_candidates)


def _fast_min_sites(red: _Reduced, needed: float, max_sites: int | None, control: _Control, *, swap: bool,
                    phase: tuple[float, float], tol: float) -> tuple[list[int], float, str]:
    """Greedy to the target, then shrink: drop the least useful site, swap-repair, repeat while feasible."""
    cap = red.n_candidates if max_sites is None else min(max_sites, red.n_candidates)
    lower = _SitesLowerBound(needed)
    middle = phase[0] + 0.5 * (phase[1] - phase[0])
    run = _lazy_greedy(red, cap, control, needed=needed, bound=lower, phase=(phase[0], middle))
    best = run.selected
    reached = run.covered >= needed
    if not reached and swap and not control.stopped:
        best = _swap_improve(red, best, control, goal=needed, tol=tol, phase=(middle, phase[1]))
        reached = _exact_gains(red, best)[0] >= needed
    if reached and swap:
        best = _shrink(red, best, needed, lower.value, control, tol, (middle, phase[1]))
    lower.observe(*_exact_gains(red, best))
    if control.stopped:
        return best, float(lower.value), control.stopped
    if not reached:
        return best, float(lower.value), "infeasible" if lower.value > cap else "not_reached"
    return best, float(lower.value), "optimal" if len(best) <= lower.value else "feasible"


def _shrink(red: _Reduced, best: list[int], needed: float, lower: int, control: _Control, tol: float,
            phase: tuple[float, float]) -> list[int]:
    """Try ever smaller solutions: remove the site whose loss is smallest, then swap towards ``needed``."""
    start = len(best)
    while len(best) > max(lower, 1) and not control.stop_reason():
        losses = np.asarray(_lone_weights(red, best, _counts(red, best)).sum(axis=0)).ravel()
        weakest = int(np.argmin(losses))
        trial = best[:weakest] + best[weakest + 1:]
        trial = _swap_improve(red, trial, control, goal=needed, tol=tol)
        if _exact_gains(red, trial)[0] < needed:
            break
        best = trial
        control.report(phase[0] + (phase[1] - phase[0]) * (start - len(best)) / max(start - lower, 1),
                       f"shrinking: {len(best)} sites still reach the target")
    return best


def _exact_min_sites(red: _Reduced, needed: float, max_sites: int | None, control: _Control, warm: list[int],
                     lower: float, mip_rel_gap: float) -> tuple[list[int], float, str]:
    """MILP for the site count; keeps the fast answer if the solver does not improve on it."""
    warm_ok = _exact_gains(red, warm)[0] >= needed
    outcome = _solve_milp(red, control, warm if warm_ok else None, needed=needed, max_sites=max_sites,
                          mip_rel_gap=mip_rel_gap)
    if outcome.status == "infeasible":
        return warm, lower, "infeasible"
    bound = lower if outcome.dual_bound is None else max(lower, math.ceil(outcome.dual_bound - 1e-6))
    chosen = outcome.chosen
    if chosen is None or _exact_gains(red, chosen)[0] < needed:
        chosen = warm
    if warm_ok and len(warm) < len(chosen):
        chosen = warm
    return chosen, float(bound), outcome.status


def _min_sites_message(status: str, max_sites: int | None) -> str:
    if status == "infeasible":
        return f"target is unreachable with at most {max_sites} new sites"
    if status == "not_reached":
        return f"the heuristic did not reach the target with {max_sites} sites (not proven impossible)"
    return ""
