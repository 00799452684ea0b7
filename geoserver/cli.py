"""Command line: ``geoserver serve | dev | layers``."""

from __future__ import annotations

import os
import sys

import click

from .core.errors import DataError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="GEOSERVER_DATA_DIR",
              help="Folder of layer data files (default: the bundled data/geo/; env GEOSERVER_DATA_DIR).")
@click.option("--layers-dir", type=click.Path(file_okay=False), envvar="GEOSERVER_LAYERS_DIR",
              help="Folder of layer specs (default: the bundled layers/; env GEOSERVER_LAYERS_DIR).")
@click.pass_context
def main(ctx, data_dir, layers_dir):
    """Shanghai union service map server."""
    ctx.obj = {"data_dir": data_dir, "layers_dir": layers_dir}


def _load_service(ctx):
    from .core.service import GeoService
    try:
        return GeoService(ctx.obj["data_dir"], ctx.obj["layers_dir"])
    except DataError as exc:
        raise click.ClickException(exc.message) from None


@main.command()
@click.pass_context
def layers(ctx):
    """Print each layer with its feature count and data version."""
    svc = _load_service(ctx)
    click.echo(f"data directory: {svc.data_dir}")
    click.echo(f"{'layer':<18}{'features':>9}  {'data version':<18}{'modified (UTC)':<22}title")
    for lid, layer in svc.layers.items():
        sample = " [SAMPLE DATA]" if layer.has_sample_data else ""
        click.echo(f"{lid:<18}{layer.count:>9}  {layer.version:<18}{layer.modified:%Y-%m-%d %H:%M:%S}    "
                   f"{layer.spec.title_zh}{sample}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=lambda: os.cpu_count() or 1, show_default="one per core",
              type=click.IntRange(1, 64), help="Worker processes, each with its own copy of the layers.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Python threads per worker (1 is fastest for this CPU-bound app).")
@click.pass_context
def serve(ctx, host, port, workers, threads):
    """Run the app under Granian, a production HTTP server, with several worker processes."""
    from granian import Granian
    from granian.constants import Interfaces

    svc = _load_service(ctx)  # fail fast, with a clear message, before any worker starts
    os.environ["GEOSERVER_DATA_DIR"] = str(svc.data_dir.resolve())
    os.environ["GEOSERVER_LAYERS_DIR"] = str(svc.layers_dir.resolve())
    from . import wsgi
    wsgi.preload(svc)  # loaded once here: forked workers share it (copy-on-write) and start at once
    click.echo(f"serving {svc.data_dir} on http://{host}:{port} with {workers} workers", err=True)
    Granian("geoserver.wsgi:app", address=host, port=port, interface=Interfaces.WSGI, workers=workers,
            blocking_threads=threads, websockets=False, log_access=False, respawn_failed_workers=True).serve()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.pass_context
def dev(ctx, host, port):
    """Run Flask's development server (for development only, never in production)."""
    from .web import create_app
    create_app(service=_load_service(ctx)).run(host=host, port=port, debug=False)


def _catchment_options(fn):
    """Options shared by `report coverage` and `plan`."""
    options = [
        click.option("--layer", default="stations", show_default=True, help="Facility layer."),
        click.option("--radius-m", type=float, help="Straight-line catchment radius in metres."),
        click.option("--minutes", type=float, help="Travel-time catchment (with --mode)."),
        click.option("--mode", type=click.Choice(["walk", "ebike", "car"]), help="Travel mode for --minutes."),
        click.option("--services", default="", help="Only facilities offering all these services (comma-separated)."),
        click.option("--open-at", default="", help="Only facilities open at this ISO time (Shanghai time)."),
        click.option("--demand", default="grid", show_default=True,
                     help="Demand layer: grid (census model) or a file name in <data dir>/demand/."),
        click.option("--cell-m", default=200.0, show_default=True, type=float, help="Demand grid cell size."),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                     help="Folder for report.html, CSV and GeoJSON (replaced atomically)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _args(**kw) -> dict:
    return {k: v for k, v in kw.items() if v not in (None, "")}


class _Steps:
    """A progress bar over named steps (stderr), closed on exit even after Ctrl-C."""

    def __init__(self, total: int):
        from tqdm import tqdm
        self.bar = tqdm(total=total, unit="step", file=sys.stderr, leave=False, dynamic_ncols=True)

    def step(self, name: str) -> None:
        self.bar.set_description(name)
        self.bar.update(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()


def _run_domain(fn):
    """Run ``fn`` turning domain errors into one-line CLI errors (no traceback)."""
    from .core.errors import GeoServerError
    try:
        return fn()
    except GeoServerError as exc:
        where = f" ({exc.parameter})" if exc.parameter else ""
        raise click.ClickException(f"{exc.message}{where}") from None


@main.group()
def report():
    """Write planning reports (HTML with map, CSV, GeoJSON)."""


@report.command("coverage")
@_catchment_options
@click.pass_context
def report_coverage(ctx, layer, radius_m, minutes, mode, services, open_at, demand, cell_m, out_dir):
    """Coverage of a layer by district, the gaps it leaves, as a self-contained report."""
    from .core.catchment_query import parse_catchment, parse_filters
    from .core.coverage import find_gaps
    from .render.report import write_coverage_report

    args = _args(radius_m=radius_m, minutes=minutes, mode=mode, services=services, open_at=open_at)
    with _Steps(5) as steps:
        svc = _load_service(ctx)
        steps.step("demand")

        def run():
            catchment = parse_catchment(args, default_radius_m=svc.point_layer(layer).spec.catchment_radius_m)
            svc_filters = parse_filters(args, svc.vocab)
            d = svc.demand(demand, cell_m)
            steps.step("coverage")
            result = svc.coverage(layer, catchment, d, *svc_filters)
            steps.step("gaps")
            gaps = find_gaps(result)
            steps.step("report")
            return result, write_coverage_report(out_dir, svc, result, gaps)

        result, paths = _run_domain(run)
        steps.step("done")
    totals = result.totals()
    click.echo(f"{layer}: {totals['covered_pct']} % of {totals['demand']:,.0f} people covered "
               f"({result.catchment.describe()})")
    for name, path in paths.items():
        click.echo(f"  wrote {path}")


@main.command()
@_catchment_options
@click.option("--k", type=click.IntRange(1, 500), help="Number of new sites.")
@click.option("--target-pct", type=float, help="Instead of --k: the fewest sites reaching this coverage %.")
@click.option("--area", default="suburban", type=click.Choice(["suburban", "all"]), show_default=True)
@click.option("--districts", default="", help="Limit candidates to these districts (names or codes, comma-separated).")
@click.option("--candidates", default="grid", type=click.Choice(["grid", "layer", "both"]), show_default=True)
@click.option("--candidate-layer", default=None, help="Point layer of possible hosts (with --candidates layer/both).")
@click.option("--spacing-m", type=float, help="Candidate grid spacing (default: automatic, at least 500 m).")
@click.option("--solver", default="fast", type=click.Choice(["fast", "exact"]), show_default=True)
@click.option("--time-limit-s", default=60.0, show_default=True, type=float)
@click.pass_context
def plan(ctx, layer, radius_m, minutes, mode, services, open_at, demand, cell_m, out_dir, k, target_pct, area,
         districts, candidates, candidate_layer, spacing_m, solver, time_limit_s):
    """Propose new sites (maximal covering) and write a plan report."""
    from tqdm import tqdm

    from .core.planning import build_problem, coverage_after, parse_siting_request, sites_frame, solve
    from .render.report import write_plan_report

    if k is None and target_pct is None:
        k = 20
    body = _args(layer=layer, k=k, target_pct=target_pct, radius_m=radius_m, minutes=minutes, mode=mode,
                 services=services, open_at=open_at, demand=demand, cell_m=cell_m, candidates=candidates,
                 candidate_layer=candidate_layer, spacing_m=spacing_m, solver=solver, time_limit_s=time_limit_s)
    if districts:
        body["districts"] = districts
    else:
        body["area"] = area
    svc = _load_service(ctx)

    def run():
        req = parse_siting_request(body, svc)
        click.echo("building the instance (demand, coverage, candidates) ...", err=True)
        problem = build_problem(svc, req)
        click.echo(f"{problem.candidates.size:,} candidates, {problem.before.demand.size:,} demand points, "
                   f"{problem.pairs:,} candidate-demand pairs; solving ({req.solver}) ...", err=True)
        with tqdm(total=100, unit="%", file=sys.stderr, leave=False) as bar:
            def progress(fraction, message):
                bar.set_description(str(message)[:40])
                bar.update(max(0, round(100 * fraction) - bar.n))
            result = solve(svc, problem, progress=progress)
        after = coverage_after(result)
        paths = write_plan_report(out_dir, svc, problem.before, after, sites_frame(result), result.summary())
        return result, paths

    result, paths = _run_domain(run)
    s = result.summary()
    click.echo(f"{s['sites']} new sites: coverage {s['covered_before_pct']} % -> {s['covered_after_pct']} % "
               f"(+{s['objective_newly_covered']:,.0f} people; {s['solver']}, {s['status']}, "
               f"gap {s['gap'] if s['gap'] is not None else 'n/a'}, {s['solver_runtime_s']} s)")
    for name, path in paths.items():
        click.echo(f"  wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
