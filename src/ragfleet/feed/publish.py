"""Publish documents and deletes to a change feed, with back-pressure.

``XADD`` never trims the stream (entries a group has not acknowledged must stay); a
publisher given ``max_lag`` waits while any consumer group lags by more entries than that
(Redis 7's ``XINFO GROUPS`` ``lag``), so a burst fills the stream only as far as allowed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ragfleet.errors import DeadlineExceeded, InputError
from ragfleet.feed.address import StreamAddress
from ragfleet.feed.entry import FIELD, encode
from ragfleet.types import Document

Change = Document | tuple[str, str]  # a document to upsert, or ("delete", doc_id)


@dataclass(frozen=True, slots=True)
class PublishReport:
    published: int
    seconds: float
    waited_s: float
    last_id: str


def group_lag(client: object, stream: str) -> int:
    """The largest lag (entries not yet delivered) over the stream's groups; 0 with none."""
    try:
        groups = client.xinfo_groups(stream)  # type: ignore[attr-defined]
    except Exception as e:  # the stream does not exist yet: nothing lags
        if "no such key" in str(e).lower():
            return 0
        raise
    lags = [int(g.get("lag") or 0) for g in groups]
    return max(lags, default=0)


def publish(
    address: StreamAddress,
    changes: Iterable[Change],
    *,
    versions: Callable[[Change], int | None] | None = None,
    max_lag: int | None = None,
    pipeline: int = 256,
    wait_timeout_s: float = 600.0,
) -> PublishReport:
    """Append each change as an entry (``pipeline`` at a time, one round trip each).

    Raises:
        InputError: a change that is not a Document or ``("delete", id)``.
        DeadlineExceeded: a group stayed over ``max_lag`` for ``wait_timeout_s``.
    """
    if max_lag is not None and max_lag < 1:
        raise InputError(f"max_lag must be >= 1, got {max_lag}")
    client = address.client()
    t0 = time.perf_counter()
    waited = 0.0
    n = 0
    last = ""
    batch: list[bytes] = []

    def flush() -> None:
        nonlocal n, last, waited
        if not batch:
            return
        if max_lag is not None:
            waited += _wait_for_lag(client, address.stream, max_lag, wait_timeout_s)
        pipe = client.pipeline(transaction=False)
        for data in batch:
            pipe.xadd(address.stream, {FIELD: data})
        ids = pipe.execute()
        n += len(batch)
        last = ids[-1].decode() if isinstance(ids[-1], bytes) else str(ids[-1])
        batch.clear()

    try:
        for change in changes:
            version = versions(change) if versions is not None else None
            batch.append(_encode(change, version))
            if len(batch) >= pipeline:
                flush()
        flush()
    finally:
        client.close()
    return PublishReport(n, time.perf_counter() - t0, waited, last)


def _encode(change: Change, version: int | None) -> bytes:
    if isinstance(change, Document):
        return encode("upsert", document=change, version=version)
    if isinstance(change, tuple) and len(change) == 2 and change[0] == "delete":
        return encode("delete", doc_id=change[1], version=version)
    raise InputError(f"a change is a Document or ('delete', doc_id), got {change!r:.80}")


def _wait_for_lag(client: object, stream: str, max_lag: int, timeout_s: float) -> float:
    t0 = time.monotonic()
    pause = 0.005
    while (lag := group_lag(client, stream)) > max_lag:
        if time.monotonic() - t0 > timeout_s:
            raise DeadlineExceeded(
                f"{stream}: the consumers lag by {lag:,} entries, over --max-lag {max_lag:,}, "
                f"for {timeout_s:.0f}s; start more workers or raise --max-lag"
            )
        time.sleep(pause)
        pause = min(0.2, pause * 2)
    return time.monotonic() - t0
