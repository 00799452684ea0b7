"""The one map from domain errors to HTTP: status code, JSON body and headers, for every blueprint.

A class's status is found along its MRO: the first class that is in ``STATUS`` or defines ``http_status`` itself
decides, so subclasses inherit their parent's status unless they say otherwise (a storage layer's error with
``http_status = 503`` is a 503 without this module knowing the class). Errors without any: 404 when their code is
``NotFound``, else 400. Errors with ``retry_after_s`` (Busy, TooManyRequests) get a ``Retry-After`` header.
"""

from __future__ import annotations

from ..core.edit import EditConflict
from ..core.errors import DataError, FeatureNotFound, GeoServerError, LayerNotFound
from ..core.manage import GeocoderNotConfigured, ImportRefused
from ..core.network import NetworkError
from ..core.store import AlreadyCurrent, StoreError, VersionNotFound
from ..curation.edit import PreconditionFailed  # noqa: F401 - the admin API's 412 (the edit use case's)

#: Domain errors of the core (which knows nothing of HTTP) and their statuses.
STATUS: dict[type, int] = {
    LayerNotFound: 404, FeatureNotFound: 404, VersionNotFound: 404,
    DataError: 500, NetworkError: 400,          # a road network named in a request that cannot be used: the request's
    EditConflict: 409, AlreadyCurrent: 409,
    ImportRefused: 422,
    StoreError: 503, GeocoderNotConfigured: 503,
}


class Unauthorized(GeoServerError):
    code = "Unauthorized"
    http_status = 401


class Forbidden(GeoServerError):
    code = "Forbidden"
    http_status = 403




class UploadTooLarge(GeoServerError):
    """An import's body passed GEOSERVER_ADMIN_MAX_UPLOAD_BYTES (with a Content-Length, or while it streamed in)."""

    code = "RequestEntityTooLarge"
    http_status = 413


def status_for(exc: GeoServerError) -> int:
    """The HTTP status of a domain error (see the module docstring)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
        status = cls.__dict__.get("http_status")
        if status is not None:
            return int(status)
        if cls is GeoServerError:
            break
    return 404 if exc.code == "NotFound" else 400


def headers_for(exc: GeoServerError, status: int) -> dict | None:
    headers = {}
    retry = getattr(exc, "retry_after_s", None)
    if retry is not None:
        headers["Retry-After"] = str(retry)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="geoserver-admin"'
    return headers or None


def error_response(exc: GeoServerError, body: dict | None = None):
    """The JSON response of a domain error (``body`` defaults to ``exc.to_dict()``)."""
    from .http import json_response

    status = status_for(exc)
    return json_response(exc.to_dict() if body is None else body, status=status, cache="no-store",
                         headers=headers_for(exc, status))
