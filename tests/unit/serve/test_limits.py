"""Token bucket, per-key rate limit, admission control (429 + Retry-After) and size limits."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.serve.conftest import Keys, serve

from ragfleet.errors import ConfigError
from ragfleet.serve.limits import Admission, RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_bucket_admits_burst_then_refills_at_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx((1 - 0) / 2.0)  # wait = (1 − tokens) / rate
    clock.t = 0.25  # +0.5 token
    assert bucket.take() == pytest.approx((1 - 0.5) / 2.0)
    clock.t = 0.5
    assert bucket.take() == 0.0
    clock.t = 100.0  # refills to burst, never above
    assert [bucket.take() for _ in range(4)][-1] == pytest.approx(0.5)


@given(
    st.lists(st.floats(0.0, 2.0), min_size=1, max_size=60), st.floats(0.5, 20), st.integers(1, 10)
)
def test_bucket_never_admits_more_than_burst_plus_rate_times_time(
    gaps: list[float], rate: float, burst: int
) -> None:
    clock = Clock()
    bucket = TokenBucket(rate, burst, clock)
    admitted = 0
    for gap in gaps:
        clock.t += gap
        admitted += bucket.take() == 0.0
    assert admitted <= burst + rate * clock.t + 1e-9


def test_rate_limiter_is_per_key_and_rounds_retry_after_up() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.4, burst=1, clock=clock)
    assert limiter.check("a") == 0 and limiter.check("b") == 0
    assert limiter.check("a") == math.ceil(1 / 0.4)
    assert RateLimiter(0, 1).check("a") == 0  # off


def test_admission_bounds_holders() -> None:
    gate = Admission(2)
    assert gate.try_enter() and gate.try_enter() and not gate.try_enter()
    gate.leave()
    assert gate.try_enter() and gate.inflight == 2
    with pytest.raises(ConfigError):
        Admission(0)


def test_http_rate_limit_answers_429_with_retry_after(collection_factory: Any, keys: Keys) -> None:
    body = {"query": "Super Bowl", "k": 1}
    with serve({"demo": collection_factory(shards=2)}, keys, rate_per_s=0.5, burst=2) as c:
        codes = [
            c.post("/v1/collections/demo/search", json=body, headers=keys.header("read"))
            for _ in range(3)
        ]
        other = c.post("/v1/collections/demo/search", json=body, headers=keys.header("admin"))
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].headers["retry-after"] == "2"  # ⌈(1 − 0) / 0.5⌉
    assert codes[2].json()["error"]["code"] == "rate_limited"
    assert other.status_code == 200  # another key has its own bucket


def test_admission_control_sheds_with_429_and_never_errors(
    collection_factory: Any, keys: Keys
) -> None:
    from tests.e2e._server import running

    from ragfleet.serve.app import create_app
    from ragfleet.serve.settings import ServeSettings

    settings = ServeSettings(max_inflight=2, rate_per_s=0, retry_after_s=3)
    app = create_app({"demo": collection_factory(shards=2)}, settings, keys.store)

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(headers=keys.header("read"), timeout=30) as client:
            body = {"question": "Who won Super Bowl 50?"}
            return list(await asyncio.gather(
                *(client.post(f"{url}/v1/collections/demo/ask", json=body) for _ in range(24))
            ))  # fmt: skip

    with running(app) as url:
        responses = asyncio.run(burst(url))
        health = httpx.get(f"{url}/healthz")  # health is never shed
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 429} and codes.count(200) >= 2, codes
    shed = [r for r in responses if r.status_code == 429]
    assert all(r.headers["retry-after"] == "3" for r in shed)
    assert all(r.json()["error"]["code"] == "overloaded" for r in shed)
    assert health.status_code == 200


def test_body_size_limits(client: TestClient, keys: Keys, collection_factory: Any) -> None:
    with serve({"demo": collection_factory(shards=2)}, keys, max_body_bytes=200) as c:
        big = {"query": "x" * 300}
        res = c.post("/v1/collections/demo/search", json=big, headers=keys.header("read"))
        assert res.status_code == 413 and res.json()["error"]["code"] == "body_too_large"

        def chunks() -> Any:  # no Content-Length: counted as it streams in
            yield b'{"query": "'
            yield b"y" * 400
            yield b'"}'

        res = c.post("/v1/collections/demo/search", content=chunks(), headers=keys.header("read"))
        assert res.status_code == 413 and "200 bytes" in res.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"query": "q", "k": 101}, 422, "max_k=100"),  # above the server's limit
        ({"query": "q", "k": 5000}, 422, "less than or equal to 1000"),  # above the schema's
        ({"query": "q", "k": 0}, 422, "greater than or equal to 1"),
        ({"query": "q" * 3000}, 422, "at most 2048"),
        ({"query": "   "}, 422, "pattern"),
        ({"query": "q", "mode": "fuzzy"}, 422, "mode"),
        ({"query": "q", "extra": 1}, 422, "extra"),
        ({"query": "q", "filter": {"year": {"between": 1}}}, 400, "filter"),
    ],
)
def test_search_limits_explain_themselves(
    client: TestClient, keys: Keys, body: dict[str, Any], status: int, fragment: str
) -> None:
    res = client.post("/v1/collections/demo/search", json=body, headers=keys.header("read"))
    assert res.status_code == status, res.text
    assert fragment in res.json()["error"]["message"]


def test_batch_limit(collection_factory: Any, scratch: Any, keys: Keys) -> None:
    docs = [{"doc_id": f"d{i}", "text": "t"} for i in range(3)]
    with serve({"scratch": scratch}, keys, max_batch_docs=2) as c:
        res = c.post(
            "/v1/collections/scratch/documents",
            json={"documents": docs},
            headers=keys.header("write"),
        )
    assert res.status_code == 422 and "split the batch" in res.json()["error"]["message"]
