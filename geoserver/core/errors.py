"""Domain exceptions of the core; the web layer maps them to HTTP status codes in one place."""

from __future__ import annotations


class GeoServerError(Exception):
    """Base class: ``code`` is an OGC-style exception code, ``parameter`` the offending input (if any)."""

    code = "ServerError"

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.message = message
        self.parameter = parameter

    def __reduce__(self):
        """Pickled with its parameter (planning runs in other processes and its errors come back this way)."""
        return self.__class__, (self.message, self.parameter)

    def to_dict(self) -> dict:
        body = {"code": self.code, "description": self.message}
        if self.parameter is not None:
            body["parameter"] = self.parameter
        return body


class InvalidQuery(GeoServerError):
    """A query parameter or body field is missing, malformed or out of range."""

    code = "InvalidParameterValue"


class LayerNotFound(GeoServerError):
    """No layer (collection) has this id."""

    code = "NotFound"


class FeatureNotFound(GeoServerError):
    """The layer has no feature with this id."""

    code = "NotFound"


class DataError(GeoServerError):
    """A layer spec or data file is missing or inconsistent (raised at load time, not per request)."""

    code = "DataError"
