"""Errors as Kubernetes ``Status`` objects."""

from __future__ import annotations

from starlette.responses import JSONResponse

from fnmesh.platform.model.errors import FieldError

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def status_body(
    code: int, message: str, causes: list[FieldError] | None = None
) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": REASONS.get(code, "Unknown"),
        "message": message,
    }
    if causes:
        body["details"] = {"causes": [c.to_dict() for c in causes]}
    return body


def failure(code: int, message: str, causes: list[FieldError] | None = None) -> JSONResponse:
    return JSONResponse(status_body(code, message, causes), status_code=code)


class ApiError(Exception):
    """Raised by handlers; rendered by the app's exception handler."""

    def __init__(self, code: int, message: str, causes: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.causes = causes
