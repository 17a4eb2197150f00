"""The one search request: what a caller may set per query, validated once, resolved once.

:class:`SearchRequest` is frozen and keyword-only; every field is checked when it is built
(the library, the CLI and HTTP all build one, so the bounds below hold everywhere and a
caller's mistake never reaches a shard). ``None`` means "the collection's default";
:meth:`SearchRequest.resolve` fills the defaults from a :class:`~ragfleet.config.SearchConfig`
in exactly one place, and :meth:`SearchRequest.cache_fields` — every field of the resolved
request but ``timeout_ms`` — is what a result cache keys on, so a new field can never be
forgotten by a hand-written key.

Bounds (each violation is an :class:`~ragfleet.errors.InputError` naming the limit):

* ``1 <= k <= MAX_K``; ``k <= depth <= MAX_DEPTH`` (shards clamp both to their size, so
  memory stays bounded by the collection, not by the request);
* ``1 <= ef_search <= MAX_EF_SEARCH``, ``1 <= nprobe <= MAX_NPROBE``;
* ``0 < timeout_ms <= MAX_TIMEOUT_MS``;
* ``1 <= oversample <= MAX_OVERSAMPLE`` and ``rescore`` true or false — compressed
  ``+refine`` specs take ``ceil(depth · oversample)`` candidates from their codes per shard
  and rescore them from the full-precision vectors on disk (``rescore=False``: the codes'
  own scores); other specs ignore both;
* a filter nested at most ``MAX_FILTER_DEPTH`` deep with at most ``MAX_FILTER_TERMS``
  conditions and values (see :mod:`ragfleet.search.filters`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ragfleet.config import SearchConfig
from ragfleet.errors import InputError
from ragfleet.search.filters import Where, compile_filter
from ragfleet.types import Mode

MAX_K = 10_000
MAX_DEPTH = 100_000
MAX_EF_SEARCH = 65_536
MAX_NPROBE = 65_536
MAX_TIMEOUT_MS = 3_600_000.0
MAX_OVERSAMPLE = 100.0
MODES: tuple[Mode, ...] = ("dense", "sparse", "hybrid")

#: The names of the fields a caller may set (what ``search(query, **params)`` accepts).
FIELDS = (
    "k", "mode", "depth", "filter", "ef_search", "nprobe", "unique_docs", "timeout_ms",
    "oversample", "rescore",
)  # fmt: skip


def _bounded_int(name: str, value: object, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not 1 <= value <= hi:
        raise InputError(f"{name} must be between 1 and {hi:,}, got {value:,}")
    return value


@dataclass(frozen=True, kw_only=True)
class SearchRequest:
    """What a caller may set per query; ``None`` takes the collection's default."""

    k: int | None = None
    mode: Mode | None = None
    depth: int | None = None
    filter: Mapping[str, Any] | str | None = None
    ef_search: int | None = None
    nprobe: int | None = None
    unique_docs: bool = False
    timeout_ms: float | None = None
    oversample: float | None = None
    rescore: bool | None = None

    def __post_init__(self) -> None:
        _bounded_int("k", self.k, MAX_K)
        _bounded_int("depth", self.depth, MAX_DEPTH)
        _bounded_int("ef_search", self.ef_search, MAX_EF_SEARCH)
        _bounded_int("nprobe", self.nprobe, MAX_NPROBE)
        if self.mode is not None and self.mode not in MODES:
            raise InputError(f"mode must be dense, sparse or hybrid, got {self.mode!r}")
        if not isinstance(self.unique_docs, bool):
            raise InputError(f"unique_docs must be true or false, got {self.unique_docs!r}")
        if self.timeout_ms is not None:
            t = self.timeout_ms
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
                raise InputError(f"timeout_ms must be a number, got {t!r}")
            if not 0 < t <= MAX_TIMEOUT_MS:
                raise InputError(f"timeout_ms must be > 0 and <= {MAX_TIMEOUT_MS:,.0f}, got {t}")
        if self.oversample is not None:
            o = self.oversample
            if isinstance(o, bool) or not isinstance(o, int | float) or not math.isfinite(o):
                raise InputError(f"oversample must be a number, got {o!r}")
            if not 1 <= o <= MAX_OVERSAMPLE:
                raise InputError(f"oversample must be between 1 and {MAX_OVERSAMPLE:g}, got {o}")
        if self.rescore is not None and not isinstance(self.rescore, bool):
            raise InputError(f"rescore must be true or false, got {self.rescore!r}")
        if self.filter is not None:
            canonical = _canonical_filter(self.filter)
            compile_filter(canonical)  # raises on a malformed or oversized filter
            object.__setattr__(self, "filter", canonical)

    @classmethod
    def of(cls, req: SearchRequest | None = None, **params: Any) -> SearchRequest:
        """``req`` with ``params`` applied (``search(query, k=5)`` style calls)."""
        unknown = sorted(set(params) - set(FIELDS))
        if unknown:
            raise InputError(f"unknown search parameter(s) {unknown}; use {list(FIELDS)}")
        if req is None:
            return cls(**params)
        return dataclasses.replace(req, **params) if params else req

    @property
    def where(self) -> Where | None:
        """The filter compiled to SQL (``None`` without one)."""
        return compile_filter(self.filter)

    def resolve(self, defaults: SearchConfig) -> SearchRequest:
        """Every default filled in: ``k``, ``mode`` and ``depth`` (at least ``k``, and at
        least ``4·k`` with ``unique_docs``, so that de-duplication still finds ``k``)."""
        k = defaults.k if self.k is None else self.k
        depth = max(k, defaults.depth if self.depth is None else self.depth)
        if self.unique_docs:
            depth = max(depth, 4 * k)
        return dataclasses.replace(
            self, k=k, mode=self.mode or defaults.mode, depth=min(depth, MAX_DEPTH)
        )

    def cache_fields(self) -> dict[str, Any]:
        """Every field but ``timeout_ms`` (it decides only whether an answer is complete,
        and incomplete answers are not cached); resolve first so defaults share entries."""
        fields = dataclasses.asdict(self)
        fields.pop("timeout_ms")
        return fields


def _canonical_filter(spec: Mapping[str, Any] | str) -> Mapping[str, Any]:
    """A filter as a plain JSON object (JSON text is parsed), so equal filters compare and
    hash equal whatever form they came in."""
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise InputError(f"filter is not valid JSON: {e.msg} at char {e.pos}") from e
    if not isinstance(spec, Mapping):
        raise InputError(f"a filter must be a JSON object, got {spec!r}")
    try:
        out: Mapping[str, Any] = json.loads(json.dumps(spec, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise InputError(f"a filter must be plain JSON: {e}") from e
    return out
