"""Metadata filters compiled to a SQLite ``WHERE`` clause over the docstore.

Grammar (JSON)::

    filter := {FIELD: VALUE}                       equality
            | {FIELD: {"eq"|"ne"|"gt"|"gte"|"lt"|"lte": VALUE, ...}}   comparisons (and-ed)
            | {FIELD: {"in": [VALUE, ...]}}        membership
            | {"and": [filter, ...]} | {"or": [filter, ...]} | {"not": filter}

Several keys in one object are and-ed. A document without the field never matches a
condition on it, so ``not`` includes it (Elasticsearch's ``must_not`` semantics).
FIELD is a dotted path into the document's
metadata (``{"year": {"gte": 2015}}``, ``{"source.kind": "pdf"}``); dates compare as ISO
strings. Values travel as SQL parameters, never spliced into the statement, and a
field name must match ``[A-Za-z_][A-Za-z0-9_.-]*`` — so a filter cannot inject SQL.
The shard resolves the clause to a row set that dense (FAISS IDSelector) and sparse
search both pre-filter on.

Bounds: a filter nests at most :data:`MAX_FILTER_DEPTH` levels of ``and``/``or``/``not``
and holds at most :data:`MAX_FILTER_TERMS` conditions and ``in`` values in all — far
inside SQLite's own limits (expression depth 1000, 32766 parameters), so an oversized
filter is one clear error instead of a parser failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ragfleet.errors import InputError

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_OPS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
Where = tuple[str, tuple[object, ...]]
MAX_FILTER_DEPTH = 8
MAX_FILTER_TERMS = 256


def compile_filter(spec: Mapping[str, Any] | str | None) -> Where | None:
    """Compile a filter (dict or JSON text) to ``(sql, params)``; ``None`` means no filter."""
    if spec is None:
        return None
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise InputError(f"filter is not valid JSON: {e.msg} at char {e.pos}") from e
    if not isinstance(spec, Mapping) or not spec:
        raise InputError(f"a filter must be a non-empty JSON object, got {spec!r:.200}")
    params: list[object] = []
    sql = _node(spec, params, 1)
    if len(params) > MAX_FILTER_TERMS:
        raise InputError(
            f"the filter has {len(params)} conditions and values; at most {MAX_FILTER_TERMS} "
            "are allowed — filter on a coarser field, or split the query"
        )
    return sql, tuple(params)


def _node(spec: Any, params: list[object], depth: int) -> str:
    if depth > MAX_FILTER_DEPTH:
        raise InputError(
            f"the filter nests deeper than {MAX_FILTER_DEPTH} levels of and/or/not; flatten it"
        )
    if not isinstance(spec, Mapping) or not spec:
        raise InputError(f"a filter clause must be a non-empty object, got {spec!r:.200}")
    parts = []
    for key, value in spec.items():
        if len(params) > MAX_FILTER_TERMS:
            break  # compile_filter reports the count
        if key in ("and", "or"):
            if not isinstance(value, list) or not value:
                raise InputError(f"{key!r} takes a non-empty list of filters, got {value!r:.200}")
            joined = f" {key.upper()} ".join(_node(v, params, depth + 1) for v in value)
            parts.append(f"({joined})")
        elif key == "not":
            parts.append(f"NOT COALESCE(({_node(value, params, depth + 1)}), 0)")
        else:
            parts.append(_field(key, value, params))
    return " AND ".join(parts)


def _field(name: str, value: Any, params: list[object]) -> str:
    if not _FIELD.match(name):
        raise InputError(f"bad filter field {name!r}: use letters, digits, '_', '-' and '.'")
    column = f"json_extract(metadata, '$.{name}')"
    if not isinstance(value, Mapping):
        params.append(_scalar(name, value))
        return f"{column} = ?"
    if not value:
        raise InputError(f"filter on {name!r} has an empty condition")
    parts = []
    for op, arg in value.items():
        if op == "in":
            if not isinstance(arg, list) or not arg:
                raise InputError(f"'in' on {name!r} takes a non-empty list, got {arg!r}")
            params.extend(_scalar(name, a) for a in arg)
            parts.append(f"{column} IN ({','.join('?' * len(arg))})")
        elif op in _OPS:
            params.append(_scalar(name, arg))
            parts.append(f"{column} {_OPS[op]} ?")
        else:
            raise InputError(
                f"unknown filter operator {op!r} on {name!r}; use one of {[*_OPS, 'in']}"
            )
    return " AND ".join(parts)


def _scalar(name: str, value: Any) -> object:
    if isinstance(value, bool):
        return int(value)  # SQLite's json_extract returns 1/0 for true/false
    if isinstance(value, str | int | float):
        return value
    raise InputError(f"filter value for {name!r} must be a string, number or bool, got {value!r}")
