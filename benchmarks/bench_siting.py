"""Station siting (MCLP) benchmark: our fast and exact solvers against PySAL spopt on Shanghai instances.

Usage: ``.venv/bin/python benchmarks/bench_siting.py [--k 20 50] [--exact-time-limit 120]
[--spopt-timeout 300] [--no-spopt] [--no-large]``; prints a table and writes benchmarks/results/siting.json.

Two instances share the demand and the existing stations (all in the project's metric CRS):

* demand: 200 m cells over the suburban districts. If ``geoserver.core.demand.grid_demand`` exists it is
  used; otherwise each district's census population is spread over its cells: the rural part
  (population - urban population) evenly, the urban part in proportion to a mix of a kernel density of
  the district's stations (60 %) and seeded random "towns" (Gaussian blobs, 40 %), so that some
  populous places lack stations, as in reality;
* candidates, "main": a 700 m grid inside the same districts, kept where the population density is at
  least 3,000 people/km2 (built-up land, where a host building can be found); spopt runs on this one;
* candidates, "large": a 500 m grid over all of the suburban districts' land, no density filter (about
  24,000 sites); only our solvers run on it (spopt's dense matrices and per-entry model building would
  not fit the time budget; an extrapolated estimate is reported instead);
* coverage: candidate within 1,000 m of the cell centre; ``already_covered``: an existing station
  within 1,000 m (scipy cKDTree on metric coordinates).

spopt does not know that existing facilities are fixed. It is given only the demand rows that are not
covered yet and that at least one candidate reaches (a row nobody reaches adds nothing), so its objective
equals our ``newly_covered``; its cost matrix is 0 where our coverage matrix has an entry and 1 elsewhere,
with service radius 0.5, i.e. exactly the same coverage relation. spopt runs in a child process with a
wall-clock cap and is solved with pulp.HiGHS under the same time limit as our exact solver. Its
selection is re-scored with our evaluator on the full instance.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine  # noqa: E402

from geoserver.core import crs  # noqa: E402
from geoserver.core.siting import mclp, min_sites_for_target  # noqa: E402

CELL_M = 200.0
RADIUS_M = 1000.0
#: name -> (candidate grid spacing in m, minimum population density at the site in people per km2)
CANDIDATE_GRIDS = {"main": (700.0, 3000.0), "large": (500.0, 0.0)}
URBAN_FROM_STATIONS = 0.6
STATION_BANDWIDTH_M = 1200.0
SEED = 2026
OUT = ROOT / "benchmarks" / "results" / "siting.json"
SPOPT_NOTE = ("spopt cannot hold existing facilities fixed, so it gets only the demand not yet covered by existing "
              "stations and reached by some candidate (its objective then equals our newly_covered); cost matrix "
              "0 where our coverage matrix has an entry, 1 elsewhere, service_radius 0.5; solved with "
              "pulp.HiGHS; its selection is re-scored on the full instance")


@dataclass(frozen=True)
class Demand:
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    source: str


@dataclass(frozen=True)
class Base:
    """What every instance shares: demand, its coverage by existing stations, the suburban districts."""

    demand: Demand
    already: np.ndarray
    suburbs: object
    n_stations: int


@dataclass(frozen=True)
class Instance:
    coverage: sparse.csr_array     # candidates x demand
    weights: np.ndarray
    already: np.ndarray


# ------------------------------------------------------------------------------------------------------
# Building the instance
# ------------------------------------------------------------------------------------------------------


def metric_points(gdf) -> np.ndarray:
    x, y = crs.to_metric(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy())
    return np.column_stack([x, y])


def suburban_districts(svc):
    districts = svc.layers["districts"].gdf
    return districts[districts["zone"] == "suburban"].to_crs(crs.METRIC_CRS)


def load_demand(svc, suburbs, stations_xy: np.ndarray) -> Demand:
    """The lead's population grid if it is available, else the synthetic census-based grid."""
    try:
        from geoserver.core.demand import grid_demand
    except ImportError:
        return synthetic_demand(suburbs, stations_xy)
    grid = grid_demand(svc, cell_m=int(CELL_M))
    keep = np.isin(np.asarray(grid.district_code).astype(str), suburbs["id"].astype(str).to_numpy())
    keep &= np.asarray(grid.weight) > 0
    return Demand(np.asarray(grid.x)[keep], np.asarray(grid.y)[keep], np.asarray(grid.weight, float)[keep],
                  "geoserver.core.demand.grid_demand (suburban districts)")


def district_cells(polygon) -> np.ndarray:
    """Centres of the 200 m cells whose centre lies in the polygon."""
    x0, y0, x1, y1 = polygon.bounds
    gx, gy = np.meshgrid(np.arange(x0 + CELL_M / 2, x1, CELL_M), np.arange(y0 + CELL_M / 2, y1, CELL_M))
    inside = shapely.contains_xy(polygon, gx.ravel(), gy.ravel())
    return np.column_stack([gx.ravel()[inside], gy.ravel()[inside]])


def gaussian_sum(cells: np.ndarray, centres: np.ndarray, sigma: np.ndarray, height: np.ndarray) -> np.ndarray:
    """sum_c height_c * exp(-d^2 / 2 sigma_c^2) at every cell, truncated at 3.5 sigma."""
    tree = cKDTree(cells)
    total = np.zeros(len(cells))
    for centre, s, h in zip(centres, sigma, height):
        idx = np.asarray(tree.query_ball_point(centre, 3.5 * s), dtype=np.int64)
        d2 = ((cells[idx] - centre) ** 2).sum(axis=1)
        total[idx] += h * np.exp(-d2 / (2 * s * s))
    return total


def synthetic_demand(suburbs, stations_xy: np.ndarray) -> Demand:
    """Census population of each suburban district spread over its 200 m cells (see module docstring)."""
    rng = np.random.default_rng(SEED)
    parts = []
    for _, district in suburbs.iterrows():
        cells = district_cells(district.geometry)
        here = stations_xy[shapely.contains_xy(district.geometry, stations_xy[:, 0], stations_xy[:, 1])]
        near_stations = gaussian_sum(cells, here, np.full(len(here), STATION_BANDWIDTH_M), np.ones(len(here)))
        n_towns = max(5, int(district.geometry.area / 25e6))
        towns = cells[rng.choice(len(cells), n_towns, replace=False)]
        in_towns = gaussian_sum(cells, towns, rng.uniform(600, 1500, n_towns), rng.lognormal(0, 0.7, n_towns))
        urban_share = (URBAN_FROM_STATIONS * near_stations / near_stations.sum()
                       + (1 - URBAN_FROM_STATIONS) * in_towns / in_towns.sum())
        rural = (district.population_2020 - district.urban_population_2020) / len(cells)
        parts.append((cells, district.urban_population_2020 * urban_share + rural))
    cells = np.concatenate([c for c, _ in parts])
    weight = np.concatenate([w for _, w in parts])
    return Demand(cells[:, 0], cells[:, 1], weight,
                  "synthetic: census population spread over 200 m cells (station density + random towns)")


def candidate_sites(suburbs, demand: Demand, spacing_m: float, min_density: float) -> np.ndarray:
    """Grid points in the suburban districts whose nearest 200 m cell has at least ``min_density``."""
    region = shapely.union_all(suburbs.geometry.to_numpy())
    x0, y0, x1, y1 = region.bounds
    gx, gy = np.meshgrid(np.arange(x0, x1, spacing_m), np.arange(y0, y1, spacing_m))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    grid = grid[shapely.contains_xy(region, grid[:, 0], grid[:, 1])]
    dist, nearest = cKDTree(np.column_stack([demand.x, demand.y])).query(grid, distance_upper_bound=CELL_M)
    found = np.isfinite(dist)
    density = np.zeros(len(grid))
    density[found] = demand.weight[nearest[found]] / (CELL_M / 1000.0) ** 2
    return grid[found & (density >= min_density)]


def coverage_matrix(sites: np.ndarray, demand_xy: np.ndarray) -> sparse.csr_array:
    """Candidates x demand, True where the demand cell centre is within RADIUS_M of the site."""
    lists = cKDTree(sites).query_ball_tree(cKDTree(demand_xy), RADIUS_M)
    rows = np.repeat(np.arange(len(lists)), [len(row) for row in lists])
    cols = np.concatenate([np.asarray(row, dtype=np.int64) for row in lists])
    return sparse.csr_array((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(sites), len(demand_xy)))


def build_base() -> Base:
    from geoserver.core.service import GeoService

    svc = GeoService()
    suburbs = suburban_districts(svc)
    stations_xy = metric_points(svc.layers["stations"].gdf)
    demand = load_demand(svc, suburbs, stations_xy)
    dist, _ = cKDTree(stations_xy).query(np.column_stack([demand.x, demand.y]), distance_upper_bound=RADIUS_M)
    return Base(demand, np.isfinite(dist), suburbs, len(stations_xy))


def build_instance(base: Base, spacing_m: float, min_density: float) -> tuple[Instance, dict]:
    start = time.perf_counter()
    demand = base.demand
    sites = candidate_sites(base.suburbs, demand, spacing_m, min_density)
    coverage = coverage_matrix(sites, np.column_stack([demand.x, demand.y]))
    info = {"demand_source": demand.source, "districts": base.suburbs["name"].tolist(),
            "n_candidates": len(sites), "n_demand_units": len(demand.weight), "coverage_nnz": int(coverage.nnz),
            "total_demand": float(demand.weight.sum()),
            "covered_by_existing": float(demand.weight[base.already].sum()),
            "existing_stations": base.n_stations, "cell_m": CELL_M, "candidate_spacing_m": spacing_m,
            "min_candidate_density_per_km2": min_density, "radius_m": RADIUS_M,
            "build_s": round(time.perf_counter() - start, 2)}
    return Instance(coverage, demand.weight, base.already), info


# ------------------------------------------------------------------------------------------------------
# Runs
# ------------------------------------------------------------------------------------------------------


def model_size_listener():
    """A progress callback that remembers the MILP size our exact solver announces."""
    seen: dict = {}

    def progress(fraction: float, message: str) -> None:
        if message.startswith("solving MILP"):
            seen["model"] = message.removeprefix("solving MILP: ")

    return progress, seen


def run_ours(inst: Instance, solver: str, *, k: int | None = None, target: float | None = None,
             time_limit_s: float = 120.0) -> dict:
    progress, seen = model_size_listener()
    if k is not None:
        r = mclp(inst.coverage, inst.weights, inst.already, k, solver=solver, time_limit_s=time_limit_s,
                 progress=progress)
    else:
        r = min_sites_for_target(inst.coverage, inst.weights, inst.already, target, solver=solver,
                                 time_limit_s=time_limit_s, progress=progress)
    row = {"solver": r.solver, "status": r.status, "sites": len(r.selected), "newly_covered": r.newly_covered,
           "fraction_after": r.fraction_after, "objective_bound": r.objective_bound, "own_gap": r.gap,
           "runtime_s": round(r.runtime_s, 3), "selected": r.selected.tolist()}
    if "model" in seen:
        row["milp_size"] = seen["model"]
    return row


def newly_covered(inst: Instance, selected) -> float:
    """Demand not covered before that the selected candidates cover (the common yardstick)."""
    if len(selected) == 0:
        return 0.0
    hit = np.asarray(inst.coverage[np.asarray(selected)].sum(axis=0)).ravel() > 0
    return float(inst.weights[hit & ~inst.already].sum())


def spopt_row_ids(inst: Instance) -> np.ndarray:
    """Demand units spopt is given: not covered by an existing station and reached by some candidate."""
    reachable = np.diff(inst.coverage.tocsc().indptr) > 0
    return np.flatnonzero(~inst.already & reachable)


def spopt_rows(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """The 0/1 cost matrix (demand x candidates) and weights of the demand spopt is given."""
    rows = spopt_row_ids(inst)
    cost = np.where(inst.coverage.T.tocsr()[rows].toarray(), 0.0, 1.0)
    return cost, inst.weights[rows]


def spopt_child(cost: np.ndarray, weights: np.ndarray, ks: list[int], time_limit_s: float, queue) -> None:
    """Runs in a child process: spopt MCLP for every k, reporting each as it finishes."""
    import pulp
    from spopt.locate import MCLP

    for k in ks:
        start = time.perf_counter()
        model = MCLP.from_cost_matrix(cost, weights, service_radius=0.5, p_facilities=k)
        built = time.perf_counter()
        status = "optimal"
        try:
            model.solve(pulp.HiGHS(msg=False, timeLimit=time_limit_s), results=False)
        except RuntimeError as exc:
            status = f"error: {exc}"
        done = time.perf_counter()
        selected = [j for j, v in enumerate(model.fac_vars) if (v.value() or 0) > 0.5]
        highs = getattr(model.problem, "solverModel", None)
        if highs is not None and status == "optimal":
            status = highs.modelStatusToString(highs.getModelStatus()).lower()
        queue.put({"k": k, "selected": selected, "status": status, "build_s": round(built - start, 3),
                   "solve_s": round(done - built, 3), "runtime_s": round(done - start, 3),
                   "objective_reported": float(pulp.value(model.problem.objective) or 0.0)})


def run_spopt(inst: Instance, ks: list[int], time_limit_s: float, wall_cap_s: float) -> dict:
    """spopt for every k in a forked child with a wall-clock cap; missing k's are reported as not finished."""
    start = time.perf_counter()
    cost, weights = spopt_rows(inst)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=spopt_child, args=(cost, weights, ks, time_limit_s, queue))
    child.start()
    results = {}
    while len(results) < len(ks) and time.perf_counter() - start < wall_cap_s and child.is_alive():
        try:
            item = queue.get(timeout=1.0)
            results[item["k"]] = item
        except Exception:  # queue.Empty: keep waiting
            continue
    if child.is_alive():
        child.kill()
    child.join()
    for item in results.values():
        item["newly_covered"] = newly_covered(inst, item["selected"])
    return {"how": SPOPT_NOTE, "rows_given": int(cost.shape[0]), "dense_matrix_mb": round(cost.nbytes / 2**20, 1),
            "wall_cap_s": wall_cap_s, "runs": results}


# ------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------


def gap_to(value: float, best: float) -> float | None:
    """Relative shortfall against the exact objective (rounded so float noise does not print as -0.000 %)."""
    return None if best <= 0 else round((best - value) / best, 9) + 0.0


def mclp_table(inst: Instance, ks: list[int], exact_limit: float, spopt: dict | None) -> dict:
    table = {}
    for k in ks:
        runs = {name: run_ours(inst, name, k=k, time_limit_s=exact_limit) for name in ("greedy", "fast", "exact")}
        if spopt is not None:
            runs["spopt"] = spopt["runs"].get(k, {"status": "not finished within the wall-clock cap"})
        best = runs["exact"]["newly_covered"]
        for row in runs.values():
            if "newly_covered" in row:
                row["gap_to_exact"] = gap_to(row["newly_covered"], best)
        table[f"k={k}"] = runs
    return table


def inverse_table(inst: Instance, info: dict, exact_limit: float, points: float = 0.03) -> dict:
    target = round(info["covered_by_existing"] / info["total_demand"] + points, 4)
    runs = {name: run_ours(inst, name, target=target, time_limit_s=exact_limit) for name in ("fast", "exact")}
    for row in runs.values():
        row["extra_sites_vs_exact"] = row["sites"] - runs["exact"]["sites"]
    return {"target_fraction": target, "runs": runs}


def spopt_estimate(inst: Instance, measured: dict) -> dict | None:
    """spopt's model building is one Python term per (demand row, candidate): extrapolate from "main"."""
    builds = [run["build_s"] for run in measured["runs"].values()]
    if not builds:
        return None
    rows = len(spopt_row_ids(inst))
    per_entry = float(np.mean(builds)) / (measured["rows_given"] * measured["n_candidates"])
    entries = rows * inst.coverage.shape[0]
    return {"rows_it_would_get": rows, "dense_matrix_gb": round(entries * 8 / 2**30, 1),
            "estimated_build_s_per_k": round(per_entry * entries), "note": "extrapolated, not run"}


def note(name: str, row: dict) -> str:
    if name == "spopt" and "build_s" in row:
        return f"model build {row['build_s']:.1f} s + solve {row['solve_s']:.1f} s"
    if "milp_size" in row:
        return f"MILP after shrinking: {row['milp_size']}"
    if row.get("own_gap") is not None and name != "exact":
        return f"own bound gap {row['own_gap']:.1%}"
    return ""


def print_instance(name: str, result: dict) -> None:
    info = result["instance"]
    print(f"\n[{name}] {info['n_candidates']:,} candidates x {info['n_demand_units']:,} demand units, "
          f"{info['covered_by_existing'] / info['total_demand']:.2%} covered by existing stations")
    print(f"{'case':<8} {'solver':<22} {'status':<11} {'sites':>5} {'newly covered':>13} {'gap to exact':>12} "
          f"{'runtime s':>9}  notes")
    for case, runs in result["mclp"].items():
        for solver, row in runs.items():
            label = "spopt MCLP (HiGHS)" if solver == "spopt" else row.get("solver", solver)
            gap = row.get("gap_to_exact")
            print(f"{case:<8} {label:<22} {row.get('status', ''):<11.11} {len(row.get('selected', [])):>5} "
                  f"{row.get('newly_covered', float('nan')):>13,.0f} {'' if gap is None else f'{gap:.3%}':>12} "
                  f"{row.get('runtime_s', float('nan')):>9.2f}  {note(solver, row)}")
    inverse = result["inverse"]
    for solver, row in inverse["runs"].items():
        print(f"{'target':<8} {row['solver']:<22} {row['status']:<11.11} {row['sites']:>5} "
              f"{row['newly_covered']:>13,.0f} {row['extra_sites_vs_exact']:>+12d} {row['runtime_s']:>9.2f}  "
              f"target {inverse['target_fraction']:.2%}; gap column = extra sites")
    if result.get("spopt_setup"):
        setup = result["spopt_setup"]
        print(f"spopt: {setup['how']}; {setup['rows_given']:,} demand rows, "
              f"{setup['dense_matrix_mb']} MB dense matrix")
    if result.get("spopt_estimate"):
        est = result["spopt_estimate"]
        print(f"spopt not run: {est['rows_it_would_get']:,} rows, {est['dense_matrix_gb']} GB per dense matrix, "
              f"~{est['estimated_build_s_per_k']:,} s model build per k (extrapolated)")


def run_case(inst: Instance, info: dict, args, spopt: dict | None) -> dict:
    return {"instance": info, "spopt_setup": None if spopt is None else {k: v for k, v in spopt.items() if k != "runs"},
            "mclp": mclp_table(inst, args.k, args.exact_time_limit, spopt),
            "inverse": inverse_table(inst, info, args.exact_time_limit)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--exact-time-limit", type=float, default=120.0)
    parser.add_argument("--spopt-timeout", type=float, default=300.0, help="wall-clock cap for all spopt runs")
    parser.add_argument("--no-spopt", action="store_true")
    parser.add_argument("--no-large", action="store_true", help="skip the 24,000-candidate instance")
    args = parser.parse_args()
    started = time.perf_counter()
    base = build_base()
    result = {"machine": machine(), "exact_time_limit_s": args.exact_time_limit, "instances": {}}
    inst, info = build_instance(base, *CANDIDATE_GRIDS["main"])
    spopt = None if args.no_spopt else run_spopt(inst, args.k, args.exact_time_limit, args.spopt_timeout)
    if spopt is not None:
        spopt["n_candidates"] = info["n_candidates"]
    result["instances"]["main"] = run_case(inst, info, args, spopt)
    print_instance("main", result["instances"]["main"])
    if not args.no_large:
        inst, info = build_instance(base, *CANDIDATE_GRIDS["large"])
        case = run_case(inst, info, args, None)
        case["spopt_estimate"] = None if spopt is None else spopt_estimate(inst, spopt)
        result["instances"]["large"] = case
        print_instance("large", case)
    result["total_runtime_s"] = round(time.perf_counter() - started, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\ntotal {result['total_runtime_s']:.0f} s; wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
