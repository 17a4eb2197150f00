"""A direct data plane to a shard actor: request and reply frames over pooled TCP sockets.

Ray places the shard actors, restarts them and carries every write and control call; the
read calls of a query (``search``, ``fetch``, ``term_stats``, ``token_blocks``,
``late_scores``) skip Ray's task path — task submission, the raylet, an object-store
round trip and a thread hop on each side, about 1.5 ms of CPU per call on a 2-core node
(``benchmarks/ray_overhead.py`` profiles it) — and go straight to a socket the actor
listens on. This is the split most serving systems on Ray make (vLLM's workers, Ray
Serve's proxies): Ray for the control plane, a plain transport for the data.

Wire format, per connection: the client sends the deployment's 32-byte token once, then
frames ``length (8 bytes, big-endian) | payload``; a request's payload is
``pickle((method, args))``, a reply's ``pickle((ok, value))`` where ``value`` is the
result, or the exception the call raised (so a caller's ``InputError`` stays one across
the hop and :func:`~ragfleet.cluster.replicated.is_caller_error` still holds).

Trust: unpickling runs code, so the server unpickles nothing before the peer has sent the
token (compared in constant time); the token is made per deployment and reaches the actor
as a constructor argument, through Ray — the same trust boundary as Ray's own ports. The
server binds the node's Ray address (loopback on a one-machine cluster), never every
interface.

Bounds: a frame is at most :data:`MAX_FRAME_BYTES`; a client runs at most
:data:`MAX_CALLS_PER_CLIENT` calls at once (one connection each), a server holds at most
:data:`MAX_CONNECTIONS` (one more is closed at once); the whole handshake must arrive
within :data:`HANDSHAKE_TIMEOUT_S`; a call waits at most ``call_timeout_s``
(:class:`ChannelTimeout`). A broken connection raises :class:`ChannelError` (a
``ConnectionError``): the replica set marks that replica down and fails over, as it does
for a dead actor. The token travels in clear: across machines the channel is as private
as the network between the nodes, as Ray's own ports are.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import pickle
import socket
import struct
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
MAX_FRAME_BYTES = 1 << 30
MAX_CONNECTIONS = 1024
MAX_CALLS_PER_CLIENT = 64  # one client's concurrent calls (and so connections) at most
HANDSHAKE_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
MIN_CALL_TIMEOUT_S = 1e-3
_HEADER = struct.Struct("!Q")


class ChannelError(ConnectionError):
    """The connection to a shard actor broke or could not be made."""


class ChannelTimeout(ChannelError):
    """A call got no reply within its timeout (the actor may still be running it)."""


def _recv_exact(sock: socket.socket, n: int, deadline: float | None = None) -> bytearray | None:
    """Exactly ``n`` bytes, or None at a clean end of stream before the first byte; with
    ``deadline`` (a ``time.monotonic()`` instant) the whole read must end by then."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelError(f"no {n} bytes by the deadline (got {got})")
            sock.settimeout(left)
        r = sock.recv_into(view[got:])
        if r == 0:
            if got == 0:
                return None
            raise ChannelError(f"connection closed after {got} of {n} bytes")
        got += r
    return buf


def recv_frame(sock: socket.socket) -> bytearray | None:
    """One frame's payload; None when the peer closed the connection between frames."""
    header = _recv_exact(sock, _HEADER.size)
    if header is None:
        return None
    (n,) = _HEADER.unpack(header)
    if n > MAX_FRAME_BYTES:
        raise ChannelError(f"frame of {n} bytes is over the {MAX_FRAME_BYTES}-byte limit")
    payload = _recv_exact(sock, n)
    if payload is None:
        raise ChannelError("connection closed between a frame's header and its payload")
    return payload


def send_frame(sock: socket.socket, payload: bytes) -> None:
    if len(payload) > MAX_FRAME_BYTES:
        raise ChannelError(f"frame of {len(payload)} bytes is over the limit")
    header = _HEADER.pack(len(payload))
    if len(payload) < 1 << 16:
        sock.sendall(header + payload)  # one segment for the small frames of a query
    else:
        sock.sendall(header)
        sock.sendall(payload)


def _reply(ok: bool, value: object) -> bytes:
    try:
        return pickle.dumps((ok, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # an unpicklable result or exception: say what it was
        err = RuntimeError(f"shard reply could not be sent: {type(value).__name__}: {e}")
        return pickle.dumps((False, err), protocol=pickle.HIGHEST_PROTOCOL)


class DirectServer:
    """Serves ``methods`` of ``target`` to token-holding clients, one thread per connection."""

    def __init__(
        self, target: object, methods: Collection[str], token: bytes, host: str = "127.0.0.1"
    ) -> None:
        if len(token) != TOKEN_BYTES:
            raise ValueError(f"the token must be {TOKEN_BYTES} bytes, got {len(token)}")
        self._calls: dict[str, Callable[..., Any]] = {m: getattr(target, m) for m in methods}
        self._token = token
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.create_server((host, 0), family=family, backlog=128)
        self.address: tuple[str, int] = (host, int(self._sock.getsockname()[1]))
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, name="ragfleet-direct", daemon=True).start()

    def close(self) -> None:
        """Stop accepting and drop every connection (clients see ChannelError)."""
        with self._lock:
            self._closed = True
            conns, self._conns = list(self._conns), set()
        for c in [self._sock, *conns]:
            with contextlib.suppress(OSError):  # already closed by the peer
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError as e:
                if self._closed:
                    return
                log.warning("direct channel: accept failed (%s); retrying", e)
                time.sleep(0.05)  # EMFILE, ECONNABORTED…: the actor keeps serving
                continue
            with self._lock:
                full = len(self._conns) >= MAX_CONNECTIONS
                if not (full or self._closed):
                    self._conns.add(conn)
            if full or self._closed:
                log.warning("direct channel: refusing a connection (%d open)", MAX_CONNECTIONS)
                conn.close()
                continue
            try:
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
            except RuntimeError as e:  # no thread to be had: refuse this one, keep going
                log.warning("direct channel: cannot serve a connection: %s", e)
                with self._lock:
                    self._conns.discard(conn)
                conn.close()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            token = _recv_exact(conn, TOKEN_BYTES, time.monotonic() + HANDSHAKE_TIMEOUT_S)
            if token is None or not hmac.compare_digest(bytes(token), self._token):
                return  # not one of ours: nothing is unpickled
            conn.settimeout(None)
            while (payload := recv_frame(conn)) is not None:
                method, args = pickle.loads(payload)
                call = self._calls.get(method)
                if call is None:
                    send_frame(conn, _reply(False, LookupError(f"no direct method {method!r}")))
                    continue
                try:
                    out = _reply(True, call(*args))
                except Exception as e:  # the shard's error travels back to the caller
                    out = _reply(False, e)
                send_frame(conn, out)
        except (OSError, ChannelError, pickle.UnpicklingError, ValueError, TypeError) as e:
            log.debug("direct channel: connection ended: %s", e)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()


class DirectClient:
    """Calls a :class:`DirectServer`; a pool of connections, one per concurrent call."""

    def __init__(
        self, address: tuple[str, int], token: bytes, *, call_timeout_s: float | None = 60.0
    ) -> None:
        if call_timeout_s is not None and not call_timeout_s >= MIN_CALL_TIMEOUT_S:
            raise ValueError(f"call_timeout_s must be >= {MIN_CALL_TIMEOUT_S} s or None")
        self.address = address
        self._token = token
        self._timeout = call_timeout_s
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CALLS_PER_CLIENT)
        self._closed = False

    def call(self, method: str, *args: object) -> Any:
        """``method(*args)`` on the server's target; its exception is raised here. At most
        :data:`MAX_CALLS_PER_CLIENT` calls run at once; the others wait for a slot."""
        request = pickle.dumps((method, args), protocol=pickle.HIGHEST_PROTOCOL)
        with self._slots:
            sock = self._take()
            try:
                send_frame(sock, request)
                payload = recv_frame(sock)
                if payload is None:
                    raise ChannelError(f"shard at {self.address} closed the connection")
            except ChannelError:
                sock.close()
                raise
            except BlockingIOError as e:  # SO_RCVTIMEO / SO_SNDTIMEO ran out
                sock.close()
                raise ChannelTimeout(
                    f"no reply from the shard at {self.address} in {self._timeout} s"
                ) from e
            except OSError as e:
                sock.close()
                raise ChannelError(f"the connection to {self.address} broke: {e}") from e
            self._give(sock)
        ok, value = pickle.loads(payload)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for s in idle:
            s.close()

    def _take(self) -> socket.socket:
        with self._lock:
            if self._closed:
                raise ChannelError(f"the channel to {self.address} is closed")
            if self._idle:
                return self._idle.pop()
        try:
            sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT_S)
        except OSError as e:
            raise ChannelError(f"cannot reach the shard at {self.address}: {e}") from e
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(self._token)
            sock.settimeout(None)
            if self._timeout is not None:  # in the kernel: a Python timeout polls per call
                secs = int(self._timeout)
                tv = struct.pack("ll", secs, int((self._timeout - secs) * 1e6))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        except OSError as e:
            sock.close()
            raise ChannelError(f"cannot open a channel to {self.address}: {e}") from e
        return sock

    def _give(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(sock)
                return
        sock.close()
