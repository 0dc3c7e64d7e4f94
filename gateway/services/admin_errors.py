"""Admin API errors: raised by the management services and the admin app, rendered once as
JSON by the admin app."""

from __future__ import annotations


class AdminError(Exception):
    status = 500
    code = "InternalError"

    def __init__(self, message: str, *, details: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def _error(name: str, status: int) -> type[AdminError]:
    return type(name, (AdminError,), {"status": status, "code": name})


BadRequest = _error("BadRequest", 400)
Unauthorized = _error("Unauthorized", 401)
Forbidden = _error("Forbidden", 403)
NotFound = _error("NotFound", 404)
MethodNotAllowed = _error("MethodNotAllowed", 405)
Conflict = _error("Conflict", 409)
UnsupportedMediaType = _error("UnsupportedMediaType", 415)
Unprocessable = _error("Unprocessable", 422)
Unavailable = _error("ServiceUnavailable", 503)
