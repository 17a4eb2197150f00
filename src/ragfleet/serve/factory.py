"""Build the app from a JSON spec in ``RAGFLEET_SERVE_SPEC`` — how each uvicorn worker
process (``ragfleet serve --workers N``) makes its own app."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ragfleet.errors import CollectionError, ConfigError
from ragfleet.serve.settings import ServeSettings

ENV = "RAGFLEET_SERVE_SPEC"


def spec_json(dirs: list[Path], keys: Path, settings: ServeSettings) -> str:
    return json.dumps(
        {"dirs": [str(d) for d in dirs], "keys": str(keys), "settings": asdict(settings)}
    )


def open_collections(dirs: list[Path], *, read_only: bool = False) -> dict[str, Any]:
    """``{directory name: open Collection}``; two directories with one name are refused.
    Each is opened for writing (it takes the collection's writer lock) unless
    ``read_only``; on any failure the ones already open are closed again."""
    from ragfleet.collection import Collection

    out: dict[str, Any] = {}
    try:
        for d in dirs:
            if d.name in out:
                raise CollectionError(f"two collections are named {d.name!r}; rename one directory")
            out[d.name] = Collection.open(d, read_only=read_only)
    except BaseException:
        for col in out.values():
            col.close()
        raise
    return out


def from_env() -> Any:
    """The FastAPI app described by ``$RAGFLEET_SERVE_SPEC``."""
    from ragfleet.serve.app import create_app
    from ragfleet.serve.auth import KeyStore

    raw = os.environ.get(ENV)
    if not raw:
        raise ConfigError(f"${ENV} is not set; start the server with `ragfleet serve`")
    spec = json.loads(raw)
    settings = spec["settings"]
    settings["cors_origins"] = tuple(settings["cors_origins"])
    serve_settings = ServeSettings(**settings)
    collections = open_collections(
        [Path(d) for d in spec["dirs"]], read_only=serve_settings.read_only
    )
    return create_app(
        collections, serve_settings, KeyStore.load(spec["keys"]), owns_collections=True
    )
