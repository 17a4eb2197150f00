"""Errors as JSON ``{"error": {"code", "message"}}`` — the one place that picks HTTP codes.

============================  ====  =====================
ragfleet error                HTTP  code
============================  ====  =====================
InputError                    400   invalid_input
ConfigError                   422   invalid_config
StorageError                  507   storage_error (the message says what was applied)
CollectionLockedError         409   collection_locked
CollectionError               409   collection_error
Cancelled                     499   cancelled (the client is gone; nobody reads it)
IndexNotTrainedError          409   index_not_trained
MissingDependencyError        501   missing_dependency
DeadlineExceeded              504   deadline_exceeded
anything else                 500   internal (message names the request id, no traceback)
============================  ====  =====================
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ragfleet.errors import (
    Cancelled,
    CollectionError,
    CollectionLockedError,
    ConfigError,
    DeadlineExceeded,
    IndexNotTrainedError,
    InputError,
    MissingDependencyError,
    RagfleetError,
    StorageError,
)
from ragfleet.serve.auth import AuthError
from ragfleet.serve.logging import LOGGER, log_event, request_id

_MAP: tuple[tuple[type[RagfleetError], int, str], ...] = (
    (InputError, 400, "invalid_input"),
    (ConfigError, 422, "invalid_config"),
    (StorageError, 507, "storage_error"),
    (CollectionLockedError, 409, "collection_locked"),
    (CollectionError, 409, "collection_error"),
    (Cancelled, 499, "cancelled"),
    (IndexNotTrainedError, 409, "index_not_trained"),
    (MissingDependencyError, 501, "missing_dependency"),
    (DeadlineExceeded, 504, "deadline_exceeded"),
)
_HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "body_too_large", 415: "unsupported_media",
    422: "invalid_request", 429: "too_many_requests", 499: "cancelled", 503: "unavailable",
    507: "insufficient_storage",
}  # fmt: skip


class ApiError(Exception):
    """An HTTP error raised by a route: status, code, message and optional headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def status_of(e: RagfleetError) -> tuple[int, str]:
    """The HTTP status and error code for a ragfleet error (first match in the table)."""
    for cls, status, code in _MAP:
        if isinstance(e, cls):
            return status, code
    return 500, "internal"


def _validation_message(e: RequestValidationError) -> str:
    parts = []
    for err in e.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON error body."""
    logger = logging.getLogger(LOGGER)

    async def on_api(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, ApiError | AuthError)  # registered for these types only
        return error_response(e.status, e.code, e.message, getattr(e, "headers", None))

    async def on_ragfleet(_: Request, e: Exception) -> JSONResponse:
        status, code = status_of(e)  # type: ignore[arg-type]
        if status == 500:
            return await on_crash(_, e)
        return error_response(status, code, str(e))

    async def on_validation(request: Request, e: Exception) -> JSONResponse:
        msg = _validation_message(e)  # type: ignore[arg-type]
        kind = request.headers.get("content-type", "")
        if request.method in ("POST", "PUT") and "json" not in kind.lower():
            msg += f" (the body was sent as {kind or 'no content type'}: send JSON with "
            msg += "Content-Type: application/json)"
        return error_response(422, "invalid_request", msg)

    async def on_http(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, HTTPException)
        code = _HTTP_CODES.get(e.status_code, "error")
        return error_response(e.status_code, code, str(e.detail), dict(e.headers or {}))

    async def on_crash(_: Request, e: Exception) -> JSONResponse:
        log_event(logger, "unhandled error", logging.ERROR, error=type(e).__name__)
        rid = request_id.get()
        return error_response(500, "internal", f"internal error; quote request id {rid}")

    app.add_exception_handler(ApiError, on_api)
    app.add_exception_handler(AuthError, on_api)
    app.add_exception_handler(RagfleetError, on_ragfleet)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
