"""Every error is JSON ``{"error": {"code", "message"}}`` with a fitting status, never a
traceback; the SSE stream reports its error in-band."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.unit.serve.conftest import Keys, serve

from ragfleet.errors import (
    CollectionError,
    ConfigError,
    DeadlineExceeded,
    InputError,
    MissingDependencyError,
    RagfleetError,
)
from ragfleet.generate.base import Answer
from ragfleet.pipeline import Pipeline
from ragfleet.serve.errors import status_of
from ragfleet.types import Hit


@pytest.mark.parametrize(
    ("error", "status"),
    [(InputError("x"), 400), (ConfigError("x"), 422), (CollectionError("x"), 409),
     (MissingDependencyError("x"), 501), (DeadlineExceeded("x"), 504), (RagfleetError("x"), 500)],
)  # fmt: skip
def test_status_of_each_branch_of_the_tree(error: RagfleetError, status: int) -> None:
    assert status_of(error)[0] == status


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/collections/nope/search", {"query": "q"}, 404, "not_found"),
        ("GET", "/v1/nothing-here", None, 404, "not_found"),
        ("PUT", "/v1/collections/demo/search", {"query": "q"}, 405, "method_not_allowed"),
        ("DELETE", "/v1/collections/scratch/documents/absent", None, 404, "not_found"),
        ("POST", "/v1/collections/demo/ask", {"question": ""}, 422, "invalid_request"),
        ("POST", "/v1/collections/scratch/documents", {"documents": []}, 422, "invalid_request"),
        ("POST", "/v1/collections/scratch/documents",
         {"documents": [{"doc_id": "a#1", "text": "t"}]}, 422, "invalid_request"),
    ],
)  # fmt: skip
def test_errors_are_json(
    client: TestClient, keys: Keys, method: str, path: str, body: Any, status: int, code: str
) -> None:
    res = client.request(method, path, json=body, headers=keys.header("admin"))
    assert res.status_code == status, res.text
    assert res.headers["content-type"] == "application/json"
    err = res.json()["error"]
    assert err["code"] == code and err["message"]


def test_malformed_json_is_422(client: TestClient, keys: Keys) -> None:
    res = client.post(
        "/v1/collections/demo/search", content=b"{not json",
        headers={**keys.header("read"), "Content-Type": "application/json"},
    )  # fmt: skip
    assert res.status_code == 422 and res.json()["error"]["code"] == "invalid_request"


class Boom:
    """A generator that fails the way a bug would."""

    name = "boom"

    def generate(
        self, query: str, hits: tuple[Hit, ...], timeout_ms: float | None = None
    ) -> Answer:
        raise RuntimeError("secret internal detail /etc/passwd")


def test_a_crash_is_500_with_a_request_id_and_no_traceback(
    collection_factory: Any, keys: Keys
) -> None:
    from ragfleet.serve.app import create_app
    from ragfleet.serve.settings import ServeSettings

    col = collection_factory(shards=2)
    app = create_app(
        {"demo": col},
        ServeSettings(),
        keys.store,
        pipelines={"demo": Pipeline(col, generator=Boom())},
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        body = {"question": "Who won Super Bowl 50?", "budget_ms": 60000}
        res = c.post("/v1/collections/demo/ask", json=body, headers=keys.header("read"))
        stream = c.post(
            "/v1/collections/demo/ask", json={**body, "stream": True}, headers=keys.header("read")
        )
    assert res.status_code == 500
    rid = res.headers["x-request-id"]
    assert res.json() == {
        "error": {"code": "internal", "message": f"internal error; quote request id {rid}"}
    }
    for text in (res.text, stream.text):
        assert "Traceback" not in text and "passwd" not in text and "RuntimeError" not in text
    blocks = stream.text.strip().split("\n\n")
    assert stream.status_code == 200 and [b.split("\n")[0] for b in blocks] == [
        "event: hits",  # the passages were found before generation failed
        "event: error",
    ]
    event = json.loads(blocks[-1].split("data: ", 1)[1])
    assert event["error"]["code"] == "internal" and event["error"]["status"] == 500


def test_read_only_server_refuses_writes(scratch: Any, keys: Keys) -> None:
    with serve({"scratch": scratch}, keys, read_only=True) as c:
        res = c.post(
            "/v1/collections/scratch/documents",
            json={"documents": [{"doc_id": "a", "text": "t"}]}, headers=keys.header("write"),
        )  # fmt: skip
    assert res.status_code == 409 and res.json()["error"]["code"] == "read_only"


def test_a_body_without_a_json_content_type_is_told_to_send_one(client: Any, keys: Any) -> None:
    res = client.post(
        "/v1/collections/demo/search",
        content=b'{"query": "q"}',
        headers={**keys.header("read"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert res.status_code == 422
    assert "Content-Type: application/json" in res.json()["error"]["message"]
