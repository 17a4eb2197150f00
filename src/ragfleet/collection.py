"""A collection: the embedded ragfleet engine over one directory (DESIGN.md §4).

    <collection>/collection.json   config, EmbeddingContract, generation
    <collection>/shard-NNN/        one :class:`Shard` each

``Collection.build`` ingests into a temporary sibling directory and renames it into place
only when everything is written, so a failed build leaves nothing half-written.
``Collection.open`` refuses an encoder that does not reproduce the pinned contract.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragfleet.cluster.placement import hash_shard
from ragfleet.cluster.scatter import Scatter, omp_threads_per_shard
from ragfleet.config import CollectionConfig
from ragfleet.embed.base import Encoder
from ragfleet.embed.contract import EmbeddingContract
from ragfleet.embed.registry import load_encoder
from ragfleet.errors import CollectionError, InputError
from ragfleet.index.atomic import atomic_write_bytes
from ragfleet.index.dense import set_omp_threads
from ragfleet.index.shard import Shard
from ragfleet.index.sparse.analyzer import Analyzer
from ragfleet.search.searcher import Searcher, SearchRequest
from ragfleet.types import Document, Mode, Results
from ragfleet.writer import DocumentWriter, IngestReport

FORMAT = 1
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CollectionInfo:
    """What ``collection.json`` holds."""

    config: CollectionConfig
    contract: EmbeddingContract
    created: str

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "contract": self.contract.to_dict(),
            "fingerprint": self.contract.fingerprint(),
            "created": self.created,
        }
        return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")

    @classmethod
    def read(cls, path: Path) -> CollectionInfo:
        file = path / "collection.json"
        if not file.is_file():
            raise CollectionError(f"{path} is not a ragfleet collection (no collection.json)")
        try:
            doc = json.loads(file.read_text("utf-8"))
            if doc.get("format") != FORMAT:
                raise CollectionError(f"{file}: unsupported format {doc.get('format')!r}")
            return cls(
                CollectionConfig.from_dict(doc["config"]),
                EmbeddingContract.from_dict(doc["contract"]),
                doc.get("created", ""),
            )
        except (KeyError, ValueError) as e:
            raise CollectionError(f"{file} is corrupt: {e}") from e


class Collection:
    """Ingest, search and maintain one collection in this process."""

    def __init__(self, path: Path, info: CollectionInfo, encoder: Encoder, durable: bool) -> None:
        self.path = path
        self.info = info
        self.config = info.config
        self.encoder = encoder
        n = self.config.sharding.n_shards
        fingerprint = info.contract.fingerprint()
        self.shards = [
            Shard(
                path / f"shard-{i:03d}", i, self.config, encoder.dim, fingerprint, durable=durable
            )
            for i in range(n)
        ]
        set_omp_threads(omp_threads_per_shard(n))
        self._scatter = Scatter(n)
        analyzer = Analyzer(self.config.sparse.analyzer) if self.config.sparse.enabled else None
        self.searcher = Searcher(self.shards, encoder, analyzer, self.config.search, self._scatter)
        self._writer = DocumentWriter(self.shards, encoder, self.config, lambda d: hash_shard(d, n))

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        config: CollectionConfig | None = None,
        *,
        encoder: Encoder | None = None,
        durable: bool = True,
    ) -> Collection:
        """Create an empty collection at ``path`` (which must not exist or be empty)."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise CollectionError(f"{path} already exists; open it, or choose another path")
        config = config or CollectionConfig()
        encoder = encoder or load_encoder(config.encoder.name)
        contract = dataclasses.replace(encoder.contract, chunker=config.chunker.spec)
        contract = contract.with_probes(encoder)
        info = CollectionInfo(config, contract, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path / "collection.json", info.to_json())
        return cls(path, info, encoder, durable)

    @classmethod
    def open(
        cls, path: str | Path, *, encoder: Encoder | None = None, durable: bool = True
    ) -> Collection:
        """Open an existing collection; the encoder must reproduce its embedding contract."""
        path = Path(path)
        if not path.exists():
            raise CollectionError(f"collection {path} does not exist")
        info = CollectionInfo.read(path)
        encoder = encoder or load_encoder(info.config.encoder.name)
        info.contract.verify(encoder)
        return cls(path, info, encoder, durable)

    @classmethod
    def build(
        cls,
        path: str | Path,
        docs: Iterable[Document],
        config: CollectionConfig | None = None,
        *,
        encoder: Encoder | None = None,
        progress: Progress | None = None,
    ) -> Collection:
        """Create and fill a collection all-or-nothing: built in a temporary sibling
        directory, renamed into place only when complete."""
        path = Path(path)
        if path.exists():
            raise CollectionError(f"{path} already exists; choose another path or delete it")
        tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            col = cls.create(tmp, config, encoder=encoder)
            report = col.upsert(docs, progress=progress)
            if report.chunks_written == 0:
                raise InputError("the corpus yielded no chunks: every document was empty")
            col.close()
            os.rename(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls.open(path, encoder=col.encoder)

    def close(self) -> None:
        self._scatter.close()
        for s in self.shards:
            s.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------
    def upsert(self, docs: Iterable[Document], *, progress: Progress | None = None) -> IngestReport:
        """Insert or replace documents; unchanged ones (same content hash) are skipped.

        Each document is written to its shard's log in one batch with the removal of its
        old chunks, so after any crash it is wholly old or wholly new.
        """
        report = self._writer.upsert(docs, progress=progress)
        self.checkpoint()
        return report

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Tombstone every chunk of ``doc_ids``; returns how many documents existed."""
        n = self._writer.delete(doc_ids)
        self.checkpoint()
        return n

    def checkpoint(self) -> None:
        for s in self.shards:
            s.checkpoint()

    # -- reads ----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: Mode | None = None,
        filter: Mapping[str, Any] | str | None = None,
        depth: int | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        unique_docs: bool = False,
        timeout_ms: float | None = None,
    ) -> Results:
        """Search one query. ``mode``: dense, sparse or hybrid (default from the config)."""
        req = SearchRequest(k, mode, depth, filter, ef_search, nprobe, unique_docs, timeout_ms)
        return self.searcher.search([query], req)[0]

    def search_batch(
        self, queries: Sequence[str], req: SearchRequest | None = None
    ) -> list[Results]:
        """Search many queries at once (one encoder call, one scatter)."""
        return self.searcher.search(queries, req or SearchRequest())

    @property
    def generation(self) -> str:
        """Changes on every acknowledged write: ``<contract fingerprint>:<sum of shard seqs>``."""
        return f"{self.info.contract.fingerprint()}:{sum(s.seq for s in self.shards)}"

    def stats(self) -> dict[str, Any]:
        shards = [s.stats() for s in self.shards]
        return {
            "path": str(self.path),
            "encoder": self.encoder.name,
            "fingerprint": self.info.contract.fingerprint(),
            "dim": self.encoder.dim,
            "index": self.config.index.spec,
            "chunker": self.config.chunker.spec,
            "shards": shards,
            "documents": sum(int(str(s["documents"])) for s in shards),
            "chunks": sum(int(str(s["live_chunks"])) for s in shards),
            "created": self.info.created,
        }
