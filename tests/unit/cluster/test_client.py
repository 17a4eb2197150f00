from ragfleet.cluster.client import ShardClient


def test_local_shard_is_a_shard_client(collection_factory) -> None:  # type: ignore[no-untyped-def]
    for shard in collection_factory(4).shards:
        assert isinstance(shard, ShardClient)


def test_replicated_shard_is_a_shard_client(collection_factory) -> None:  # type: ignore[no-untyped-def]
    from ragfleet.cluster.replicated import ReplicatedShard

    shard = collection_factory(1).shards[0]
    assert isinstance(ReplicatedShard([shard]), ShardClient)
