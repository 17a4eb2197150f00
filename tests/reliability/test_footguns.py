"""Careless use that once cost data or stalled writes (issue 14): ``--sync`` with an empty
source, killed builds, corpora with a few empty documents, huge HTTP uploads."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import demo_docs
from tests.reliability.procs import ENV, RAGFLEET, ragfleet, serving, write_jsonl

from ragfleet.collection import Collection, remove_dead_builds


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"_id": d.doc_id, "title": d.title, "text": d.text} for d in demo_docs(start + n)[start:]
    ]


def test_sync_refuses_an_empty_source_unless_allowed(tmp_path: Path) -> None:
    col = tmp_path / "c"
    assert (
        ragfleet("ingest", write_jsonl(tmp_path / "a.jsonl", _rows(6)), "-c", col, "-q").returncode
        == 0
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    refused = ragfleet("ingest", empty, "-c", col, "--sync", "-q")
    assert refused.returncode == 2, refused
    assert len(refused.stderr.strip().splitlines()) == 1 and "--allow-empty" in refused.stderr
    assert json.loads(ragfleet("stats", col, "--json").stdout)["documents"] == 6
    allowed = ragfleet("ingest", empty, "-c", col, "--sync", "--allow-empty", "-q")
    assert allowed.returncode == 0 and "6 deleted" in allowed.stderr, allowed.stderr
    assert json.loads(ragfleet("stats", col, "--json").stdout)["documents"] == 0


def test_a_killed_build_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "big.jsonl", _rows(600))
    col = tmp_path / "c"
    proc = subprocess.Popen(
        [str(RAGFLEET), "ingest", str(src), "-c", str(col), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
    )  # fmt: skip
    leftover = tmp_path / f".c.building-{proc.pid}"
    deadline = time.monotonic() + 120
    while not (leftover / "collection.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # well into embedding
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert leftover.is_dir() and not col.exists()
    small = write_jsonl(tmp_path / "small.jsonl", _rows(3))
    done = ragfleet("ingest", small, "-c", col, "-q")
    assert done.returncode == 0, done.stderr
    assert not leftover.exists(), "the dead build's directory was left behind"
    assert remove_dead_builds(col) == []


def test_a_corpus_with_a_few_empty_documents_is_ingested(tmp_path: Path) -> None:
    """Like Cranfield: 2 of the documents have neither title nor text."""
    rows = _rows(40)
    rows[7] = {"_id": "blank-7", "title": "", "text": ""}
    rows[23] = {"_id": "blank-23", "title": "  ", "text": "\n"}
    done = ragfleet("ingest", write_jsonl(tmp_path / "c.jsonl", rows), "-c", tmp_path / "c", "-q")
    assert done.returncode == 0, done.stderr
    assert "2 skipped: blank-7 (no text), blank-23 (no text)" in done.stderr, done.stderr
    assert json.loads(ragfleet("stats", tmp_path / "c", "--json").stdout)["documents"] == 38
    bad = [*rows, {"_id": "bad", "text": "x", "metadata": [1, 2]}]
    refused = ragfleet("ingest", write_jsonl(tmp_path / "d.jsonl", bad), "-c", tmp_path / "d", "-q")
    assert refused.returncode == 2 and "--skip-invalid" in refused.stderr, refused.stderr
    skipped = ragfleet("ingest", tmp_path / "d.jsonl", "-c", tmp_path / "d", "--skip-invalid", "-q")
    assert skipped.returncode == 0, skipped.stderr
    assert "1 unreadable record(s) skipped: " in skipped.stderr
    assert "d.jsonl:41 ('metadata' must be an object, got list)" in skipped.stderr


def test_http_uploads_are_bounded_cancellable_and_embed_outside_the_lock(
    tmp_path: Path, encoder: Any
) -> None:
    root = tmp_path / "c"
    Collection.build(root, demo_docs(4), encoder=encoder).close()
    with serving(root, tmp_path, "--max-request-chunks", "64") as server:
        huge = {"documents": [{"doc_id": "huge", "text": "word " * 60_000}]}
        t0 = time.monotonic()
        status, out = server.request("POST", "/v1/collections/c/documents", huge)
        assert status == 400 and "more than the 64" in out["error"]["message"], out
        assert time.monotonic() - t0 < 5  # refused after chunking, before any embedding
        # ~60 chunks that take seconds to embed; the client hangs up after 1 s
        many = {"documents": [{"doc_id": f"m{i}", "text": "some words " * 100} for i in range(60)]}
        host, port = server.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request(
            "POST", "/v1/collections/c/documents", json.dumps(many),
            {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"},
        )  # fmt: skip
        time.sleep(1.0)
        # meanwhile another write is not held up by the embedding
        t1 = time.monotonic()
        status, out = server.request(
            "POST", "/v1/collections/c/documents", {"documents": [{"doc_id": "s", "text": "small"}]}
        )
        assert status == 200, out
        small_s = time.monotonic() - t1
        conn.close()  # the client disconnects
        time.sleep(8.0)
        status, stats = server.request("GET", "/v1/collections/c/stats")
        assert status == 200 and stats["documents"] == 5, stats  # the 4, and "s"; no m*
        code = server.stop(signal.SIGTERM)
        log = server.log.read_text()
    assert code in (0, -signal.SIGTERM)
    assert "cancelled" in log or '"status": 499' in log, log[-2000:]
    assert small_s < 30, small_s
