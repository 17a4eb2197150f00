"""The hot routes' JSON encoder writes what json.dumps writes (parsed back: the same
value), for the shapes a search response holds."""

from __future__ import annotations

import json
import math

from ragfleet.serve.jsonbody import FastJSONResponse


def test_the_same_json_as_json_dumps() -> None:
    body = {
        "hits": [{"chunk_id": "d/ü#0", "doc_id": "d/ü", "score": 0.1 + 0.2, "rank": 1,
                  "text": 'line\n"quoted" ☃ \u2028', "metadata": {"year": 2016, "tags": ["a"]}}],
        "timings_ms": {"embed": 5.25, "total": 9.0}, "coverage": 1.0, "missing_shards": [],
        "degraded": None, "big": 2**62, "small": -1e-300,
    }  # fmt: skip
    res = FastJSONResponse(body)
    assert json.loads(res.body) == body == json.loads(json.dumps(body))
    assert res.headers["content-type"] == "application/json"
    assert int(res.headers["content-length"]) == len(res.body)


def test_non_finite_floats_become_null() -> None:
    assert json.loads(FastJSONResponse({"s": math.nan, "t": math.inf}).body) == {
        "s": None,
        "t": None,
    }


def test_a_body_nested_past_pydantic_cores_depth_falls_back_to_json_dumps() -> None:
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(400):
        deep = {"n": deep}
    assert json.loads(FastJSONResponse({"metadata": deep}).body) == {"metadata": deep}
