"""Helpers shared by the CLI commands: error exits, JSON output, progress bars."""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from ragfleet.errors import RagfleetError

#: The positional collection-directory argument most commands take.
Dir = Annotated[Path, typer.Argument(help="collection directory")]


def subgroup(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The command group ``name`` of ``app``, added (with ``help``) if no module added it yet."""
    group = next((g.typer_instance for g in app.registered_groups if g.name == name), None)
    if group is None:
        group = typer.Typer(help=help, no_args_is_help=True)
        app.add_typer(group, name=name)
    return group


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


#: Errors from the disk or the OS a user can act on: one line, exit 2, never a traceback.
_DISK_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EMFILE: "too many open files (raise `ulimit -n`)",
    errno.ENFILE: "too many open files in the system",
    errno.EACCES: "permission denied",
    errno.EIO: "an I/O error from the device",
}


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn ragfleet errors, and the disk errors a user can act on, into a one-line
    message and exit code 2."""
    try:
        yield
    except RagfleetError as e:
        fail(_one_line(str(e)))
    except OSError as e:
        if e.errno not in _DISK_ERRNOS:
            raise
        where = f" ({e.filename})" if e.filename else ""
        fail(f"{_DISK_ERRNOS[e.errno]}{where}: {e.strerror}")


def _one_line(message: str) -> str:
    return " ".join(message.split())


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def progress_bar(description: str, quiet: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar driven by ``update(done, total)`` calls (stderr)."""
    if quiet:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
