"""The ASGI middleware every request passes, in this order: request id, body limit,
authentication, admission, body deadline, access log.

- a request id (``X-Request-ID``) bound to the log context and echoed in the response;
- a body larger than ``max_body_bytes`` (by ``Content-Length``, or counted as it streams
  in) is answered 413 before the route reads it;
- every request but the public paths is authenticated from its headers
  (:mod:`ragfleet.serve.authn`) *before* it is admitted and before a byte of its body is
  read: a caller without a valid key holds no admission slot and no worker thread;
- requests under ``/v1/`` are admitted only while fewer than ``max_inflight`` run; the
  rest get 429 with ``Retry-After`` at once;
- an admitted request must deliver its whole body within ``body_timeout_s`` (408
  otherwise), so a slow sender cannot keep its slot;
- one JSON access-log line and one ``ragfleet_request_seconds`` sample per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ragfleet.serve.auth import AuthError
from ragfleet.serve.authn import Authenticator, is_public
from ragfleet.serve.errors import ApiError
from ragfleet.serve.limits import Admission
from ragfleet.serve.logging import LOGGER, log_event, new_request_id, request_id
from ragfleet.serve.metrics import ServeMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


async def _send_error(
    send: Send, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})


class Gate:
    """See the module docstring."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, admission: Admission, retry_after_s: int,
        metrics: ServeMetrics, authenticator: Authenticator, body_timeout_s: float = 30.0,
    ) -> None:  # fmt: skip
        self.app, self.max_body, self.admission = app, max_body_bytes, admission
        self.retry_after, self.metrics = retry_after_s, metrics
        self.authenticator, self.body_timeout_s = authenticator, body_timeout_s
        self.logger = logging.getLogger(LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = new_request_id(headers.get("x-request-id"))
        token = request_id.set(rid)
        state = {"status": 500, "closed": False, "started": False}
        extra = [(b"x-request-id", rid.encode()), *_SECURITY_HEADERS]
        t0 = time.perf_counter()

        async def send_tagged(message: Message) -> None:
            if state["closed"]:
                return  # a 413 was already sent while the body streamed in
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self._handle(scope, receive, send_tagged, headers, state, extra)
        finally:
            self._record(scope, headers, state, t0)
            request_id.reset(token)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str],
        state: dict[str, Any], extra: list[tuple[bytes, bytes]],
    ) -> None:  # fmt: skip
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body:
            msg = f"the body is larger than {self.max_body} bytes; send smaller batches"
            await send_error_tagged(send, 413, "body_too_large", msg, [])
            return
        if not is_public(str(scope["path"])) and not await self._authenticate(scope, headers, send):
            return
        gated = str(scope["path"]).startswith("/v1/")
        if gated and not self.admission.try_enter():
            self.metrics.shed.labels("inflight").inc()
            retry = [(b"retry-after", str(self.retry_after).encode())]
            msg = f"the server is at capacity ({self.admission.limit} requests in flight); retry"
            await send_error_tagged(send, 429, "overloaded", msg, retry)
            return
        self.metrics.inflight.set(self.admission.inflight)
        try:
            await self.app(scope, self._limited(receive, send, state), send)
        except Exception as e:
            if state["closed"]:
                return
            if state["started"]:
                raise  # too late for an error body; the server closes the connection
            fields = {"error": type(e).__name__}
            self.logger.error("unhandled error", exc_info=e, extra={"fields": fields})
            msg = f"internal error; quote request id {request_id.get()}"
            await send_error_tagged(send, 500, "internal", msg, [])
        finally:
            if gated:
                self.admission.leave()

    async def _authenticate(self, scope: Scope, headers: dict[str, str], send: Send) -> bool:
        """Store the request's key record in its state, or answer 401/429 and say no."""
        client = (scope.get("client") or ("-",))[0]
        try:
            record = await self.authenticator.authenticate(headers.get("authorization"), client)
        except AuthError as e:
            self.metrics.shed.labels("auth").inc()
            await send_error_tagged(send, e.status, e.code, e.message, [])
            return False
        except ApiError as e:
            self.metrics.shed.labels("auth_failures").inc()
            extra = [(k.lower().encode(), v.encode()) for k, v in (e.headers or {}).items()]
            await send_error_tagged(send, e.status, e.code, e.message, extra)
            return False
        scope.setdefault("state", {})
        scope["state"]["key_record"] = record
        scope["state"]["key_name"] = record.name
        return True

    def _limited(self, receive: Receive, send: Send, state: dict[str, Any]) -> Receive:
        """``receive`` that answers 413 and reports a disconnect once the body is too big,
        and 408 when the whole body has not arrived ``body_timeout_s`` after admission."""
        seen = 0
        deadline = time.monotonic() + self.body_timeout_s
        complete = False

        async def wrapped() -> Message:
            nonlocal seen, complete
            if complete:
                return await receive()  # after the body: wait for a disconnect, unbounded
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                msg = f"the request body did not arrive within {self.body_timeout_s:g} s"
                await send_error_tagged(send, 408, "body_timeout", msg, [])
                state["closed"] = True
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                complete = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    msg = f"the body is larger than {self.max_body} bytes; send smaller batches"
                    await send_error_tagged(send, 413, "body_too_large", msg, [])
                    state["closed"] = True
                    return {"type": "http.disconnect"}
            return message

        return wrapped

    def _record(
        self, scope: Scope, headers: dict[str, str], state: dict[str, Any], t0: float
    ) -> None:
        seconds = time.perf_counter() - t0
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        status = int(state["status"])
        self.metrics.request.labels(path, str(status)).observe(seconds)
        log_event(
            self.logger, "request", method=scope.get("method"), route=path, status=status,
            ms=round(seconds * 1e3, 3), key=scope.get("state", {}).get("key_name"),
            client=(scope.get("client") or ("-",))[0], agent=headers.get("user-agent", "")[:200],
        )  # fmt: skip


async def send_error_tagged(
    send: Send, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]]
) -> None:
    """Send a JSON error through ``send`` (which adds the request id and security headers)."""
    await _send_error(send, status, code, message, extra)
