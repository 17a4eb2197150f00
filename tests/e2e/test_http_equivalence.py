"""HTTP == in-process: a search over HTTP returns exactly ``Results.to_dict()`` (timings
aside), an ask exactly ``PipelineResponse.to_dict()``; the Python client round-trips the
engine's types; ``ragfleet bench load`` drives the real server."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

import httpx

from ragfleet.client import Client, HTTPError
from ragfleet.pipeline import Pipeline
from ragfleet.types import Document

QUERIES = ["Who won Super Bowl 50?", "Beyonce's first solo album", "Norman conquest of England"]


def untimed(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "timings_ms"}


@pytest.fixture(scope="module")
def served(collection_factory: Any, tmp_path_factory: Any, encoder: Any) -> Iterator[Any]:
    from tests.e2e._server import running

    from ragfleet.collection import Collection
    from ragfleet.serve.app import create_app
    from ragfleet.serve.auth import KeyStore, new_key
    from ragfleet.serve.settings import ServeSettings

    demo = collection_factory(shards=2)
    scratch = Collection.create(tmp_path_factory.mktemp("scratch") / "c", encoder=encoder)
    key, record = new_key("e2e", ("write",), iterations=1000)
    app = create_app({"demo": demo, "scratch": scratch}, ServeSettings(), KeyStore([record]))
    with running(app) as url:
        yield url, key, demo
    scratch.close()


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize("query", QUERIES)
def test_search_json_equals_in_process(served: Any, query: str, mode: str) -> None:
    url, key, demo = served
    body = {"query": query, "k": 5, "mode": mode}
    res = httpx.post(f"{url}/v1/collections/demo/search", json=body,
                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert res.status_code == 200, res.text
    local = demo.search(query, k=5, mode=mode).to_dict()
    assert untimed(res.json()) == untimed(local)
    assert set(res.json()["timings_ms"]) == set(local["timings_ms"])


def test_search_with_filter_and_unique_docs_equals_in_process(served: Any) -> None:
    url, key, demo = served
    with Client(url, key) as client:
        got = client.search("demo", "football", k=4, unique_docs=True, depth=50)
    want = demo.search("football", k=4, unique_docs=True, depth=50)
    assert untimed(got.to_dict()) == untimed(want.to_dict())


def test_ask_json_and_stream_equal_in_process(served: Any) -> None:
    url, key, demo = served
    question = QUERIES[0]
    local = Pipeline(demo).ask(question, budget_ms=60000).to_dict()
    with Client(url, key) as client:
        got = client.ask("demo", question, budget_ms=60000)
    assert (
        got.answer == local["answer"] and [c.to_dict() for c in got.citations] == local["citations"]
    )
    assert [h.to_dict() for h in got.hits] == local["hits"]
    headers = {"Authorization": f"Bearer {key}"}
    body = {"question": question, "budget_ms": 60000, "stream": True}
    with httpx.stream("POST", f"{url}/v1/collections/demo/ask", json=body, headers=headers) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = [block.split("\n", 1) for block in text.strip().split("\n\n")]
    names = [e[0].removeprefix("event: ") for e in events]
    assert names == ["hits", "token", "answer", "done"]  # extractive: the answer in one piece
    assert json.loads(events[1][1].removeprefix("data: "))["text"] == local["answer"]
    done = json.loads(events[3][1].removeprefix("data: "))
    assert untimed(done) == {**untimed(local), "slo_met": done["slo_met"]}


def test_client_writes_and_errors(served: Any) -> None:
    url, key, _ = served
    docs = [
        Document(f"doc/{i}", f"Text number {i} about token buckets.", f"T{i}") for i in range(3)
    ]
    with Client(url, key) as client:
        report = client.upsert("scratch", docs, batch_size=2)
        assert report["documents_written"] == 3 and report["documents_seen"] == 3
        assert client.stats("scratch")["documents"] == 3
        assert client.search("scratch", "token buckets", k=3).hits[0].doc_id.startswith("doc/")
        assert client.delete("scratch", ["doc/0", "absent"]) == 1
        assert client.stats("scratch")["documents"] == 2
        with pytest.raises(HTTPError) as e:
            client.search("nope", "q")
        assert (e.value.status, e.value.code) == (404, "not_found")
    with Client(url, "rf_00000000_bad") as bad, pytest.raises(HTTPError) as e:
        bad.stats("demo")
    assert e.value.status == 401


def _bench_app() -> Any:
    import typer

    from ragfleet.cli import bench, serve_cmds

    app = typer.Typer()
    bench.register(app)
    serve_cmds.register(app)
    return app


def test_bench_load_cli(served: Any, tmp_path: Path) -> None:
    url, key, _ = served
    app = _bench_app()
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        "".join(json.dumps({"_id": str(i), "text": q}) + "\n" for i, q in enumerate(QUERIES))
    )
    out = tmp_path / "out"
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, [
        "bench", "load", "--url", f"{url}/v1/collections/demo", "--queries", str(queries),
        "--concurrency", "1", "--concurrency", "4", "--duration", "1", "--key", key,
        "--out", str(out),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    runs = json.loads((out / "load.json").read_text())
    assert [r["concurrency"] for r in runs] == [1, 4]
    for r in runs:
        assert r["errors"] == 0 and r["ok"] > 0 and r["qps"] > 0
        assert r["latency_ms"]["p50"] <= r["latency_ms"]["p99"]
        assert {"embed", "search", "total"} <= set(r["stages_ms"])
    assert (out / "load.png").stat().st_size > 0


def test_bench_load_open_loop_cli(served: Any, tmp_path: Path) -> None:
    url, key, _ = served
    app = _bench_app()
    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(QUERIES) + "\n")
    out = tmp_path / "out"
    from typer.testing import CliRunner

    base = ["bench", "load", "--url", f"{url}/v1/collections/demo", "--queries", str(queries),
            "--duration", "2", "--key", key, "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(app, [*base, "--rate", "20", "--rate", "5", "--slo-ms", "200"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "load.json").read_text())
    assert [r["rate"] for r in report["open_loop"]] == [5, 20]
    for r in report["open_loop"]:
        assert r["errors"] == 0 and r["ok"] + r["shed_429"] == r["sent"] > 0 and r["dropped"] == 0
        assert r["latency_ms"]["p50"] <= r["latency_ms"]["p99"]
    bend = report["knee"]  # None when even 5/s was not kept up (a loaded box, 429s)
    if bend is None:
        assert "no knee" in res.output
    else:
        assert bend["target_ms"] == 200 and bend["rate"] in (5, 20)
        assert bend["admission_limit"] == max(1, math.ceil(bend["throughput_qps"] * 0.2))
        assert "admission limit" in res.output
    assert (out / "load.png").stat().st_size > 0
    both = CliRunner().invoke(app, [*base, "--rate", "5", "--concurrency", "2"])
    assert both.exit_code == 2 and "not both" in both.output
    bad = CliRunner().invoke(app, [*base, "--rate", "0"])
    assert bad.exit_code == 2 and "rate must be" in bad.output
    for slo in ("nan", "inf", "-1"):
        bad = CliRunner().invoke(app, [*base, "--rate", "5", "--slo-ms", slo])
        assert bad.exit_code == 2 and "--slo-ms must be" in bad.output
