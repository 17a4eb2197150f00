"""``collection.json``: a generation's config, embedding contract and creation time.

The placement is part of the config (``sharding.placement``); centroid placement keeps
its centroids beside the file (:mod:`ragfleet.cluster.kmeans`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ragfleet.collection.layout import INFO
from ragfleet.config import CollectionConfig
from ragfleet.embed.contract import EmbeddingContract
from ragfleet.errors import CollectionError
from ragfleet.index.atomic import atomic_write_bytes

FORMAT = 1


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
        file = path / INFO
        if not file.is_file():
            raise CollectionError(f"{path} is not a ragfleet collection (no {INFO})")
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

    def write(self, path: Path) -> None:
        """Write ``path/collection.json`` atomically."""
        atomic_write_bytes(path / INFO, self.to_json())
