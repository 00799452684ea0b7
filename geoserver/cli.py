"""Command line: ``geoserver serve | dev | layers | import | history | rollback | token | report | plan``."""

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
    os.environ["GEOSERVER_LAYERS_DIR"] = str(svc.layers_dir.resolve())
    from . import wsgi
    wsgi.preload(svc)  # loaded once here: forked workers share it (copy-on-write) and start at once
    click.echo(f"serving {svc.data_dir} on http://{host}:{port} with {workers} workers", err=True)
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

    from .core.importer import ImportOptions, read_mapping_file
    from .core.manage import DataManager, ImportRefused
    from .core.store import default_actor

    svc = _load_service(ctx)
    manager = DataManager(svc)
    show = sys.stderr.isatty() if progress is None else progress

    def run():
        opts = ImportOptions(datum=datum, encoding=encoding, sheet=sheet, source_layer=source_layer,
                             mapping=read_mapping_file(Path(mapping) if mapping else None), source=source_text,
                             mode="merge" if merge else "replace")
        manager.editable(layer)
        try:
            return manager.import_file(layer, Path(file), opts, who=who or default_actor(), dry_run=dry_run,
                                       skip_invalid=skip_invalid, progress=_progress_bar(show))
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
    result = _run_domain(lambda: manager.geocode(layer, who=who, retry_failed=retry_failed, dry_run=dry_run,
                                                 progress=progress))
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
    _run_domain(lambda: manager.editable(layer))
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
    versions, current = _run_domain(lambda: DataManager(svc).history(layer))
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
    from .core.store import default_actor, parse_version

    svc = _load_service(ctx)
    restored = _run_domain(lambda: DataManager(svc).rollback(layer, parse_version(version),
                                                              who=who or default_actor()))
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
    from .core.store import parse_version

    svc = _load_service(ctx)
    path = Path(out)
    fmt = path.suffix.lower().lstrip(".")

    def run():
        number = parse_version(version_text) if version_text else None
        return DataManager(svc).export(layer, fmt, datum, number)

    data, count = _run_domain(run)
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
    removed = _run_domain(lambda: manager.store.prune(layer, spec.data_file, keep, who=who or default_actor()))
    if removed:
        click.echo(f"{layer}: removed versions {', '.join(map(str, removed))}; "
                   f"{len(manager.store.versions(layer))} kept")
    else:
        click.echo(f"{layer}: nothing to remove ({len(manager.store.versions(layer))} versions)")


@main.group()
def token():
    """Admin API tokens (stored hashed)."""


def _token_store(ctx):
    from .core.auth import TokenStore, tokens_path
    from .core.service import resolve_data_dir
    return TokenStore(tokens_path(resolve_data_dir(ctx.obj["data_dir"])))


@token.command("add")
@click.argument("name")
@click.option("--layers", default="*", show_default=True, help="Layers this token may change (comma-separated).")
@click.pass_context
def token_add(ctx, name, layers):
    """Create a token for operator NAME and print it (once: only its hash is stored)."""
    store = _token_store(ctx.parent)
    value = _run_domain(lambda: store.add(name, tuple(x.strip() for x in layers.split(",") if x.strip())))
    click.echo(value)
    click.echo(f"token for {name!r} stored (hashed) in {store.path}; send it as 'Authorization: Bearer <token>'",
               err=True)


@token.command("list")
@click.pass_context
def token_list(ctx):
    """List operators with a token (never the tokens)."""
    for entry in _token_store(ctx.parent).list():
        click.echo(f"{entry['name']:<24}{','.join(entry['layers']):<32}{entry['created']}")


@token.command("revoke")
@click.argument("name")
@click.pass_context
def token_revoke(ctx, name):
    """Delete operator NAME's token."""
    if not _token_store(ctx.parent).revoke(name):
        raise click.ClickException(f"no token for {name!r}")
    click.echo(f"token for {name!r} revoked")


if __name__ == "__main__":
    sys.exit(main())
