"""The floor of bench_hotpath.py: the smallest Flask app answering a small JSON "hello", served by the same Granian
with the same settings as ``geoserver serve`` (WSGI interface, N workers, 8 blocking threads per worker, no
websockets, no access log).

Usage: ``.venv/bin/python benchmarks/hello_app.py --port 8001 [--workers 2] [--threads 8]`` (127.0.0.1 only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return {"hello": "world"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    from granian import Granian
    from granian.constants import Interfaces

    # the arguments of geoserver.cli.serve, so the two servers differ only in the application
    Granian("hello_app:app", address="127.0.0.1", port=args.port, interface=Interfaces.WSGI, workers=args.workers,
            blocking_threads=args.threads, websockets=False, log_access=False, respawn_failed_workers=True,
            working_dir=Path(__file__).resolve().parent).serve()


if __name__ == "__main__":
    main()
