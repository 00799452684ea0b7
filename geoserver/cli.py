"""Command line: ``geoserver serve | dev | layers | import | history | rollback | token | report | plan``."""

from __future__ import annotations

import os
import sys

import click



@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="GEOSERVER_DATA_DIR",
              help="Folder of layer data files (default: the bundled data/geo/; env GEOSERVER_DATA_DIR).")
@click.option("--layers-dir", type=click.Path(file_okay=False), envvar="GEOSERVER_LAYERS_DIR",
              help="Folder of layer specs (default: the bundled layers/; env GEOSERVER_LAYERS_DIR).")
@click.option("--database-url", envvar="GEOSERVER_DATABASE_URL", metavar="postgresql://…",
              help="Keep layers, history, audit log, tokens, geocoding cache and jobs in this PostgreSQL/PostGIS "
                   "database instead of the data directory's files (shared by server replicas; create it with "
                   "'geoserver db init'; env GEOSERVER_DATABASE_URL).")
@click.pass_context
def main(ctx, data_dir, layers_dir, database_url):
    """Shanghai union service map server."""
    ctx.obj = {"data_dir": data_dir, "layers_dir": layers_dir, "database_url": database_url}


def _load_service(ctx):
    from .core.errors import GeoServerError
    from .core.service import GeoService
    try:
        svc = GeoService(ctx.obj["data_dir"], ctx.obj["layers_dir"], database_url=ctx.obj.get("database_url"))
    except GeoServerError as exc:
        raise click.ClickException(exc.message) from None
    ctx.find_root().call_on_close(svc.storage.release)   # database connections closed when the command ends
    return svc


@main.command()
@click.pass_context
def layers(ctx):
    """Print each layer with its feature count (public), pending rows (待定位, not public) and data version."""
    svc = _load_service(ctx)
    click.echo(f"data directory: {svc.data_dir}")
    click.echo(f"{'layer':<18}{'features':>9}{'pending':>9}  {'data version':<18}{'modified (UTC)':<22}title")
    for lid, layer in svc.layers.items():
        sample = " [SAMPLE DATA]" if layer.has_sample_data else ""
        pending = layer.pending_count if layer.spec.is_point else "-"
        click.echo(f"{lid:<18}{layer.count:>9}{pending:>9}  {layer.version:<18}{layer.modified:%Y-%m-%d %H:%M:%S}    "
                   f"{layer.spec.title_zh}{sample}")
    if any(layer.pending_count for layer in svc.layers.values()):
        click.echo("pending rows have no confirmed position and are not public: 'geoserver geocode LAYER', or place "
                   "them on the map in /admin")


@main.command()
@click.option("--reuse-port", is_flag=True,
              help="Start even if another server listens on the port (both share it: a deliberate zero-downtime "
                   "handover; stop the old one afterwards). Without it, a port in use is an error.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=lambda: os.cpu_count() or 1, show_default="one per core",
              type=click.IntRange(1, 64), help="Worker processes, each with its own copy of the layers.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Request threads per worker: while one waits for a planning answer (computed in a separate "
                   "process), the others keep answering riders.")
@click.pass_context
def serve(ctx, host, port, workers, threads, reuse_port):
    """Run the app under Granian, a production HTTP server, with several worker processes."""
    if not reuse_port:
        _refuse_port_in_use(host, port)  # Granian binds with SO_REUSEPORT: it would share the port silently
    from granian import Granian
    from granian.constants import Interfaces

    svc = _load_service(ctx)  # fail fast, with a clear message, before any worker starts
    from .core.manage import DataManager
    _run_domain(lambda: DataManager(svc).geocoder())  # a geocoder configured without a key, an unknown provider
    from .web.heavy import SERVE_DEFAULTS
    for key, value in SERVE_DEFAULTS.items():   # planning in its own processes, a per-client rate (overridable)
        os.environ.setdefault(key, value)
    os.environ["GEOSERVER_REQUEST_THREADS"] = str(threads)   # planning may hold at most half of them
    os.environ["GEOSERVER_DATA_DIR"] = str(svc.data_dir.resolve())
    if ctx.obj.get("database_url"):   # a worker Granian builds afresh (not from the preloaded app) uses the same store
        os.environ["GEOSERVER_DATABASE_URL"] = ctx.obj["database_url"]
    os.environ["GEOSERVER_LAYERS_DIR"] = str(svc.layers_dir.resolve())
    from . import wsgi
    wsgi.preload(svc)  # loaded once here: forked workers share it (copy-on-write) and start at once
    svc.storage.release()   # no database connection crosses the fork: each worker opens its own
    click.echo(f"serving {svc.storage.describe()} on http://{host}:{port} with {workers} workers", err=True)
    Granian("geoserver.wsgi:app", address=host, port=port, interface=Interfaces.WSGI, workers=workers,
            blocking_threads=threads, websockets=False, log_access=False, respawn_failed_workers=True).serve()


def _refuse_port_in_use(host: str, port: int) -> None:
    """Exit with a one-line error if ``host:port`` is taken. The probe binds with SO_REUSEADDR (a port in TIME_WAIT
    after a stop is free) but without SO_REUSEPORT, so a listener that Granian would share the port with counts
    as taken. Other problems (an unknown host, a privileged port) are left to Granian to report."""
    import errno
    import socket

    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return
    for family, kind, proto, _, address in addresses:
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise click.ClickException(f"port {port} on {host} is already in use (another geoserver "
                                               "serve?); stop it or choose --port") from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.pass_context
def dev(ctx, host, port):
    """Run Flask's development server (for development only, never in production)."""
    from .web import create_app
    create_app(service=_load_service(ctx)).run(host=host, port=port, debug=False)


def _operation(name: str):
    """A declared operation (geoserver/operations): its params become the command's options, help and defaults."""
    from .operations import get
    return get(name)


_OUT_OPTION = click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                           help="Folder for report.html, report.pdf, CSV and GeoJSON (replaced atomically).")
_NO_PDF_OPTION = click.option("--no-pdf", "no_pdf", is_flag=True,
                              help="Do not write report.pdf (the A4 PDF adds 1-2 s).")


def _tiles_options(fn):
    """--tiles-url / --tiles-attribution: a base map under the report's interactive map (default: the server's
    GEOSERVER_TILES_URL / GEOSERVER_TILES_ATTRIBUTION; none: the report needs no network)."""
    fn = click.option("--tiles-attribution", envvar="GEOSERVER_TILES_ATTRIBUTION",
                      help="Attribution the tile provider's terms ask for (env GEOSERVER_TILES_ATTRIBUTION).")(fn)
    return click.option("--tiles-url", envvar="GEOSERVER_TILES_URL",
                        help="WGS84 {z}/{x}/{y} tile template for the report's map (env GEOSERVER_TILES_URL; "
                             "default: no base map, the report works offline).")(fn)


def _tiles(url: str | None, attribution: str | None) -> dict | None:
    """The base-map dict of planning_map for the tiles options; a template without {z}, {x}, {y} is refused."""
    if not url:
        return None
    from urllib.parse import urlsplit
    if not url.startswith(("https://", "http://")) or not all(k in url for k in ("{z}", "{x}", "{y}")):
        raise click.BadParameter("an http(s) template with {z}, {x} and {y}", param_hint="--tiles-url")
    host = urlsplit(url).hostname or "the tile server"
    return {"url": url, "attribution": attribution or f"底图 Base map: {host}", "name": "底图 Base map"}


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


def _run_report(fn):
    """``_run_domain`` for the report commands: a PDF that cannot be made is a one-line error too."""
    from .render.pdf import PdfError
    try:
        return _run_domain(fn)
    except PdfError as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def report():
    """Write planning reports (HTML with map, A4 PDF, CSV, GeoJSON)."""


@report.command("coverage")
@_operation("coverage").click_options()
@_OUT_OPTION
@_NO_PDF_OPTION
@_tiles_options
@click.pass_context
def report_coverage(ctx, out_dir, no_pdf, tiles_url, tiles_attribution, **options):
    """Coverage of a layer by district, the gaps it leaves, as a self-contained report.

    Without --radius-m or --minutes the catchment is the layer spec's catchment_radius_m (as in /api/coverage)."""
    from .core.coverage import find_gaps
    from .render.report import write_coverage_report

    tiles = _tiles(tiles_url, tiles_attribution)
    coverage = _operation("coverage")
    with _Steps(5) as steps:
        svc = _load_service(ctx)
        steps.step("demand")

        def run():
            req = coverage.parse(coverage.from_cli(options), svc)
            steps.step("coverage")
            result = coverage.result(svc, req)
            steps.step("gaps")
            gaps = find_gaps(result)
            steps.step("report")
            return result, write_coverage_report(out_dir, svc, result, gaps, pdf=not no_pdf, tiles=tiles)

        result, paths = _run_report(run)
        steps.step("done")
    totals = result.totals()
    click.echo(f"{result.layer}: {totals['covered_pct']} % of {totals['demand']:,.0f} people covered "
               f"({result.catchment.describe()})")
    for name, path in paths.items():
        click.echo(f"  wrote {path}")


@report.command("scenario")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_OUT_OPTION
@_NO_PDF_OPTION
@click.option("--title", help="Report title (default: from the scenario's name).")
@_tiles_options
@click.pass_context
def report_scenario(ctx, file, out_dir, no_pdf, title, tiles_url, tiles_attribution):
    """A what-if scenario saved by the planning tool (/planning: Save, Download JSON) as the planning report:
    coverage before and after, the added sites with the people each newly covers, the removed stations.

    FILE is the downloaded JSON ({"name", "params": {layer, radius_m | minutes and mode, services}, "add": [[lon,
    lat], ...], "remove": [ids]}) or a plain /api/coverage/scenario body."""
    import json as _json
    from pathlib import Path

    from .core.errors import InvalidQuery
    from .planning.scenario import scenario_file_body, scenario_report_inputs
    from .render.report import write_plan_report

    try:
        saved = _json.loads(Path(file).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file}: cannot be read ({exc})") from None
    except ValueError as exc:
        raise click.ClickException(f"{file}: not JSON: {exc}") from None
    tiles = _tiles(tiles_url, tiles_attribution)
    svc = _load_service(ctx)

    def run():
        body = scenario_file_body(saved)
        name = str(saved.get("name") or "").strip()[:60] if isinstance(saved, dict) else ""
        before, after, sites, info, answer = scenario_report_inputs(svc, body)
        heading = title or (f"情景规划报告 Scenario report — {name}" if name else None)
        if heading is not None and not heading.strip():
            raise InvalidQuery("the title is empty", "title")
        return answer, write_plan_report(out_dir, svc, before, after, sites, info, title=heading, pdf=not no_pdf,
                                         tiles=tiles)

    answer, paths = _run_report(run)
    t = answer.result.totals()
    click.echo(f"scenario: {t['covered_before_pct']} % -> {t['covered_after_pct']} % "
               f"({t['newly_covered']:,.0f} newly covered, {t['no_longer_covered']:,.0f} no longer covered)")
    for path in paths.values():
        click.echo(f"  wrote {path}")


@main.command()
@_operation("siting").click_options()
@_OUT_OPTION
@_NO_PDF_OPTION
@_tiles_options
@click.pass_context
def plan(ctx, out_dir, no_pdf, tiles_url, tiles_attribution, **options):
    """Propose new sites (maximal covering) and write a plan report (--k 20 when neither --k nor --target-pct is
    given; the catchment as in `report coverage`)."""
    from tqdm import tqdm

    from .core.planning import coverage_after, sites_frame
    from .render.report import write_plan_report

    siting = _operation("siting")
    body = siting.from_cli(options)
    if "k" not in body and "target_pct" not in body:
        body["k"] = 20
    tiles = _tiles(tiles_url, tiles_attribution)
    svc = _load_service(ctx)

    def run():
        req = siting.parse(body, svc)
        click.echo("building the instance (demand, coverage, candidates) ...", err=True)
        problem = siting.problem(svc, req)
        click.echo(f"{problem.candidates.size:,} candidates, {problem.before.demand.size:,} demand points, "
                   f"{problem.pairs:,} candidate-demand pairs; solving ({req.solver}) ...", err=True)
        with tqdm(total=100, unit="%", file=sys.stderr, leave=False) as bar:
            def progress(fraction, message):
                bar.set_description(str(message)[:40])
                bar.update(max(0, round(100 * fraction) - bar.n))
            result = siting.solve(svc, problem, progress=progress)
        after = coverage_after(result)
        paths = write_plan_report(out_dir, svc, problem.before, after, sites_frame(result), result.summary(),
                                  pdf=not no_pdf, tiles=tiles)
        return result, paths

    result, paths = _run_report(run)
    s = result.summary()
    click.echo(f"{s['sites']} new sites: coverage {s['covered_before_pct']} % -> {s['covered_after_pct']} % "
               f"(+{s['objective_newly_covered']:,.0f} people; {s['solver']}, {s['status']}, "
               f"gap {s['gap'] if s['gap'] is not None else 'n/a'}, {s['solver_runtime_s']} s)")
    for name, path in paths.items():
        click.echo(f"  wrote {path}")


@main.command()
@_operation("nearest").click_options()
@click.pass_context
def nearest(ctx, **options):
    """Print the nearest facilities to a point as GeoJSON (the answer of GET /api/nearest)."""
    import orjson

    op = _operation("nearest")
    svc = _load_service(ctx)
    answer = _run_domain(lambda: op(svc, op.from_cli(options)))
    click.echo(orjson.dumps(answer.to_geojson(), option=orjson.OPT_INDENT_2).decode())


def _datum(ctx, param, value):
    from .core.crs import normalise_datum
    if value is None:
        return None
    try:
        return normalise_datum(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _progress_bar(enabled, desc="checking"):
    """A per-row progress callback on stderr (tqdm), or None."""
    from tqdm import tqdm
    state = {}

    def progress(done, total):
        if "bar" not in state:
            state["bar"] = tqdm(total=total, unit="row", file=sys.stderr, leave=False, dynamic_ncols=True,
                                disable=not enabled, desc=desc)
        state["bar"].update(done - state["bar"].n)
        if done >= total:
            state["bar"].close()
    return progress


@main.command("import")
@click.argument("layer")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--crs", "datum", callback=_datum,
              help="Coordinate system of the file's coordinates: wgs84 (GPS), gcj02 (Amap/Tencent) or bd09 (Baidu); "
                   "needed when the file has coordinates (rows without them are stored as pending, 待定位).")
@click.option("--merge/--replace", "merge", default=True, show_default=True,
              help="Merge by id (add new, update existing, keep the rest) or replace the whole layer.")
@click.option("--dry-run", is_flag=True, help="Check and report only; change nothing.")
@click.option("--skip-invalid", is_flag=True,
              help="Import the valid rows and write the rejected ones to --rejects (default: refuse the whole file "
                   "if any row is invalid).")
@click.option("--rejects", type=click.Path(dir_okay=False), help="Where to write rejected rows (CSV for Excel; "
              "default: <file>.rejected.csv beside the input).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write the full report: .json, or .csv (one problem per line).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False),
              help='TOML file mapping unusual headers to fields: [columns] "站点全称" = "name".')
@click.option("--encoding", help="Text encoding of a CSV or Shapefile (default: UTF-8, else GBK/GB18030).")
@click.option("--sheet", help="Excel sheet name (default: the first).")
@click.option("--source-layer", help="Layer inside a GeoPackage (default: the first).")
@click.option("--source", "source_text", help="Value of the 'source' field for rows without one "
              "(default: import:<file name>).")
@click.option("--who", default=None, help="Name recorded in the history and audit log (default: cli:<user>).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.option("--geocode/--no-geocode", default=True, show_default=True,
              help="After the import, geocode the layer's pending rows (rows without coordinates) when a geocoder is "
                   "configured (GEOSERVER_GEOCODER); a failure leaves them pending, never fails the import.")
@click.pass_context
def import_(ctx, layer, file, datum, merge, dry_run, skip_invalid, rejects, report_path, mapping, encoding, sheet,
            source_layer, source_text, who, progress, geocode):
    """Check FILE (CSV, XLSX, GeoJSON, GPKG, SHP) and import its rows into LAYER as a new version.

    Rows without coordinates (the unions' 申报汇总表 has none) are stored as pending (待定位): kept with all their
    fields, shown to staff, never public, until geocoded or placed on the map."""
    from pathlib import Path

    from .core.importer import read_mapping_file
    from .core.manage import DataManager, ImportRefused

    svc = _load_service(ctx)
    manager = DataManager(svc)
    show = sys.stderr.isatty() if progress is None else progress

    def run():
        op = _operation("import")
        columns = read_mapping_file(Path(mapping) if mapping else None)
        req = op.parse({"layer": layer, "file": file, "crs": datum, "mode": "merge" if merge else "replace",
                        "dry_run": dry_run, "skip_invalid": skip_invalid, "encoding": encoding, "sheet": sheet,
                        "source_layer": source_layer, "source": source_text, "who": who}, manager)
        try:
            return op.run(manager, req, mapping=columns, progress=_progress_bar(show))
        except ImportRefused as exc:
            return exc

    outcome = _run_domain(run)
    refused = outcome if isinstance(outcome, ImportRefused) else None
    if refused is not None:
        report, outcome = refused.report, None
    else:
        report = outcome.report
    _print_report(report, report_path)
    if outcome is None:
        _write_rejects(report, file, rejects)
        if not report.errors or (skip_invalid and not report.records):
            raise click.ClickException(f"{refused.message} (未导入任何数据)")
        raise click.ClickException(f"nothing imported: {len(report.errors)} problems in "
                                   f"{len(report.rejected_rows)} of {report.rows} rows (未导入任何数据). Fix them, or "
                                   "use --skip-invalid to import the valid rows.")
    if outcome.dry_run:
        click.echo(f"dry run: {len(report.records)} of {report.rows} rows valid; nothing changed (仅检查，未修改数据)")
        if report.errors:
            sys.exit(1)
        return
    if report.rejected_rows:
        _write_rejects(report, file, rejects)
    c = outcome.change
    if c.version is None:
        click.echo(f"{layer}: no changes ({c.unchanged} features already as in the file); no new version")
    else:
        click.echo(f"{layer}: version {c.version}: {len(c.added)} added, {len(c.updated)} updated, {len(c.removed)} "
                   f"removed, {c.unchanged} unchanged; {c.features} features (已导入)")
    pending = svc.layer(layer).pending_count
    if not pending:
        return
    click.echo(f"{layer}: {pending} rows pending (待定位): not public until geocoded or placed on the map")
    if geocode and manager.geocoder() is not None:
        _geocode_and_report(manager, layer, who or _actor(), False, False, show)
    elif geocode:
        click.echo("no geocoder configured (GEOSERVER_GEOCODER): place them on the map in /admin, or configure one "
                   f"and run 'geoserver geocode {layer}'")


def _actor():
    from .core.store import default_actor
    return default_actor()


def _geocode_and_report(manager, layer, who, retry_failed, dry_run, show):
    """Run the geocoder over LAYER's pending rows with a progress bar; print what it did."""
    progress = _progress_bar(show, "geocoding")
    op = _operation("geocode")
    result = _run_domain(lambda: op.run(manager, op.parse({"layer": layer, "who": who, "retry_failed": retry_failed,
                                                           "dry_run": dry_run}, manager), progress=progress))
    still = ", ".join(f"{n} {reason}" for reason, n in sorted(result.pending.items())) or "none"
    click.echo(f"{layer}: geocoded {result.tried} pending rows with {result.provider} ({result.cached} of them from "
               f"the cache alone): {len(result.located)} located, still pending: {still}")
    if result.version is not None:
        click.echo(f"{layer}: version {result.version} (located rows are public now)"
                   + (f"; {result.skipped} rows changed meanwhile were left alone" if result.skipped else ""))
    elif dry_run:
        click.echo("dry run: nothing stored (仅检查，未修改数据); the answers are cached, a real run costs no new requests "
                   "for them")
    return result


def _print_report(report, report_path):
    pending = f" ({report.pending} without coordinates: pending, 待定位)" if report.pending else ""
    click.echo(f"{report.filename}: {report.rows} rows, {len(report.records)} valid{pending}, "
               f"{len(report.rejected_rows)} rejected, {len(report.errors)} errors, "
               f"{len(report.problems) - len(report.errors)} warnings")
    if report.submitter:
        labels = {"union": "区局工会", "name": "联系人", "email": "邮箱", "phone": "电话"}
        click.echo("submitted by (填报): " + ", ".join(f"{labels.get(k, k)} {v}" for k, v in report.submitter.items()))
    mapped = ", ".join(f"{k} -> {v}" for k, v in report.mapping.items())
    click.echo(f"columns: {mapped}")
    for note in report.notes:
        click.echo(f"note: {note}")
    lines = report.lines()
    for line in lines[:400]:
        click.echo(line)
    if len(lines) > 400:
        click.echo(f"... {len(lines) // 2 - 200} more problems" + (" (all in the report file)" if report_path
                                                                    else "; use --report FILE for all of them"))
    if report_path:
        from pathlib import Path
        path = Path(report_path)
        if path.suffix.lower() == ".csv":
            import csv
            import io

            from .core.export import excel_safe_row   # no cell Excel would run as a formula
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\r\n")
            w.writerow([report.row_label, "column", "severity", "code", "value", "message_zh", "message_en"])
            for p in report.problems:
                w.writerow(excel_safe_row([p.row or "", p.column or "", p.severity, p.code, p.value or "", p.zh,
                                           p.en]))
            path.write_bytes(buf.getvalue().encode("utf-8-sig"))
        else:
            import orjson
            path.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
        click.echo(f"report written to {path}")


def _write_rejects(report, file, rejects):
    if not report.rejected_rows or report.raw is None:
        return
    from pathlib import Path
    path = Path(rejects) if rejects else Path(file).with_name(Path(file).stem + ".rejected.csv")
    path.write_bytes(report.rejected_csv())
    click.echo(f"{len(report.rejected_rows)} rejected rows written to {path} (with a problems column) "
               f"(未通过的行已写入该文件)")


@main.command()
@click.argument("layer")
@click.option("--retry-failed", is_flag=True,
              help="Also ask again for rows the geocoder could not place before (not found, imprecise, another "
                   "district); by default only rows never tried, or whose address changed.")
@click.option("--dry-run", is_flag=True, help="Geocode and report, store nothing (the answers are cached).")
@click.option("--who", default=None, help="Name recorded in the history and audit log (default: cli:<user>).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@click.pass_context
def geocode(ctx, layer, retry_failed, dry_run, who, progress):
    """Geocode LAYER's pending rows (待定位) with the configured geocoder and publish the precise ones.

    Configure with GEOSERVER_GEOCODER (amap, tianditu, tencent, baidu), GEOSERVER_GEOCODER_KEY and optionally
    GEOSERVER_GEOCODER_URL (an intranet proxy). An answer is accepted only at house-number, building or POI level
    and inside the row's 行政区; the rest stay pending with the reason. Ctrl-C stops and keeps what was found."""
    from .core.manage import DataManager

    svc = _load_service(ctx)
    manager = DataManager(svc)
    _run_domain(lambda: _operation("geocode").parse({"layer": layer}, manager))
    show = sys.stderr.isatty() if progress is None else progress
    result = _geocode_and_report(manager, layer, who or _actor(), retry_failed, dry_run, show)
    if result.stopped:
        raise click.ClickException(f"stopped early: {result.stopped}")


@main.command()
@click.argument("layer")
@click.pass_context
def history(ctx, layer):
    """List the versions of LAYER (* marks the current one)."""
    from .core.manage import DataManager

    svc = _load_service(ctx)
    op = _operation("history")
    manager = DataManager(svc)
    answer = _run_domain(lambda: op(manager, {"layer": layer}))
    versions, current = answer.versions, next((v for v in answer.versions if v.number == answer.current), None)
    if not versions:
        click.echo(f"{layer}: no recorded versions yet (the first import or edit records the current data as "
                   "version 1)")
        return
    click.echo(f"{'version':<9}{'created (UTC)':<22}{'who':<22}{'action':<16}{'features':>9}  changes")
    for v in versions:
        mark = "*" if current is not None and v.number == current.number else " "
        s = v.summary
        changes = ", ".join(f"{s[k]} {k}" for k in ("added", "updated", "removed") if s.get(k)) or \
            (f"restored v{s['restored_version']}" if "restored_version" in s else s.get("note", ""))
        if s.get("file"):
            changes += f" ({s['file']})"
        click.echo(f"v{v.number:<6}{mark} {v.created:<22}{v.who[:21]:<22}{v.action:<16}{v.features:>9}  {changes}")
    if current is None:
        click.echo("note: the current data file matches no recorded version (changed outside geoserver); the next "
                   "change records it first")


@main.command()
@click.argument("layer")
@click.argument("version")
@click.option("--who", default=None, help="Name recorded in the history and audit log (default: cli:<user>).")
@click.pass_context
def rollback(ctx, layer, version, who):
    """Make VERSION of LAYER current again (recorded as a new version; nothing is deleted)."""
    from .core.manage import DataManager

    svc = _load_service(ctx)
    op = _operation("rollback")
    manager = DataManager(svc)
    restored = _run_domain(lambda: op(manager, {"layer": layer, "version": version, "who": who})).restored
    click.echo(f"{layer}: version {restored.summary['restored_version']} restored as version {restored.number} "
               f"({restored.features} features)")


@main.command("export")
@click.argument("layer")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--crs", "datum", default="wgs84", show_default=True, callback=_datum,
              help="Coordinate system of the 经度/纬度 columns: wgs84, gcj02 or bd09.")
@click.option("--version", "version_text", help="Export this version from the history instead of the current data.")
@click.pass_context
def export_cmd(ctx, layer, out, datum, version_text):
    """Write LAYER as an editable form (.csv or .xlsx, Chinese headers, WITH contact person and phone).

    The file imports back unchanged, so staff can correct it in Excel and import it again (merge by 编号)."""
    from pathlib import Path

    from .core.manage import DataManager

    svc = _load_service(ctx)
    path = Path(out)
    op = _operation("export")
    manager = DataManager(svc)
    answer = _run_domain(lambda: op(manager, {"layer": layer, "format": path.suffix.lstrip("."), "crs": datum,
                                              "version": version_text}))
    data, count = answer.data, answer.features
    path.write_bytes(data)
    click.echo(f"{layer}: {count} features written to {path} (includes private contact fields: keep it internal)")


@main.command()
@click.argument("layer")
@click.option("--keep", required=True, type=click.IntRange(1, None),
              help="How many of the newest versions to keep (the current one is always kept).")
@click.option("--who", default=None, help="Name recorded in the audit log (default: cli:<user>).")
@click.pass_context
def prune(ctx, layer, keep, who):
    """Delete old versions of LAYER from the history to bound its disk use (each version is a full copy)."""
    from .core.manage import DataManager
    from .core.store import default_actor

    svc = _load_service(ctx)
    manager = DataManager(svc)
    spec = _run_domain(lambda: manager.editable(layer)).spec
    removed = _run_domain(lambda: manager.store.prune(spec, keep, who=who or default_actor()))
    if removed:
        click.echo(f"{layer}: removed versions {', '.join(map(str, removed))}; "
                   f"{len(manager.store.versions(layer))} kept")
    else:
        click.echo(f"{layer}: nothing to remove ({len(manager.store.versions(layer))} versions)")


@main.group()
def token():
    """Admin API tokens (stored hashed)."""


def _storage(ctx):
    """The store of the command's --data-dir / --database-url, released when the command ends."""
    from .core.service import resolve_data_dir
    from .storage import open_storage
    storage = open_storage(resolve_data_dir(ctx.obj["data_dir"]), ctx.obj.get("database_url"))
    ctx.find_root().call_on_close(storage.release)
    return storage


def _token_store(ctx):
    return _storage(ctx).tokens()


@token.command("add")
@click.argument("name")
@click.option("--layers", default="*", show_default=True, help="Layers this token may change (comma-separated).")
@click.pass_context
def token_add(ctx, name, layers):
    """Create a token for operator NAME and print it (once: only its hash is stored)."""
    store = _token_store(ctx.parent)
    value = _run_domain(lambda: store.add(name, tuple(x.strip() for x in layers.split(",") if x.strip())))
    click.echo(value)
    where = store.path if hasattr(store, "path") else "the database"
    click.echo(f"token for {name!r} stored (hashed) in {where}; send it as 'Authorization: Bearer <token>'", err=True)


@token.command("list")
@click.pass_context
def token_list(ctx):
    """List operators with a token (never the tokens)."""
    for entry in _run_domain(lambda: _token_store(ctx.parent).list()):
        click.echo(f"{entry['name']:<24}{','.join(entry['layers']):<32}{entry['created']}")


@token.command("revoke")
@click.argument("name")
@click.pass_context
def token_revoke(ctx, name):
    """Delete operator NAME's token."""
    if not _run_domain(lambda: _token_store(ctx.parent).revoke(name)):
        raise click.ClickException(f"no token for {name!r}")
    click.echo(f"token for {name!r} revoked")


@main.group()
def partner():
    """Partners' read keys (map companies, 随申办): counted, rate-limited, stored hashed."""


def _partner_store(ctx):
    return _storage(ctx).partners()


@partner.command("add")
@click.argument("name")
@click.option("--layers", required=True, help="Layers the partner reads (comma-separated ids, or *).")
@click.option("--rate", default=600, show_default=True, type=int, help="Requests a minute (per server process).")
@click.pass_context
def partner_add(ctx, name, layers, rate):
    """Create the read key of partner NAME and print it (once: only its hash is stored)."""
    wanted = tuple(x.strip() for x in layers.split(",") if x.strip())
    if "*" not in wanted:
        from .core.layers import load_specs
        from .core.service import resolve_layers_dir
        _, specs = load_specs(resolve_layers_dir(ctx.parent.obj.get("layers_dir")))
        unknown = [x for x in wanted if x not in specs]
        if unknown:
            raise click.ClickException(f"unknown layer {unknown[0]!r}; layers: {', '.join(sorted(specs))}")
    store = _partner_store(ctx.parent)
    key = _run_domain(lambda: store.add(name, wanted, rate))
    click.echo(key)
    click.echo(f"key for partner {name!r} stored (hashed); send it as 'X-Partner-Key: <key>'", err=True)


@partner.command("list")
@click.pass_context
def partner_list(ctx):
    """Partners with their layers and rates (never the keys)."""
    for p in _run_domain(lambda: _partner_store(ctx.parent).list()):
        click.echo(f"{p['name']:<20}{','.join(p['layers']):<32}{p['rate_per_minute']:>7}/min  {p['created']}")


@partner.command("usage")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.pass_context
def partner_usage(ctx, as_json):
    """What each partner has used: requests, features received, refused requests, the last change-feed cursor per
    layer and when it was last seen (counts reach the store within a few seconds)."""
    import json as _json
    rows = _run_domain(lambda: _partner_store(ctx.parent).list())
    if as_json:
        click.echo(_json.dumps(rows, ensure_ascii=False, indent=1))
        return
    click.echo(f"{'partner':<20}{'requests':>10}{'features':>12}{'refused':>9}  last seen             cursors")
    for p in rows:
        cursors = ", ".join(f"{k} {v}" for k, v in sorted((p.get("cursors") or {}).items())) or "—"
        click.echo(f"{p['name']:<20}{p['requests']:>10,}{p['features']:>12,}{p['refused']:>9,}  "
                   f"{p['last_seen'] or '—':<22}{cursors}")


@partner.command("revoke")
@click.argument("name")
@click.pass_context
def partner_revoke(ctx, name):
    """Delete partner NAME's key (its requests become public reads; within seconds on running servers)."""
    if not _run_domain(lambda: _partner_store(ctx.parent).revoke(name)):
        raise click.ClickException(f"no partner {name!r}")
    click.echo(f"key of partner {name!r} revoked")


@main.group()
def db():
    """The PostgreSQL/PostGIS store (--database-url / GEOSERVER_DATABASE_URL)."""


def _postgis(ctx):
    from .storage import database_url
    from .storage.postgis import PostgisStorage
    url = database_url(ctx.obj.get("database_url"))
    if not url:
        raise click.ClickException("no database: give --database-url postgresql://user:password@host/dbname (or set "
                                   "GEOSERVER_DATABASE_URL)")
    return _run_domain(lambda: PostgisStorage(url))


@db.command("init")
@click.option("--from", "from_dir", type=click.Path(file_okay=False, exists=True),
              help="Data directory to load the layers from when the database holds none (default: --data-dir, "
                   "else the bundled data).")
@click.option("--who", default=None, help="Name recorded in the history and audit log (default: cli:<user>).")
@click.pass_context
def db_init(ctx, from_dir, who):
    """Create or upgrade the schema (versioned migrations); load the layers if the database has none yet.

    Safe to run again: applied migrations are skipped, layers already in the database are never overwritten."""
    from pathlib import Path

    from .core.layers import load_specs
    from .core.service import resolve_data_dir, resolve_layers_dir
    from .core.store import default_actor
    from .storage.postgis import initialise, redact

    root = ctx.find_root()
    storage = _postgis(root)
    vocab, specs = _run_domain(lambda: load_specs(resolve_layers_dir(root.obj["layers_dir"])))
    source = Path(from_dir) if from_dir else resolve_data_dir(root.obj["data_dir"])
    done = _run_domain(lambda: initialise(
        storage, specs, vocab, source, who or default_actor(),
        progress=lambda lid, n: click.echo(f"  {lid:<18}{n:>7} features loaded as version 1")))
    storage.release()
    applied = ", ".join(done["migrations_applied"]) or "none needed"
    click.echo(f"{redact(storage.url)}: schema version {done['schema_version']} (migrations applied: {applied})")
    if done["layers_loaded"]:
        click.echo(f"{len(done['layers_loaded'])} layers loaded from {source}")
    else:
        click.echo("the database already holds layers: none loaded (import files to change them)")


@db.command("status")
@click.pass_context
def db_status(ctx):
    """Schema version and the current version of every layer in the database."""
    from .storage.postgis import redact
    root = ctx.find_root()
    storage = _postgis(root)
    version = _run_domain(storage.schema_version)
    click.echo(f"{redact(storage.url)}: schema version {version}")
    if version:
        for lid, sig in sorted(_run_domain(lambda: storage.signatures({k: None for k in storage.layer_ids()},
                                                                      force=True)).items()):
            click.echo(f"  {lid:<18}version {sig[0]:<6} data {sig[1]}")
    storage.release()


if __name__ == "__main__":
    sys.exit(main())
