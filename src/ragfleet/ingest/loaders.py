"""Document loaders: folders of text/markdown, and dispatch by (detected) format.

Every loader checks its path when called and returns a lazy iterator of
:class:`~ragfleet.types.Document`, so a corpus larger than memory streams through.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ragfleet.errors import InputError, UnknownSpecError
from ragfleet.ingest.beir import load_beir_corpus
from ragfleet.ingest.jsonl import OnInvalid, existing_path, load_jsonl
from ragfleet.ingest.markdown import first_heading
from ragfleet.types import Document

Format = Literal["auto", "beir", "jsonl", "text"]
FORMATS = ("auto", "beir", "jsonl", "text")
TEXT_SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown"}


def _text_files(root: Path) -> list[Path]:
    if root.is_file():
        if root.suffix.lower() not in TEXT_SUFFIXES:
            raise InputError(f"{root} is not a text file; expected one of {sorted(TEXT_SUFFIXES)}")
        return [root]
    files = (
        p
        for p in root.rglob("*")
        if p.suffix.lower() in TEXT_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _text_documents(base: Path, files: list[Path]) -> Iterator[Document]:
    for path in files:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise InputError(
                f"{path}: not valid UTF-8 ({e.reason} at byte {e.start}); convert it to UTF-8"
            ) from e
        fmt = TEXT_SUFFIXES[path.suffix.lower()]
        rel = path.relative_to(base).as_posix()
        title = (first_heading(text) if fmt == "markdown" else None) or path.stem
        yield Document(doc_id=rel, text=text, title=title, metadata={"path": rel, "format": fmt})


def load_text_dir(path: str | Path) -> Iterator[Document]:
    """Every ``.txt``/``.md``/``.markdown`` file under ``path``, recursively, sorted by path;
    hidden files and folders are skipped. A single file is loaded on its own.

    ``doc_id`` and metadata ``"path"`` are the path relative to ``path`` (POSIX); the title
    is a markdown file's first heading, else the file stem; metadata ``"format"`` is
    ``"markdown"`` or ``"text"``.

    Raises:
        InputError: the path is missing or a file of another kind, or (while iterating) a
            file is not valid UTF-8.
    """
    root = existing_path(path, "text folder")
    return _text_documents(root.parent if root.is_file() else root, _text_files(root))


def sniff_format(path: str | Path) -> str:
    """``"beir"`` (a folder with ``corpus.jsonl``), ``"jsonl"`` (a ``.jsonl`` file) or
    ``"text"`` (any other folder, or a ``.txt``/``.md`` file).

    Raises:
        InputError: the path is missing, or a file of another kind.
    """
    p = existing_path(path, "source")
    if p.is_dir():
        return "beir" if (p / "corpus.jsonl").is_file() else "text"
    if p.suffix.lower() == ".jsonl":
        return "jsonl"
    if p.suffix.lower() in TEXT_SUFFIXES:
        return "text"
    raise InputError(
        f"cannot tell the format of {p}: expected a BEIR folder, a .jsonl file, or a folder "
        "of .txt/.md files; pass format='jsonl', 'beir' or 'text'"
    )


def load_documents(
    source: str | Path, format: str = "auto", on_invalid: OnInvalid | None = None
) -> Iterator[Document]:
    """Documents from ``source`` in ``format`` (``auto`` detects it with
    :func:`sniff_format`): ``beir`` (corpus.jsonl of a BEIR folder), ``jsonl``, ``text``.
    With ``on_invalid``, a record that cannot be read is reported ``(where, why)`` and
    skipped instead of raising.

    Raises:
        UnknownSpecError: ``format`` is not one of :data:`FORMATS`.
        InputError: ``source`` does not exist or cannot be read as ``format``.
    """
    if format not in FORMATS:
        raise UnknownSpecError(f"unknown document format {format!r}; choose one of {FORMATS}")
    fmt = sniff_format(source) if format == "auto" else format
    if fmt == "beir":
        return load_beir_corpus(source, on_invalid)
    if fmt == "jsonl":
        return load_jsonl(source, on_invalid)
    return load_text_dir(source)
