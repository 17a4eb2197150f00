"""The HTTP/1.1 connection protocol of ``ragfleet serve``: uvicorn's h11 protocol with two
guards it lacks against slow clients (slowloris):

* a **header deadline** — a connection must complete each request's headers within
  ``header_timeout_s`` of connecting (or of its previous response); otherwise it is closed.
  uvicorn times out idle keep-alive connections but not a client that dribbles header
  bytes, which would hold its connection forever;
* a **per-client connection cap** — at most ``max_connections_per_client`` open
  connections from one address; more are closed at once.

Together with uvicorn's ``limit_concurrency`` (all connections) and the service's door
(authentication from the headers before any admission slot or body byte, a body
deadline after admission: :mod:`ragfleet.serve.gate`), a slow or unauthenticated client
cannot hold what real clients need.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):  # type: ignore[misc]
    """See the module docstring; configure with :func:`guarded_protocol`."""

    header_timeout_s: ClassVar[float] = 10.0
    max_connections_per_client: ClassVar[int] = 32
    _per_client: ClassVar[Counter[str]] = Counter()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_cycle: Any = None
        peer = self.client[0] if self.client else "-"
        self._peer = peer
        self._per_client[peer] += 1
        if self._per_client[peer] > self.max_connections_per_client:
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._per_client[self._peer] -= 1
        if self._per_client[self._peer] <= 0:
            del self._per_client[self._peer]
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and self.cycle is not self._waiting_cycle:
            self._disarm()  # a new request's headers arrived whole

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers are due in time too

    def _arm(self) -> None:
        self._disarm()
        self._waiting_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(header_timeout_s: float, max_connections_per_client: int) -> type:
    """A :class:`GuardedH11Protocol` subclass with these limits (uvicorn's ``http=``)."""
    return type(
        "GuardedH11",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": header_timeout_s,
            "max_connections_per_client": max_connections_per_client,
            "_per_client": Counter(),
        },
    )
