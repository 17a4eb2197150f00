"""``ragfleet feed publish | status`` and ``ingest-worker`` from the command line: bad input
is one line and exit 2; a published file is consumed and reported."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.reliability.procs import ENV, RAGFLEET, ragfleet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_addresses_and_missing_groups_exit_2(stream_url: Callable[[], str],
                                                 tmp_path: Path) -> None:  # fmt: skip
    for args in (["feed", "publish", "http://x?stream=s", str(tmp_path)],
                 ["feed", "status", "redis://127.0.0.1:1/0"],
                 ["feed", "status", stream_url(), "--group", "nobody"],
                 ["feed", "publish", stream_url()]):  # fmt: skip
        done = ragfleet(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1


def test_publish_consume_status(stream_url: Callable[[], str], tmp_path: Path) -> None:
    url = stream_url()
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"_id": f"d{i}", "text": f"text {i}"}) + "\n"
                           for i in range(12)))  # fmt: skip
    (tmp_path / "gone.txt").write_text("d3\nd4\n")
    col = tmp_path / "c"
    assert ragfleet("ingest", src, "--collection", col, "--shards", "2").returncode == 0
    done = ragfleet("feed", "publish", url, src, "--deletes", tmp_path / "gone.txt")
    assert done.returncode == 0 and "14 entries published" in done.stderr, done.stderr
    port = free_port()
    worker = subprocess.Popen([str(RAGFLEET), "ingest-worker", str(col), "--stream", url,
                               "--group", "g", "--metrics-port", str(port)],
                              env=ENV, stderr=subprocess.PIPE)  # fmt: skip
    try:
        for _ in range(300):
            st = ragfleet("feed", "status", url, "--group", "g", "--json")
            if st.returncode == 0 and json.loads(st.stdout)["pending"] == 0 \
                    and json.loads(st.stdout)["lag_entries"] == 0:  # fmt: skip
                break
            time.sleep(0.2)
        else:
            raise AssertionError(st.stderr)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
    finally:
        worker.terminate()
        assert worker.wait(60) == 0
    assert json.loads(st.stdout)["length"] == 14
    stream = url.split("stream=")[1]
    labels = f'{{group="g",stream="{stream}"}}'

    def value(name: str) -> float:
        want = f"ragfleet_feed_{name}{labels}"
        line = next(x for x in metrics.splitlines() if x.startswith(want))
        return float(line.rsplit(" ", 1)[1])

    # every entry was applied or overtaken by a newer one in its batch (d3, d4 by deletes)
    assert value("applied_total") + value("stale_total") == 14
    assert value("dead_letters_total") == 0 and value("freshness_seconds_count") == 14
    assert value("lag_entries") == 0

    from ragfleet.collection import Collection

    with Collection.open(col, read_only=True) as c:
        live = {d for s in c.shards for d in s.doc_hashes()}
    assert live == {f"d{i}" for i in range(12)} - {"d3", "d4"}
