"""``/ask`` with ``"stream": true`` sends each event when it exists (issue 15): the hits
before generation starts, each token of a streaming generator as the model produces it —
not everything at the end."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

import httpx
from tests.e2e._server import running


def test_hits_and_tokens_arrive_while_the_answer_is_generated(
    collection_factory: Any, tmp_path: Path
) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (extra 'llama') is not installed")
    from ragfleet.generate.llama import LlamaConfig, LlamaGenerator, bundled_model_path
    from ragfleet.pipeline import Pipeline, PipelineConfig
    from ragfleet.serve.app import create_app
    from ragfleet.serve.auth import KeyStore, new_key
    from ragfleet.serve.settings import ServeSettings

    demo = collection_factory(shards=2)
    llm = LlamaGenerator(LlamaConfig(model_path=str(bundled_model_path(tmp_path)), max_tokens=48))
    # no fallback: on a loaded machine the warm-up's generation can take most of the minute,
    # and the planner would then answer extractively (one token event) — not this test's topic
    pipe = Pipeline(demo, generator=llm, config=PipelineConfig(budget_ms=60_000), fallback=None)
    key, record = new_key("sse", ("read",), iterations=1000)
    app = create_app({"demo": demo}, ServeSettings(), KeyStore([record]), {"demo": pipe})
    body = {"question": "Which NFL team won Super Bowl 50?", "budget_ms": 60_000, "stream": True}
    arrivals: list[tuple[str, float, Any]] = []
    with running(app, startup_s=300) as url:
        t0 = time.monotonic()
        auth = {"Authorization": f"Bearer {key}"}
        ask = f"{url}/v1/collections/demo/ask"
        with httpx.stream("POST", ask, json=body, headers=auth, timeout=300) as r:
            buffer = ""
            for piece in r.iter_text():
                buffer += piece
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    head, data = block.split("\n", 1)
                    arrivals.append(
                        (head.removeprefix("event: "), time.monotonic() - t0,
                         json.loads(data.removeprefix("data: ")))
                    )  # fmt: skip
    names = [a[0] for a in arrivals]
    assert names[0] == "hits" and names[-2:] == ["answer", "done"], names
    assert arrivals[-1][2]["degraded"] == {}, arrivals[-1][2]["degraded"]
    tokens = [a for a in arrivals if a[0] == "token"]
    assert len(tokens) >= 5, names
    done_at = arrivals[-1][1]
    # the passages came before the model even started (it reads the whole prompt first)
    assert arrivals[0][1] < tokens[0][1]
    # the tokens arrived as the model made them, spread over the decoding, not in one burst
    spread = tokens[-1][1] - tokens[0][1]
    assert spread > 0.5 * (done_at - tokens[0][1]), (spread, tokens[0][1], done_at)
    times = [t[1] for t in tokens]
    assert sum(b - a > 0.005 for a, b in itertools.pairwise(times)) >= 4, times
    streamed = "".join(t[2]["text"] for t in tokens).strip()
    assert arrivals[-1][2]["answer"].startswith(streamed)  # (a citation may be appended)
