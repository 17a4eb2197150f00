"""Change-feed ingestion: documents and deletes published to a Redis Stream, consumed by a
consumer group into a collection's shard owners.

- :mod:`~ragfleet.feed.entry` — the entry schema (JSON, versioned) and its validation;
- :mod:`~ragfleet.feed.address` — ``redis://host:port/db?stream=docs`` addresses;
- :mod:`~ragfleet.feed.publish` — publishing, with back-pressure on the group's lag;
- :mod:`~ragfleet.feed.ledger` — the applied version of every document, beside the collection;
- :mod:`~ragfleet.feed.batching` — the adaptive batch size (AIMD between a floor and a ceiling);
- :mod:`~ragfleet.feed.worker` — the consumer: apply, record, then ``XACK``; reclaim, dead letters;
- :mod:`~ragfleet.feed.status` — lag, pending, dead letters and freshness of a group.
"""

from ragfleet.feed.address import StreamAddress
from ragfleet.feed.entry import SCHEMA_VERSION, FeedEntry, PoisonEntry
from ragfleet.feed.publish import publish
from ragfleet.feed.status import FeedStatus, feed_status
from ragfleet.feed.worker import FeedWorker, WorkerConfig

__all__ = [
    "SCHEMA_VERSION",
    "FeedEntry",
    "FeedStatus",
    "FeedWorker",
    "PoisonEntry",
    "StreamAddress",
    "WorkerConfig",
    "feed_status",
    "publish",
]
