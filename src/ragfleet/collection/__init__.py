"""The one owner of a collection's directory (DESIGN.md §4): its layout (``CURRENT``,
generations, shards, the writer lock), :class:`Collection`, its writer, reindex, compaction
and resharding."""

from ragfleet.collection.build import remove_dead_builds
from ragfleet.collection.core import Collection
from ragfleet.collection.info import CollectionInfo

__all__ = ["Collection", "CollectionInfo", "remove_dead_builds"]
