"""The ragfleet error tree. Every error a caller can act on is one of these.

::

    RagfleetError
    ├── ConfigError               a config, spec string or option is invalid
    │   └── UnknownSpecError      an index / chunker / encoder name that does not exist
    ├── InputError                bad user input: a path, a document, a query, k, a dimension
    │   ├── EmptyCorpusError      a source yielded no documents
    │   └── DimensionError        vectors whose width differs from the index
    ├── MissingDependencyError    an optional package is not installed (names the extra)
    ├── CollectionError           a collection on disk is missing, corrupt or already exists
    │   └── EmbeddingContractError  an encoder that does not reproduce the pinned contract
    ├── IndexNotTrainedError      an IVF/PQ index asked to add/search before training
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


class DimensionError(InputError):
    """Vectors whose dimension does not match the index."""


class MissingDependencyError(RagfleetError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class CollectionError(RagfleetError):
    """A collection directory that is missing, corrupt, or already exists."""


class EmbeddingContractError(CollectionError):
    """An encoder whose fingerprint or probe vectors differ from the collection's contract."""


class IndexNotTrainedError(RagfleetError):
    """An index that needs training was used before it was trained."""


class DeadlineExceeded(RagfleetError, TimeoutError):
    """A stage ran out of its share of the latency budget."""
