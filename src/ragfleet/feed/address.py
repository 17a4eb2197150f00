"""Where a change feed lives: ``redis://[:password@]host:port/db?stream=docs``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ragfleet.errors import InputError

if TYPE_CHECKING:
    import redis

_NAME_RE = re.compile(r"^[A-Za-z0-9_.:{}-]{1,200}$")


@dataclass(frozen=True, slots=True)
class StreamAddress:
    """A Redis server and one stream on it; the group's dead letters go to
    ``<stream>:dead``, its freshness samples to ``<stream>:fresh:<group>``."""

    url: str
    stream: str

    @classmethod
    def parse(cls, address: str) -> StreamAddress:
        """Parse ``redis://host:port/db?stream=NAME`` (``rediss://`` for TLS).

        Raises:
            InputError: not a redis URL, or no valid ``stream=``.
        """
        parts = urlsplit(address)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise InputError(
                f"{address!r} is not a Redis stream address; write redis://HOST:PORT/DB?stream=NAME"
            )
        names = parse_qs(parts.query).get("stream", [])
        if len(names) != 1 or not _NAME_RE.match(names[0]):
            raise InputError(
                f"{address!r} names no stream; add ?stream=NAME (letters, digits, _.:{{}}-)"
            )
        return cls(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), names[0])

    @property
    def dead(self) -> str:
        return f"{self.stream}:dead"

    def fresh(self, group: str) -> str:
        return f"{self.stream}:fresh:{group}"

    def client(self, timeout_s: float = 10.0) -> redis.Redis:
        """A client with bounded socket timeouts (a blocking read adds its own block time)."""
        from ragfleet._optional import require

        redis_mod = require("redis", extra="redis")
        return redis_mod.Redis.from_url(  # type: ignore[no-any-return]
            self.url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            decode_responses=False,
        )  # fmt: skip


def check_group(group: str) -> str:
    """A consumer-group name, refused with what to do when it is not one."""
    if not isinstance(group, str) or not _NAME_RE.match(group):
        raise InputError(f"group {group!r} is not a valid name; use letters, digits and _.:-")
    return group
