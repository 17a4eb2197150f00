import json
import sqlite3

import pytest

from ragfleet.errors import InputError
from ragfleet.search.filters import compile_filter

ROWS = [
    {"year": 2010, "kind": "paper", "tags": "a"},
    {"year": 2015, "kind": "paper"},
    {"year": 2020, "kind": "blog", "open": True},
    {"year": 2023, "kind": "blog", "date": "2023-05-01"},
    {"kind": "note", "source": {"kind": "pdf"}},
]


def _match(spec: object) -> list[int]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE chunks (row INTEGER, metadata TEXT)")
    db.executemany(
        "INSERT INTO chunks VALUES (?, ?)", [(i, json.dumps(m)) for i, m in enumerate(ROWS)]
    )
    where = compile_filter(spec)  # type: ignore[arg-type]
    assert where is not None
    return [r for (r,) in db.execute(f"SELECT row FROM chunks WHERE {where[0]}", where[1])]


@pytest.mark.parametrize(
    ("spec", "rows"),
    [
        ({"kind": "paper"}, [0, 1]),
        ({"year": {"gte": 2015}}, [1, 2, 3]),
        ({"year": {"gt": 2010, "lt": 2023}}, [1, 2]),
        ({"kind": {"in": ["blog", "note"]}}, [2, 3, 4]),
        ({"or": [{"kind": "note"}, {"year": 2010}]}, [0, 4]),
        ({"and": [{"kind": "blog"}, {"year": {"lte": 2020}}]}, [2]),
        ({"not": {"kind": "paper"}}, [2, 3, 4]),
        ({"not": {"year": 2010}}, [1, 2, 3, 4]),  # a missing field is "not equal"
        ({"year": {"ne": 2010}}, [1, 2, 3]),  # but a condition on it never matches
        ({"open": True}, [2]),
        ({"date": {"gte": "2023-01-01"}}, [3]),
        ({"source.kind": "pdf"}, [4]),
        ({"kind": "blog", "year": 2023}, [3]),
        ('{"kind": "paper"}', [0, 1]),
    ],
)
def test_filter_semantics(spec: object, rows: list[int]) -> None:
    assert _match(spec) == rows


def test_none_is_no_filter() -> None:
    assert compile_filter(None) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{not json", "not valid JSON"),
        ({}, "non-empty"),
        ({"year": {"approx": 3}}, "unknown filter operator"),
        ({"a'; DROP TABLE chunks; --": 1}, "bad filter field"),
        ({"year": [1, 2]}, "string, number or bool"),
        ({"year": {"in": []}}, "non-empty list"),
        ({"or": {}}, "non-empty list"),
    ],
)
def test_bad_filters_explain_themselves(spec: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        compile_filter(spec)  # type: ignore[arg-type]


def test_values_are_parameters_not_sql() -> None:
    sql, params = compile_filter({"kind": "x' OR '1'='1"})  # type: ignore[misc]
    assert "OR '1'" not in sql and params == ("x' OR '1'='1",)
    assert _match({"kind": "x' OR '1'='1"}) == []
