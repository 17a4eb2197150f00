"""Build the app from a JSON spec in ``RAGFLEET_SERVE_SPEC`` — how each uvicorn worker
process (``ragfleet serve --workers N``) makes its own app. With a ``fleet`` in the spec
(:class:`~ragfleet.serve.settings.FleetSettings`) each collection is opened as a
:class:`~ragfleet.fleet.Fleet` instead of a :class:`~ragfleet.collection.Collection`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ragfleet.errors import CollectionError, ConfigError
from ragfleet.serve.settings import FleetSettings, ServeSettings

ENV = "RAGFLEET_SERVE_SPEC"


def spec_json(
    dirs: list[Path], keys: Path, settings: ServeSettings, fleet: FleetSettings | None = None
) -> str:
    return json.dumps(
        {
            "dirs": [str(d) for d in dirs], "keys": str(keys), "settings": asdict(settings),
            "fleet": asdict(fleet) if fleet is not None else None,
        }
    )  # fmt: skip


def open_collections(
    dirs: list[Path], *, read_only: bool = False, fleet: FleetSettings | None = None
) -> dict[str, Any]:
    """``{directory name: open Collection}`` (a ``Fleet`` with ``fleet``); two directories
    with one name are refused. Each is opened for writing (it takes the collection's
    writer lock) unless ``read_only``; on any failure the ones already open are closed."""
    out: dict[str, Any] = {}
    try:
        for d in dirs:
            if d.name in out:
                raise CollectionError(f"two collections are named {d.name!r}; rename one directory")
            out[d.name] = _open(d, read_only, fleet)
    except BaseException:
        for col in out.values():
            col.close()
        raise
    return out


def _open(path: Path, read_only: bool, fleet: FleetSettings | None) -> Any:
    if fleet is None:
        from ragfleet.collection import Collection

        return Collection.open(path, read_only=read_only)
    from ragfleet.fleet import Fleet

    return Fleet.open(
        path, backend=fleet.backend, replicas=fleet.replicas, address=fleet.address,
        writable=not read_only,
    )  # fmt: skip


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
    fleet = FleetSettings(**spec["fleet"]) if spec.get("fleet") else None
    collections = open_collections(
        [Path(d) for d in spec["dirs"]], read_only=serve_settings.read_only, fleet=fleet
    )
    return create_app(
        collections, serve_settings, KeyStore.load(spec["keys"]), owns_collections=True
    )
