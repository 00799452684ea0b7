"""Station siting core (MCLP and fewest sites for a coverage target) on small hand-built instances."""

import dataclasses
import itertools
import time

import numpy as np
import pytest
from scipy import sparse

from geoserver.core.siting import SitingResult, mclp, min_sites_for_target


def matrix(rows):
    return sparse.csr_array(np.array(rows, dtype=bool))


# Greedy trap: site 0 serves the four middle units, sites 1 and 2 the left and right halves. Greedy takes
# site 0 first and then gains only one unit more; sites 1 + 2 serve all six.
TRAP = matrix([[0, 1, 1, 1, 1, 0],
               [1, 1, 1, 0, 0, 0],
               [0, 0, 0, 1, 1, 1]])
ONES6 = np.ones(6)
NONE6 = np.zeros(6, dtype=bool)


def random_instance(seed, n_candidates=8, n_demand=30):
    rng = np.random.default_rng(seed)
    coverage = sparse.csr_array(rng.random((n_candidates, n_demand)) < 0.25)
    weights = rng.integers(1, 10, n_demand).astype(float)
    return coverage, weights, rng.random(n_demand) < 0.2


def brute_force_best(coverage, weights, already, k):
    dense = coverage.toarray()
    return max(weights[dense[list(combo)].any(axis=0) & ~already].sum()
               for combo in itertools.combinations(range(dense.shape[0]), k))


def bigger_instance(seed=0, n_candidates=400, n_demand=6000, radius=1500.0):
    """Random points on a 25 km square with a disc catchment: big enough for HiGHS to branch."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    demand = rng.random((n_demand, 2)) * 25000
    sites = rng.random((n_candidates, 2)) * 25000
    lists = cKDTree(sites).query_ball_tree(cKDTree(demand), radius)
    rows = np.repeat(np.arange(n_candidates), [len(row) for row in lists])
    cols = np.concatenate([np.asarray(row, dtype=np.int64) for row in lists])
    coverage = sparse.csr_array((np.ones(len(rows), bool), (rows, cols)), shape=(n_candidates, n_demand))
    return coverage, rng.lognormal(0, 1, n_demand), rng.random(n_demand) < 0.3


# ---------------------------------------------------------------------------------------------- basics


@pytest.mark.parametrize("solver", ["fast", "greedy", "exact"])
def test_covered_and_uncovered_cell_with_one_site_serving_both(solver):
    r = mclp(matrix([[1, 1]]), np.array([3.0, 4.0]), np.array([True, False]), k=1, solver=solver)
    assert r.selected.tolist() == [0]
    assert r.new_coverage_by_site.tolist() == [4.0]
    assert (r.newly_covered, r.covered_before, r.covered_after, r.total_demand) == (4.0, 3.0, 7.0, 7.0)
    assert r.covered_mask_after.tolist() == [True, True]
    assert r.status == "optimal"
    assert r.objective_bound == pytest.approx(4.0) and r.gap == pytest.approx(0.0)
    assert (r.k, r.target_fraction, r.max_fraction) == (1, None, 1.0)


def test_result_is_frozen():
    r = mclp(matrix([[1]]), np.ones(1), np.zeros(1, bool), k=1)
    assert isinstance(r, SitingResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.status = "optimal"


def test_new_coverage_is_attributed_once_in_selected_order():
    coverage = matrix([[1, 1, 1, 0, 0],
                       [0, 0, 1, 1, 0],
                       [0, 0, 0, 0, 1]])
    r = mclp(coverage, np.array([1.0, 2.0, 4.0, 8.0, 0.5]), np.zeros(5, bool), k=3)
    assert r.selected.tolist() == [1, 0, 2]     # 12, then 3 more (unit 2 already taken), then 0.5
    assert r.new_coverage_by_site.tolist() == [12.0, 3.0, 0.5]
    assert r.newly_covered == 15.5
    assert r.covered_mask_after.all()


def test_selection_stops_when_no_site_adds_coverage():
    coverage = matrix([[1, 0], [1, 0], [0, 0]])
    r = mclp(coverage, np.array([2.0, 5.0]), np.zeros(2, bool), k=3, solver="exact")
    assert r.selected.tolist() == [0]
    assert r.newly_covered == 2.0
    assert r.status == "optimal"


def test_merged_demand_and_dominated_candidates_report_original_indices():
    # Candidates 0 and 1 are twins; 2 is contained in 3. Units 0 and 1 have the same candidate set.
    coverage = matrix([[1, 1, 0, 0],
                       [1, 1, 0, 0],
                       [0, 0, 1, 0],
                       [0, 0, 1, 1]])
    for solver in ("fast", "exact"):
        r = mclp(coverage, np.array([1.0, 2.0, 4.0, 8.0]), np.zeros(4, bool), k=2, solver=solver)
        assert r.selected.tolist() == [3, 0]
        assert r.new_coverage_by_site.tolist() == [12.0, 3.0]


# --------------------------------------------------------------------------------- greedy vs swap vs exact


def test_greedy_is_trapped_and_swap_and_exact_find_the_optimum():
    greedy = mclp(TRAP, ONES6, NONE6, k=2, solver="greedy")
    assert greedy.selected.tolist() == [0, 1]
    assert greedy.newly_covered == 5.0
    assert greedy.status == "feasible"
    assert greedy.objective_bound == 6.0      # f(S) + top-2 gains is capped by the coverable total
    for solver, name in (("fast", "greedy+swap"), ("exact", "milp (HiGHS via PuLP)")):
        r = mclp(TRAP, ONES6, NONE6, k=2, solver=solver)
        assert r.selected.tolist() == [1, 2]
        assert r.new_coverage_by_site.tolist() == [3.0, 3.0]
        assert r.newly_covered == 6.0
        assert (r.solver, r.status, r.gap) == (name, "optimal", 0.0)


def test_exact_matches_brute_force_and_fast_stays_close_on_random_instances():
    agree = 0
    for seed in range(12):
        coverage, weights, already = random_instance(seed)
        for k in (1, 2, 3):
            best = brute_force_best(coverage, weights, already, k)
            exact = mclp(coverage, weights, already, k, solver="exact")
            fast = mclp(coverage, weights, already, k)
            assert exact.newly_covered == pytest.approx(best)
            assert exact.status == "optimal"
            assert 0.98 * best <= fast.newly_covered <= best + 1e-9
            assert fast.objective_bound >= best - 1e-9
            assert fast.new_coverage_by_site.sum() == pytest.approx(fast.newly_covered)
            agree += fast.newly_covered == pytest.approx(best)
    assert agree >= 35  # of 36; seed 8 with k = 3 is a 1-swap local optimum (91 of 92)


def test_exact_reports_bound_and_gap():
    coverage, weights, already = bigger_instance()
    r = mclp(coverage, weights, already, k=10, solver="exact")
    assert r.status == "optimal"
    assert r.objective_bound >= r.newly_covered - 1e-6
    assert r.gap <= 1e-6
    fast = mclp(coverage, weights, already, k=10)
    assert fast.newly_covered <= r.newly_covered + 1e-9
    assert fast.newly_covered >= 0.98 * r.newly_covered


# -------------------------------------------------------------------------------------- inverse problem


@pytest.mark.parametrize("solver", ["fast", "exact"])
def test_min_sites_literal_cases(solver):
    coverage = matrix([[1, 1, 0, 0],
                       [0, 0, 1, 0],
                       [0, 0, 1, 1]])
    already = np.array([True, False, False, False])
    full = min_sites_for_target(coverage, np.ones(4), already, 1.0, solver=solver)
    assert sorted(full.selected.tolist()) == [0, 2]
    assert (full.covered_after, full.status, full.objective_bound, full.gap) == (4.0, "optimal", 2.0, 0.0)
    assert (full.k, full.target_fraction) == (None, 1.0)
    half = min_sites_for_target(coverage, np.ones(4), already, 0.75, solver=solver)
    assert len(half.selected) == 1 and half.covered_after == 3.0 and half.status == "optimal"


@pytest.mark.parametrize("solver", ["fast", "exact"])
def test_min_sites_trap_needs_two_not_three(solver):
    r = min_sites_for_target(TRAP, ONES6, NONE6, 1.0, solver=solver)
    assert r.selected.tolist() == [1, 2]
    assert r.status == "optimal"


@pytest.mark.parametrize("solver", ["fast", "exact"])
def test_target_already_met_selects_nothing(solver):
    r = min_sites_for_target(matrix([[0, 1]]), np.array([9.0, 1.0]), np.array([True, False]), 0.9, solver=solver)
    assert r.selected.tolist() == []
    assert (r.newly_covered, r.status, r.message) == (0.0, "optimal", "target already met")


@pytest.mark.parametrize("solver", ["fast", "exact"])
def test_unreachable_target_is_infeasible_with_reachable_fraction(solver):
    coverage = matrix([[1, 0, 0, 0], [0, 1, 0, 0]])
    r = min_sites_for_target(coverage, np.ones(4), np.zeros(4, bool), 0.8, solver=solver)
    assert r.status == "infeasible"
    assert r.max_fraction == 0.5
    assert "50.0000%" in r.message
    assert r.selected.tolist() == []


@pytest.mark.parametrize("solver", ["fast", "exact"])
def test_max_sites_too_small_is_infeasible(solver):
    coverage = matrix([[1, 1, 0, 0], [0, 0, 1, 1]])
    r = min_sites_for_target(coverage, np.ones(4), np.zeros(4, bool), 1.0, solver=solver, max_sites=1)
    assert r.status == "infeasible"
    assert "at most 1" in r.message


# ---------------------------------------------------------------------------------- progress and cancel


def test_progress_is_reported_from_start_to_finish():
    calls = []
    mclp(TRAP, ONES6, NONE6, k=2, progress=lambda fraction, message: calls.append((fraction, message)))
    fractions = [f for f, _ in calls]
    assert len(calls) >= 2
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert all(isinstance(m, str) and m for _, m in calls)


@pytest.mark.parametrize("solver", ["fast", "exact"])
@pytest.mark.parametrize("problem", ["mclp", "min_sites"])
def test_cancel_after_first_progress_call(solver, problem):
    seen = []
    kwargs = dict(solver=solver, progress=lambda f, m: seen.append(m), cancel=lambda: bool(seen))
    if problem == "mclp":
        r = mclp(TRAP, ONES6, NONE6, k=2, **kwargs)
    else:
        r = min_sites_for_target(TRAP, ONES6, NONE6, 1.0, **kwargs)
    assert r.status == "cancelled"
    assert r.selected.tolist() == []     # nothing had been chosen yet: the best found so far is empty
    assert r.covered_after == r.covered_before


def test_cancel_interrupts_highs_and_keeps_the_best_solution_so_far():
    coverage, weights, already = bigger_instance(seed=1, n_candidates=1500, n_demand=20000, radius=900.0)
    state = {}

    def progress(fraction, message):
        if message.startswith("solving MILP"):
            state["solving_since"] = time.perf_counter()

    r = mclp(coverage, weights, already, k=40, solver="exact", time_limit_s=60, progress=progress,
             cancel=lambda: "solving_since" in state)
    assert r.status == "cancelled"
    assert time.perf_counter() - state["solving_since"] < 1.0
    assert len(r.selected) == 40 and r.newly_covered > 0     # the warm start (greedy + swap) at least


def test_time_limit_stops_the_exact_solver():
    coverage, weights, already = bigger_instance(seed=1, n_candidates=1500, n_demand=20000, radius=900.0)
    r = mclp(coverage, weights, already, k=40, solver="exact", time_limit_s=0.5)
    assert r.status == "time_limit"
    assert r.runtime_s < 3.0
    assert len(r.selected) == 40


# ------------------------------------------------------------------------------------------ edge cases


@pytest.mark.parametrize("solver", ["fast", "exact"])
def test_zero_demand(solver):
    r = mclp(TRAP, np.zeros(6), NONE6, k=2, solver=solver)
    assert r.selected.tolist() == [] and r.newly_covered == 0.0 and r.total_demand == 0.0
    assert (r.status, r.gap, r.fraction_after) == ("optimal", 0.0, 1.0)
    inverse = min_sites_for_target(TRAP, np.zeros(6), NONE6, 1.0, solver=solver)
    assert inverse.selected.tolist() == [] and inverse.status == "optimal"


@pytest.mark.parametrize("solver", ["fast", "exact"])
def test_everything_already_covered(solver):
    r = mclp(TRAP, ONES6, np.ones(6, bool), k=1, solver=solver)
    assert r.selected.tolist() == []
    assert (r.covered_before, r.covered_after, r.newly_covered, r.status) == (6.0, 6.0, 0.0, "optimal")
    assert r.fraction_before == 1.0 and r.covered_mask_after.all()


def test_dense_input_and_integer_already_covered_are_accepted():
    r = mclp(np.array([[0, 1], [1, 1]]), [1, 2], [1, 0], k=1)
    assert r.selected.tolist() == [0]
    assert r.covered_after == 3.0


# ----------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("kwargs, message", [
    (dict(weights=np.ones(5)), r"weights must have shape \(6,\)"),
    (dict(weights=np.r_[np.ones(5), np.nan]), "finite"),
    (dict(weights=np.r_[np.ones(5), -1.0]), "non-negative"),
    (dict(already_covered=np.zeros(7, bool)), r"already_covered must have shape \(6,\)"),
    (dict(already_covered=np.full(6, 2)), "boolean"),
    (dict(coverage=np.ones(6)), "2-D"),
    (dict(k=0), "at least 1"),
    (dict(k=4), "exceeds the number of candidate sites \\(3\\)"),
    (dict(k=1.5), "integer"),
    (dict(k=True), "integer"),
    (dict(solver="magic"), "unknown solver"),
    (dict(time_limit_s=0), "time_limit_s must be positive"),
])
def test_mclp_rejects_bad_input(kwargs, message):
    args = dict(coverage=TRAP, weights=ONES6, already_covered=NONE6, k=2) | kwargs
    with pytest.raises(ValueError, match=message):
        mclp(args.pop("coverage"), args.pop("weights"), args.pop("already_covered"), **args)


@pytest.mark.parametrize("kwargs, message", [
    (dict(target_fraction=0.0), r"target_fraction must be in \(0, 1\]"),
    (dict(target_fraction=1.5), r"target_fraction must be in \(0, 1\]"),
    (dict(target_fraction="most"), "must be a number"),
    (dict(max_sites=0), "max_sites must be a positive integer"),
])
def test_min_sites_rejects_bad_input(kwargs, message):
    args = dict(target_fraction=0.5) | kwargs
    with pytest.raises(ValueError, match=message):
        min_sites_for_target(TRAP, ONES6, NONE6, **args)


def test_docstring_examples_run():
    import doctest

    from geoserver.core import siting

    assert doctest.testmod(siting).failed == 0
