"""The ragfleet error tree. Every error a caller can act on is one of these.

::

    RagfleetError
    ├── ConfigError               a config, spec string or option is invalid
    │   └── UnknownSpecError      an index / chunker / encoder name that does not exist
    ├── InputError                bad user input: a path, a document, a query, k, a dimension
    │   ├── EmptyCorpusError      a source yielded no documents
    │   ├── InvalidRecordError    one record of a source file cannot be read (names file:line)
    │   └── DimensionError        vectors whose width differs from the index
    ├── MissingDependencyError    an optional package is not installed (names the extra)
    ├── CollectionError           a collection on disk is missing, corrupt or already exists
    │   ├── EmbeddingContractError  an encoder that does not reproduce the pinned contract
    │   ├── CollectionLockedError   another process holds the collection's writer lock
    │   └── ReadOnlyError           a write to a collection opened read-only
    ├── StorageError              the disk refused a read or write (full, read-only, too
    │                             many open files); says whether the write was applied
    ├── IndexNotTrainedError      an IVF/PQ index asked to add/search before training
    ├── Cancelled                 the caller went away (a disconnected HTTP client); nothing written
    └── DeadlineExceeded          a stage ran out of its share of the latency budget

``serve/`` and ``cli/`` are the only places that map these to HTTP codes or exit codes.
"""

from __future__ import annotations


class RagfleetError(Exception):
    """Base of every error ragfleet raises on purpose."""


class ConfigError(RagfleetError, ValueError):
    """A config value, spec string or option is invalid."""


class UnknownSpecError(ConfigError):
    """A named index spec, chunker spec or encoder that does not exist."""


class InputError(RagfleetError, ValueError):
    """Bad user input: a path, a document, a query, k, a vector shape."""


class EmptyCorpusError(InputError):
    """A source that yielded no documents."""


class InvalidRecordError(InputError):
    """One record of a source file cannot be read; the message names ``file:line``."""


class DimensionError(InputError):
    """Vectors whose dimension does not match the index."""


class MissingDependencyError(RagfleetError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class CollectionError(RagfleetError):
    """A collection directory that is missing, corrupt, or already exists."""


class EmbeddingContractError(CollectionError):
    """An encoder whose fingerprint or probe vectors differ from the collection's contract."""


class CollectionLockedError(CollectionError):
    """Another process holds the collection's writer lock (one writer per collection)."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class ReadOnlyError(CollectionError):
    """A write to a collection (or shard) opened read-only."""


class StorageError(RagfleetError):
    """The disk refused an operation: no space (ENOSPC), a read-only file system (EROFS),
    too many open files (EMFILE), a quota, an I/O error.

    ``applied`` says what a caller most needs to know after a failed write: ``True`` the
    write is durable anyway (it reached the log; only a later step failed), ``False`` it
    was not applied at all, ``None`` part of it was (the message says which part).
    """

    def __init__(self, message: str, *, applied: bool | None = False) -> None:
        super().__init__(message)
        self.applied = applied


class IndexNotTrainedError(RagfleetError):
    """An index that needs training was used before it was trained."""


class Cancelled(RagfleetError):
    """The caller cancelled a write before anything of it was written (an HTTP client
    that disconnected while its documents were being embedded)."""


class DeadlineExceeded(RagfleetError, TimeoutError):
    """A stage ran out of its share of the latency budget."""
