"""``ragfleet feed status``: where a consumer group stands, read from Redis alone."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from ragfleet.feed.address import StreamAddress, check_group


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """``lag_entries``: published, not yet delivered; ``lag_s``: the age of the oldest of
    those or of the oldest pending entry; ``freshness_*``: publish → acknowledged over the
    last samples (seconds), ``throughput``: entries acknowledged per second over them."""

    stream: str
    group: str
    length: int
    lag_entries: int
    pending: int
    lag_s: float
    consumers: int
    dead_letters: int
    freshness_p50_s: float | None
    freshness_p99_s: float | None
    throughput: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feed_status(address: StreamAddress, group: str) -> FeedStatus:
    check_group(group)
    client = address.client()
    try:
        return _status(client, address, group)
    finally:
        client.close()


def _status(client: Any, address: StreamAddress, group: str) -> FeedStatus:
    now_ms = time.time() * 1000
    length = int(client.xlen(address.stream))
    if not client.exists(address.stream):
        raise_unknown(address, group)
    info = next((g for g in client.xinfo_groups(address.stream) if _s(g["name"]) == group), None)
    if info is None:
        raise_unknown(address, group)
    lag = int(info.get("lag") or 0)
    pending = int(info.get("pending") or 0)
    oldest: list[float] = []
    if pending:
        summary = client.xpending(address.stream, group)
        oldest.append(_ms(summary["min"]))
    if lag:
        after = client.xrange(address.stream, min=f"({_s(info['last-delivered-id'])}", count=1)
        if after:
            oldest.append(_ms(after[0][0]))
    lag_s = max(0.0, (now_ms - min(oldest)) / 1000) if oldest else 0.0
    samples = [_sample(x) for x in client.lrange(address.fresh(group), 0, -1)]
    fresh = sorted(f for _, f in samples)
    throughput = None
    if len(samples) > 1:
        span = (max(t for t, _ in samples) - min(t for t, _ in samples)) / 1000
        throughput = len(samples) / span if span > 0 else None
    dead = int(client.xlen(address.dead)) if client.exists(address.dead) else 0
    return FeedStatus(
        address.stream, group, length, lag, pending, lag_s, int(info.get("consumers") or 0),
        dead, _q(fresh, 0.5), _q(fresh, 0.99), throughput,
    )  # fmt: skip


def raise_unknown(address: StreamAddress, group: str) -> NoReturn:
    from ragfleet.errors import InputError

    raise InputError(
        f"stream {address.stream!r} has no consumer group {group!r}; start "
        f"`ragfleet ingest-worker … --group {group}` first"
    )


def _q(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def _sample(raw: bytes) -> tuple[float, float]:
    t, f = _s(raw).split(":", 1)
    return float(t), float(f)


def _ms(entry_id: object) -> float:
    return float(_s(entry_id).split("-", 1)[0])


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
