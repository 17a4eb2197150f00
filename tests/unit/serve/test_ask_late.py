"""/ask reranks by late interaction over stored token vectors when the server is told to."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.serve.conftest import Keys, serve

pytestmark = pytest.mark.model


def test_ask_uses_the_late_reranker_when_configured(collection_factory: Any, keys: Keys) -> None:
    from ragfleet.rerank.late import LateReranker

    late, plain = collection_factory(1, tokens=True), collection_factory(1)
    with serve({"late": late, "plain": plain}, keys, reranker="late", rerank_n=12) as c:
        svc = c.app.state.service  # type: ignore[attr-defined]
        rr = svc.pipelines["late"].reranker
        assert isinstance(rr, LateReranker) and rr.config.candidates == 12
        assert svc.pipelines["plain"].reranker is None  # stores no token vectors
        body = {"question": "Which team won Super Bowl 50?", "budget_ms": 5000}
        r = c.post("/v1/collections/late/ask", json=body, headers=keys.header("read"))
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["timings_ms"]["rerank"] > 0, out
        assert svc.pipelines["late"].costs.observed("rerank")  # the planner learned its cost
