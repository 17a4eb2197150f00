"""The HTTP service: ``create_app(collections, settings, keys)`` builds the FastAPI app.

Needs the ``serve`` extra (fastapi, uvicorn, prometheus-client, httpx, opentelemetry).
"""

from __future__ import annotations

from ragfleet.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from ragfleet.serve.app import create_app

        return create_app
    raise AttributeError(name)
