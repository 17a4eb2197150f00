"""Every route × {no key, wrong key, read, write, admin}: who gets in, and what they are told."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.unit.serve.conftest import Keys

WHO = (None, "wrong", "read", "write", "admin")
DOC = {"doc_id": "m1", "text": "The matrix document about token buckets.", "title": "m"}

# route → (method, path, json body, lowest scope that may call it)
ROUTES: dict[str, tuple[str, str, Any, str | None]] = {
    "search": ("POST", "/v1/collections/demo/search", {"query": "Super Bowl", "k": 2}, "read"),
    "ask": ("POST", "/v1/collections/demo/ask", {"question": "Who won Super Bowl 50?"}, "read"),
    "stats": ("GET", "/v1/collections/demo/stats", None, "read"),
    "upsert": ("POST", "/v1/collections/scratch/documents", {"documents": [DOC]}, "write"),
    "delete": ("DELETE", "/v1/collections/scratch/documents/m1", None, "write"),
    "metrics": ("GET", "/metrics", None, "admin"),
    "openapi": ("GET", "/openapi.json", None, "read"),
    "healthz": ("GET", "/healthz", None, None),
    "readyz": ("GET", "/readyz", None, None),
}
LEVEL = {"read": 0, "write": 1, "admin": 2}


def expected(who: str | None, needs: str | None) -> int:
    if needs is None:
        return 200
    if who in (None, "wrong"):
        return 401
    return 200 if LEVEL[who] >= LEVEL[needs] else 403


@pytest.mark.parametrize("who", WHO, ids=lambda w: str(w))
@pytest.mark.parametrize("route", list(ROUTES))
def test_matrix(client: TestClient, keys: Keys, route: str, who: str | None) -> None:
    method, path, body, needs = ROUTES[route]
    if route == "delete" and expected(who, needs) == 200:  # something to delete
        r = client.post(
            ROUTES["upsert"][1], json={"documents": [DOC]}, headers=keys.header("admin")
        )
        assert r.status_code == 200, r.text
    res = client.request(method, path, json=body, headers=keys.header(who))
    assert res.status_code == expected(who, needs), res.text
    if res.status_code >= 400:
        err = res.json()["error"]
        assert err["code"] in ("unauthenticated", "invalid_key", "forbidden")
        assert len(err["message"]) > 10
        assert keys.read not in res.text and keys.admin not in res.text


def test_restricted_key_sees_only_its_collections(client: TestClient, keys: Keys) -> None:
    res = client.post(
        "/v1/collections/demo/search", json={"query": "q"}, headers=keys.header("other")
    )
    assert res.status_code == 403
    assert res.json()["error"]["message"] == "this key may not use collection 'demo'"
    # an unknown collection is 404 only to a key that may look at it
    res = client.get("/v1/collections/other/stats", headers=keys.header("other"))
    assert res.status_code == 404 and res.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "bearer rf_zz", "Token abc", "Bearer rf_1_2_3"],
)
def test_malformed_authorization_is_401(client: TestClient, header: str) -> None:
    res = client.get("/v1/collections/demo/stats", headers={"Authorization": header})
    assert res.status_code == 401
    assert res.json()["error"]["code"] in ("unauthenticated", "invalid_key")


def test_a_key_for_another_id_with_the_right_secret_shape_is_refused(
    client: TestClient, keys: Keys
) -> None:
    _, key_id, secret = keys.read.split("_", 2)
    forged = f"rf_{key_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    res = client.get("/v1/collections/demo/stats", headers={"Authorization": f"Bearer {forged}"})
    assert res.status_code == 401
