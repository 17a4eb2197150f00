"""schemathesis against the served OpenAPI document with a read+write key: no input the
schema allows (and a share of inputs it does not) gets a 5xx, and every 4xx explains
itself as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

import httpx  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MAX_EXAMPLES = 20  # per operation


@pytest.fixture(scope="module")
def served(tmp_path_factory: Any, encoder: Any) -> Iterator[tuple[str, str]]:
    from tests.conftest import demo_docs
    from tests.e2e._server import running

    from ragfleet.collection import Collection
    from ragfleet.serve.app import create_app
    from ragfleet.serve.auth import KeyStore, new_key
    from ragfleet.serve.settings import ServeSettings

    col = Collection.build(tmp_path_factory.mktemp("fuzz") / "c", demo_docs(20), encoder=encoder)
    key, record = new_key("fuzz", ("read", "write"), iterations=1000)
    app = create_app({"fuzz": col}, ServeSettings(rate_per_s=0), KeyStore([record]))
    with running(app) as url:
        yield url, key
    col.close()


def fuzz(op: Any, url: str, headers: dict[str, str]) -> set[int]:
    """Run ``MAX_EXAMPLES`` generated requests against one operation; their statuses."""
    codes: set[int] = set()

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=op.as_strategy(), real=st.booleans())
    def run(case: Any, real: bool) -> None:
        if real and "name" in (case.path_parameters or {}):
            case.path_parameters["name"] = "fuzz"  # reach the engine, not only the 404
        res = case.call(base_url=url, headers=headers)
        codes.add(res.status_code)
        assert res.status_code < 500, (case.method, case.formatted_path, case.body, res.text)
        if res.status_code >= 400:
            err = res.json()["error"]
            assert err["code"] and len(err["message"]) >= 8, res.text

    run()
    return codes


def test_no_server_errors(served: tuple[str, str]) -> None:
    url, key = served
    headers = {"Authorization": f"Bearer {key}"}
    spec = httpx.get(f"{url}/openapi.json", headers=headers).json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) == 9
    seen = {f"{op.method.upper()} {op.path}": fuzz(op, url, headers) for op in operations}
    print(seen)
    assert all(seen.values())
    assert 200 in seen["POST /v1/collections/{name}/search"]
    assert 200 in seen["POST /v1/collections/{name}/documents"]


def _nested(depth: int) -> dict[str, Any]:
    f: dict[str, Any] = {"year": 2000}
    for _ in range(depth):
        f = {"not": f}
    return f


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"query": "q", "filter": _nested(200)}, 400, "nests deeper than 8"),
        ({"query": "q", "filter": {"or": [{"y": i} for i in range(2000)]}}, 400, "at most 256"),
        ({"query": "q", "filter": {"y": {"in": list(range(300))}}}, 400, "at most 256"),
        ({"query": "q", "k": 10**9}, 422, "less than or equal to 1000"),
        ({"query": "q", "k": 500}, 422, "max_k=100"),
        ({"query": "q", "ef_search": 0}, 422, "greater than or equal to 1"),
        ({"query": "q", "timeout_ms": -1}, 422, "greater than 0"),
    ],
)
def test_oversized_requests_get_a_4xx_that_names_the_limit(
    served: tuple[str, str], body: dict[str, Any], status: int, message: str
) -> None:
    url, key = served
    res = httpx.post(
        f"{url}/v1/collections/fuzz/search", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert res.status_code == status, res.text
    assert message in res.json()["error"]["message"], res.text
