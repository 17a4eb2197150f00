"""Metrics, JSON logs with request ids (and no secrets), and OpenTelemetry stage spans."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from fastapi.testclient import TestClient
from tests.unit.serve.conftest import Keys, serve

from ragfleet.serve.logging import LOGGER, JsonFormatter, new_request_id, redact
from ragfleet.serve.tracing import Tracing


def test_metrics_cover_stages_shards_coverage_cache_and_batches(
    client: TestClient, keys: Keys
) -> None:
    for q in ("Super Bowl", "Beyonce"):
        body = {"query": q, "mode": "hybrid"}
        assert client.post("/v1/collections/demo/search", json=body, headers=keys.header("read"))
    text = client.get("/metrics", headers=keys.header("admin")).text
    for stage in ("embed", "search", "merge", "fuse", "fetch", "total"):
        assert f'ragfleet_stage_seconds_count{{endpoint="search",stage="{stage}"}}' in text
    for shard in ("0", "1"):
        assert f'ragfleet_shard_search_seconds_count{{collection="demo",shard="{shard}"}}' in text
    assert 'ragfleet_coverage_bucket{endpoint="search",le="1.0"}' in text
    assert 'ragfleet_cache_requests_total{endpoint="search",result="miss"}' in text
    assert "ragfleet_embed_batch_size_count" in text
    assert (
        'ragfleet_request_seconds_count{route="/v1/collections/{name}/search",status="200"}' in text
    )


def test_logs_are_json_with_the_request_id_and_no_key(client: TestClient, keys: Keys) -> None:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    try:
        res = client.post(
            "/v1/collections/demo/search", json={"query": "Super Bowl"},
            headers={**keys.header("read"), "X-Request-ID": "req-42"},
        )  # fmt: skip
        client.get("/v1/collections/demo/stats", headers=keys.header("wrong"))
    finally:
        logger.removeHandler(handler)
    assert res.headers["x-request-id"] == "req-42"
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    access = [x for x in lines if x["msg"] == "request"]
    assert access[0]["request_id"] == "req-42" and access[0]["key"] == "reader"
    assert access[0]["status"] == 200 and access[1]["status"] == 401
    text = buf.getvalue()
    assert keys.read not in text and "Bearer" not in text and "not-a-key" not in text


def test_request_ids_and_redaction() -> None:
    assert new_request_id("abc-1.2_3") == "abc-1.2_3"
    for bad in (None, "", "a b", "x" * 65, "id\nforged: 1"):
        rid = new_request_id(bad)
        assert len(rid) == 16 and int(rid, 16) >= 0
    assert redact("auth=Bearer abc.def x") == "auth=Bearer [redacted] x"
    assert redact("key rf_0123abcd_SeCrEt-_x end") == "key [redacted] end"


def test_tracing_is_off_by_default_and_lays_stages_end_to_end() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    assert not Tracing().enabled
    tracing = Tracing("console")
    memory = InMemorySpanExporter()
    tracing.provider.add_span_processor(SimpleSpanProcessor(memory))
    timings = {"embed": 2.0, "search": 3.0, "fetch": 1.0, "total": 7.0}
    tracing.record("search", 1_000_000, 8_000_000, timings, {"ragfleet.collection": "demo"})
    assert sorted(s.name for s in memory.get_finished_spans()) == [
        "embed", "fetch", "search", "search",
    ]  # fmt: skip
    children = sorted(
        (s for s in memory.get_finished_spans() if s.parent), key=lambda s: s.start_time
    )
    assert [s.name for s in children] == ["embed", "search", "fetch"]
    assert [(s.start_time, s.end_time) for s in children] == [
        (1_000_000, 3_000_000), (3_000_000, 6_000_000), (6_000_000, 7_000_000),
    ]  # fmt: skip
    root = next(s for s in memory.get_finished_spans() if s.parent is None)
    assert all(c.parent.span_id == root.context.span_id for c in children)
    tracing.shutdown()


def test_result_cache_hits_are_served_and_counted(collection_factory: Any, keys: Keys) -> None:
    body = {"query": "Who won Super Bowl 50?", "k": 3, "mode": "hybrid"}
    with serve({"demo": collection_factory(shards=2)}, keys, cache_bytes=1 << 20) as c:
        first, second = (
            c.post("/v1/collections/demo/search", json=body, headers=keys.header("read")).json()
            for _ in range(2)
        )
        text = c.get("/metrics", headers=keys.header("admin")).text
    assert first["cache"] == {"hit": False, "kind": None}
    assert second["cache"] == {"hit": True, "kind": "exact"}
    assert second["hits"] == first["hits"]
    assert 'ragfleet_cache_requests_total{endpoint="search",result="hit"} 1.0' in text
    assert 'ragfleet_cache_requests_total{endpoint="search",result="miss"} 1.0' in text


def test_answer_sentences_share_the_batcher_and_are_restored(
    collection_factory: Any, keys: Keys
) -> None:
    """While serving, /ask's extractive encodes through the micro-batcher (one model call at
    a time); when the server stops, it has the collection's own encoder again."""
    from ragfleet.generate.extractive import Extractive
    from ragfleet.serve.batching import BatchingEncoder

    col = collection_factory(shards=2)
    with serve({"demo": col}, keys, answer_dense=True) as c:
        svc = c.app.state.service  # type: ignore[attr-defined]
        gen = svc.pipelines["demo"].generator
        assert isinstance(gen, Extractive) and isinstance(gen.encoder, BatchingEncoder)
        body = {"question": "Which team won Super Bowl 50?", "budget_ms": 5000}
        r = c.post("/v1/collections/demo/ask", json=body, headers=keys.header("read"))
        assert r.status_code == 200 and r.json()["citations"]
    assert gen.encoder is col.encoder  # restored (the searcher may be another server's)
    with serve({"demo": col}, keys) as c:  # the default: lexical answers, no model time
        assert c.app.state.service.pipelines["demo"].generator.encoder is None  # type: ignore[attr-defined]
