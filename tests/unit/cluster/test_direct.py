"""The direct channel over real loopback sockets: a real shard answers through it exactly as
it does in process, errors keep their type, strangers get nothing unpickled, bounds hold."""

from __future__ import annotations

import pickle
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from ragfleet.cluster import direct
from ragfleet.cluster.direct import (
    TOKEN_BYTES,
    ChannelError,
    ChannelTimeout,
    DirectClient,
    DirectServer,
)
from ragfleet.cluster.replicated import HedgeConfig, ReplicatedShard
from ragfleet.errors import InputError
from ragfleet.index.shard import ShardQuery


class Target:
    """A call target that records whether anything reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def echo(self, x: Any) -> Any:
        self.calls += 1
        return x

    def bad(self) -> None:
        raise InputError("k must be >= 1; pass k=10")

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def secret(self) -> str:
        return "not served"


def closed_without_reply(s: socket.socket) -> bool:
    """The peer closed the connection (a FIN, or a reset when our bytes went unread)."""
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def served() -> Iterator[tuple[Target, DirectServer, bytes]]:
    target, token = Target(), secrets.token_bytes(TOKEN_BYTES)
    server = DirectServer(target, ("echo", "bad", "slow"), token)
    yield target, server, token
    server.close()


def test_round_trip_keeps_values_and_arrays(served) -> None:  # type: ignore[no-untyped-def]
    _, server, token = served
    client = DirectClient(server.address, token)
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = client.call("echo", {"a": arr, "b": ["x", 1]})
    np.testing.assert_array_equal(out["a"], arr)
    assert out["b"] == ["x", 1]
    big = np.random.default_rng(0).random(300_000).astype(np.float32)  # > one small frame
    np.testing.assert_array_equal(client.call("echo", big), big)
    client.close()


def test_a_caller_error_keeps_its_type_and_the_connection(served) -> None:  # type: ignore[no-untyped-def]
    _, server, token = served
    client = DirectClient(server.address, token)
    with pytest.raises(InputError, match="k must be"):
        client.call("bad")
    assert client.call("echo", 3) == 3  # the same pooled connection still serves


def test_an_unlisted_method_is_refused(served) -> None:  # type: ignore[no-untyped-def]
    _, server, token = served
    with pytest.raises(LookupError, match="secret"):
        DirectClient(server.address, token).call("secret")


def test_a_wrong_token_gets_nothing_unpickled(served) -> None:  # type: ignore[no-untyped-def]
    target, server, _ = served
    with pytest.raises(ChannelError):
        DirectClient(server.address, secrets.token_bytes(TOKEN_BYTES)).call("echo", 1)
    assert target.calls == 0


def test_a_stranger_sending_a_pickle_first_runs_nothing(served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, server, _ = served
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    payload = pickle.dumps(("echo", (Evil(),)))
    with socket.create_connection(server.address) as s:
        s.sendall(
            payload.ljust(TOKEN_BYTES, b"\0")[:TOKEN_BYTES]
            + len(payload).to_bytes(8, "big")
            + payload
        )
        assert closed_without_reply(s)  # closed without a reply
    assert not marker.exists()


def test_concurrent_calls_overlap(served) -> None:  # type: ignore[no-untyped-def]
    _, server, token = served
    client = DirectClient(server.address, token)
    t0 = time.monotonic()
    threads = [threading.Thread(target=client.call, args=("slow", 0.3)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - t0 < 1.0  # four 0.3 s calls on four connections, not 1.2 s


def test_a_closed_server_is_a_channel_error_and_fails_over(served) -> None:  # type: ignore[no-untyped-def]
    _, server, token = served
    client = DirectClient(server.address, token)
    assert client.call("echo", 1) == 1
    server.close()
    with pytest.raises(ChannelError):
        client.call("echo", 2)  # the pooled connection was dropped by the server
    with pytest.raises(ChannelError):
        client.call("echo", 3)  # and nothing listens any more


def test_a_call_past_its_timeout_is_a_channel_error(served) -> None:  # type: ignore[no-untyped-def]
    _, server, token = served
    client = DirectClient(server.address, token, call_timeout_s=0.2)
    with pytest.raises(ChannelTimeout):  # told apart: a busy actor is not a dead one
        client.call("slow", 2.0)
    assert client.call("echo", 5) == 5  # a fresh connection: the late reply is not read


def test_an_oversized_frame_is_refused(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    target, server, token = served
    monkeypatch.setattr(direct, "MAX_FRAME_BYTES", 1024)
    with pytest.raises(ChannelError, match="limit"):
        DirectClient(server.address, token).call("echo", b"x" * 4096)
    with socket.create_connection(server.address) as s:  # a header that claims too much
        s.sendall(token + (1 << 40).to_bytes(8, "big"))
        assert closed_without_reply(s)
    assert target.calls == 0


def test_connections_past_the_limit_are_closed(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, server, _ = served
    monkeypatch.setattr(direct, "MAX_CONNECTIONS", 2)
    held = [socket.create_connection(server.address) for _ in range(2)]
    time.sleep(0.2)
    with socket.create_connection(server.address) as s:
        assert closed_without_reply(s)
    for h in held:
        h.close()


def test_a_shard_searches_the_same_through_the_channel(collection_factory) -> None:  # type: ignore[no-untyped-def]
    coll = collection_factory(2)
    token = secrets.token_bytes(TOKEN_BYTES)
    vecs = coll.encoder.encode(["who won the game?", "where is the river?"], kind="query")
    for shard in coll.shards:
        server = DirectServer(shard, ("search", "fetch", "token_blocks"), token)
        try:
            client = DirectClient(server.address, token)
            q = ShardQuery(k=5, vectors=vecs)
            want, got = shard.search(q), client.call("search", q)
            assert len(got.dense) == len(want.dense) == 2
            for g, w in zip(got.dense, want.dense, strict=True):
                np.testing.assert_array_equal(g.rows, w.rows)
                np.testing.assert_array_equal(g.ids, w.ids)
                np.testing.assert_array_equal(g.scores, w.scores)
            rows = [int(r) for r in want.dense[0].rows]
            assert rows
            assert client.call("fetch", rows) == shard.fetch(rows)
            with pytest.raises(InputError):  # a shard without token vectors says so
                client.call("token_blocks", ["c0"])
        finally:
            server.close()


def test_a_dead_replica_channel_fails_over_to_the_other(collection_factory) -> None:  # type: ignore[no-untyped-def]
    """Two channels to one shard behind a replica set: closing one server loses no call."""
    shard = collection_factory(1).shards[0]
    token = secrets.token_bytes(TOKEN_BYTES)
    servers = [DirectServer(shard, ("search",), token) for _ in range(2)]

    class Replica:
        shard_id = shard.shard_id

        def __init__(self, server: DirectServer) -> None:
            self.client = DirectClient(server.address, token)

        def search(self, q: ShardQuery) -> Any:
            return self.client.call("search", q)

    # least outstanding, ties at random: both replicas are chosen (seeded)
    replicas = ReplicatedShard(
        [Replica(s) for s in servers],  # type: ignore[misc]
        HedgeConfig(hedge=False, latency_aware=False, down_s=60.0),
    )
    q = ShardQuery(k=3, vectors=np.ones((1, shard.dim), np.float32))
    try:
        want = shard.search(q)
        for _ in range(4):
            replicas.search(q)
        servers[0].close()
        for _ in range(32):
            np.testing.assert_array_equal(replicas.search(q).dense[0].rows, want.dense[0].rows)
        assert replicas.errors == 1  # tried once, then marked down and avoided
    finally:
        replicas.close()
        servers[1].close()


def test_a_sub_millisecond_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="call_timeout_s"):
        DirectClient(("127.0.0.1", 1), secrets.token_bytes(TOKEN_BYTES), call_timeout_s=1e-7)


def test_a_slow_handshake_is_cut_at_its_total_deadline(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, server, token = served
    monkeypatch.setattr(direct, "HANDSHAKE_TIMEOUT_S", 0.5)
    with socket.create_connection(server.address) as s:
        t0 = time.monotonic()
        for b in token[:4]:  # a byte every 0.2 s: each read is in time, the whole is not
            s.sendall(bytes([b]))
            time.sleep(0.2)
        assert closed_without_reply(s)
        assert time.monotonic() - t0 < 2.0
