"""The service under hostile and careless clients (issue 15), on a real uvicorn server on
loopback, each test bounded to a few sockets and seconds:

* slowloris without a key (headers dribbled, or a body never sent) holds no admission slot:
  authenticated clients are served meanwhile, and the slow connections are dropped;
* an authenticated client that never sends its body loses its slot after the body deadline;
* a flood of wrong secrets for a real key id costs a bounded number of PBKDF2 runs (the
  rest get 429 + Retry-After), and a legitimate client's p99 stays within 2× of idle or
  1.5× of its p99 under a keyless flood of the same rate;
* failed authentications are limited per client address and per key id.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from tests.e2e._server import running

from ragfleet.serve.auth import KeyStore, new_key
from ragfleet.serve.authn import FailureLimiter
from ragfleet.serve.protocol import guarded_protocol

BODY = {"query": "Who won Super Bowl 50?", "k": 3, "mode": "sparse"}


@pytest.fixture(scope="module")
def server(collection_factory: Any) -> Iterator[tuple[str, str]]:
    from ragfleet.serve.app import create_app
    from ragfleet.serve.settings import ServeSettings

    key, record = new_key("legit", ("read",))  # the default (slow) iterations: real cost
    settings = ServeSettings(max_inflight=2, rate_per_s=0, body_timeout_s=1.0, batching=False)
    app = create_app({"demo": collection_factory(shards=2)}, settings, KeyStore([record]))
    with running(app, http=guarded_protocol(1.0, 32), limit_concurrency=256) as url:
        yield url, key


def _search(url: str, key: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    res = httpx.post(f"{url}/v1/collections/demo/search", json=BODY,
                     headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
    return res.status_code, time.perf_counter() - t0


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_slowloris_without_a_key_holds_no_slot(server: tuple[str, str]) -> None:
    url, key = server
    dribblers = [_connect(url) for _ in range(6)]
    for s in dribblers:  # headers that never end
        s.sendall(b"POST /v1/collections/demo/search HTTP/1.1\r\nHost: x\r\n")
    stallers = []
    for _ in range(6):  # complete headers, a bad key, a body that never comes
        s = _connect(url)
        s.sendall(
            b"POST /v1/collections/demo/search HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer rf_00000000_not-a-key\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n{"
        )
        stallers.append(s)
    served = [_search(url, key)[0] for _ in range(6)]  # max_inflight is 2: nothing is held
    assert served == [200] * 6
    for s in stallers:  # answered 401 from the headers alone, the body never read
        assert s.recv(200).startswith(b"HTTP/1.1 401")
    time.sleep(1.5)  # past the header deadline: the dribblers were dropped
    for s in dribblers:
        s.settimeout(2)
        assert s.recv(100) == b""
    for s in dribblers + stallers:
        s.close()


def test_an_admitted_client_that_never_sends_its_body_loses_its_slot(
    server: tuple[str, str],
) -> None:
    url, key = server
    slow = []
    for _ in range(2):  # both admission slots, taken by valid requests whose body stalls
        s = _connect(url)
        s.sendall(
            f"POST /v1/collections/demo/search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            f"{key}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{".encode()
        )
        slow.append(s)
    time.sleep(0.2)
    t0 = time.monotonic()
    status = 429
    while status == 429 and time.monotonic() - t0 < 5:
        status, _ = _search(url, key)
    assert status == 200 and time.monotonic() - t0 < 3  # freed by the 1 s body deadline
    for s in slow:
        assert s.recv(200).startswith(b"HTTP/1.1 408")
        s.close()


def test_a_wrong_secret_flood_keeps_legitimate_latency(server: tuple[str, str]) -> None:
    """Legitimate p99 under a flood of wrong secrets for the same key id stays within 2x of
    idle, or within 1.5x of its p99 under an equally fast flood of requests that carry no
    key at all (the cheapest refusal there is), measured in the same round: the attackers are
    threads of this process and share two cores with the server, so some slowdown is the
    machine's, not the key check's. It went from ~10 ms to ~6 s when every wrong secret cost
    a PBKDF2; a regression to that cost fails both bounds. Up to three rounds, one passing."""
    url, key = server
    _search(url, key)  # warm: the legitimate key is verified once and remembered
    key_id = key.split("_")[1]
    rounds: list[tuple[float, float, float, int]] = []
    for _ in range(3):
        idle = [_search(url, key)[1] for _ in range(30)]
        measure = lambda: [_search(url, key)[1] for _ in range(30)]  # noqa: E731
        codes, under = _flood_while(url, lambda n: {"Authorization": f"Bearer rf_{key_id}_w{n}"},
                                    measure)  # fmt: skip
        assert len(codes) > 100
        assert codes.count(401) <= 10  # PBKDF2 ran at most max_failures times for this key id
        assert codes.count(429) >= len(codes) - 10
        plain, baseline = _flood_while(url, lambda n: {}, measure)
        assert set(plain) == {401}
        p99_idle, p99_under = float(np.percentile(idle, 99)), float(np.percentile(under, 99))
        p99_base = float(np.percentile(baseline, 99))
        rounds.append((p99_idle, p99_under, p99_base, len(codes)))
        print(f"\nlegitimate p99 idle {p99_idle * 1e3:.1f} ms, under the flood "
              f"{p99_under * 1e3:.1f} ms ({len(codes)} attacking requests), under a keyless "
              f"flood {p99_base * 1e3:.1f} ms ({len(plain)})")  # fmt: skip
        if p99_under <= max(2 * p99_idle, 1.5 * p99_base):
            return
    pytest.fail(f"legitimate p99 (idle, wrong secrets, no key, attacks) per round: {rounds}")


def _flood_while(
    url: str, headers: Callable[[int], dict[str, str]], measure: Callable[[], list[float]]
) -> tuple[list[int], list[float]]:
    """The status codes 4 threads got sending searches with ``headers(n)`` (n counts the
    requests sent) while ``measure()`` ran, and what it returned."""
    codes: list[int] = []
    stop = threading.Event()

    def flood() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                h = headers(len(codes))
                r = c.post(f"{url}/v1/collections/demo/search", json=BODY, headers=h)
                codes.append(r.status_code)

    attackers = [threading.Thread(target=flood) for _ in range(4)]
    for t in attackers:
        t.start()
    try:
        time.sleep(0.5)
        result = measure()
    finally:
        stop.set()
        for t in attackers:
            t.join()
    return codes, result


def test_failures_are_limited_per_client_and_per_key_id() -> None:
    now = [0.0]
    limiter = FailureLimiter(max_failures=3, window_s=10.0, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("client:a", "key:1") == 0
        limiter.fail("client:a", "key:1")
    assert limiter.retry_after("client:a") == 10 and limiter.retry_after("key:1") == 10
    assert limiter.retry_after("client:b", "key:2") == 0  # others are not affected
    now[0] = 4.0
    assert limiter.retry_after("client:a") == 6
    now[0] = 10.5  # the window slid past every failure
    assert limiter.retry_after("client:a", "key:1") == 0
