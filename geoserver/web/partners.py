"""Partners' read keys on the HTTP side (core/partners.py): who is asking, within its rate, counted.

A request with ``X-Partner-Key`` is checked before any work: an unknown or revoked key is 401, a layer the key
does not cover is 403, more than the partner's rate is 429 with ``Retry-After`` (each refusal counted as
``refused``). Every other request with a key is counted after it is answered: requests, features received (the
change feed and snapshots say how many), the last change-feed cursor per layer. Requests without a key are
public reads as before. The fast lane steps aside for requests with a key, so every one of them passes here.
"""

from __future__ import annotations

import math

from flask import current_app, g, request

from ..core.partners import Usage
from .errors import Forbidden, Unauthorized
from .heavy import TooManyRequests

HEADER = "X-Partner-Key"
ENVIRON_KEY = "HTTP_X_PARTNER_KEY"


def usage() -> Usage:
    found = current_app.extensions.get("partner_usage")
    if found is None:
        svc = current_app.extensions["geoservice"]
        found = current_app.extensions["partner_usage"] = Usage(svc.storage.partners())
    return found


def note(features: int = 0, cursor: tuple[str, str] | None = None) -> None:
    """Views say what a partner received (features, the feed cursor it now holds)."""
    if g.get("partner") is not None:
        g.partner_features = int(features)
        if cursor is not None:
            g.partner_cursor = cursor


def install(app) -> None:
    @app.before_request
    def _partner_key():
        key = request.headers.get(HEADER)
        if key is None or request.path.startswith("/api/admin"):
            return None
        partner = usage().partner(key.strip())
        if partner is None:
            raise Unauthorized("the partner key is not valid (unknown or revoked); public reads need no key",
                               HEADER)
        layer_id = (request.view_args or {}).get("layer_id") or request.args.get("layer")
        if layer_id and not partner.may_read(layer_id):
            usage().count(partner, refused=True)
            raise Forbidden(f"partner {partner.name!r} reads {', '.join(partner.layers)}, not {layer_id[:40]!r}",
                            "layer")
        wait = usage().admit(partner)
        if wait is not None:
            usage().count(partner, refused=True)
            raise TooManyRequests(f"partner {partner.name!r} may make {partner.rate_per_minute:,} requests a "
                                  "minute; slow down", max(1, math.ceil(wait)))
        g.partner = partner
        return None

    @app.after_request
    def _partner_count(resp):
        partner = g.get("partner")
        if partner is not None:
            usage().count(partner, features=g.get("partner_features", 0) if resp.status_code < 300 else 0,
                          cursor=g.get("partner_cursor") if resp.status_code == 200 else None)
        return resp
