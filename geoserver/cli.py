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
        sample = " [SAMPLE DATA]" if any(p.get("source") == "sample" for p in layer.properties[:50]) else ""
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


if __name__ == "__main__":
    sys.exit(main())
