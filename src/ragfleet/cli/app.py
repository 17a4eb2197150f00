"""The ``ragfleet`` command: one typer app, one module per command group.

Heavy imports (models, FAISS) happen inside the commands, so ``ragfleet --help`` is fast.
Every :class:`ragfleet.errors.RagfleetError` becomes a one-line message on stderr and
exit code 2 — never a traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from ragfleet.cli import (
    ask_cmds,
    bench,
    cluster_cmds,
    collection_cmds,
    eval_cmds,
    feed_cmds,
    plan_cmds,
    serve_cmds,
    write_cmds,
)
from ragfleet.errors import RagfleetError

app = typer.Typer(
    name="ragfleet",
    help="ragfleet: distributed retrieval for RAG — ingest, search, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
collection_cmds.register(app)
bench.register(app)
serve_cmds.register(app)
eval_cmds.register(app)
ask_cmds.register(app)
write_cmds.register(app)
cluster_cmds.register(app)
feed_cmds.register(app)
plan_cmds.register(app)


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        app()
    except RagfleetError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
