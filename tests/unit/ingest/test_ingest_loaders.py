"""JSON-lines and text-folder loaders, format detection, and every bad-input error."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from ragfleet.errors import InputError, UnknownSpecError
from ragfleet.ingest import load_documents, load_jsonl, load_text_dir, sniff_format
from ragfleet.types import Document


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_reads_every_id_key_title_and_metadata(tmp_path: Path) -> None:
    path = _write_lines(
        tmp_path / "docs.jsonl",
        [
            json.dumps({"_id": "a", "text": "A text", "title": "A", "metadata": {"y": 2020}}),
            "",
            "   ",
            json.dumps({"id": 7, "text": "Seven"}),
            json.dumps({"doc_id": "c", "text": "", "title": None}),
        ],
    )
    docs = list(load_jsonl(path))
    assert docs == [
        Document("a", "A text", "A", {"y": 2020}),
        Document("7", "Seven", "", {}),
        Document("c", "", "", {}),
    ]


def test_jsonl_is_lazy(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "d.jsonl", ['{"id": "a", "text": "ok"}', "{broken"])
    it = load_jsonl(path)
    assert isinstance(it, types.GeneratorType)
    assert next(it).doc_id == "a"  # the bad second line is not read yet
    with pytest.raises(InputError):
        next(it)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{broken", r"d\.jsonl:2: invalid JSON"),
        ('["a list"]', r"d\.jsonl:2: expected a JSON object, got list"),
        ('{"text": "no id"}', r"d\.jsonl:2: missing id"),
        ('{"_id": "", "text": "empty id"}', r"d\.jsonl:2: missing id"),
        ('{"_id": true, "text": "bool id"}', r"d\.jsonl:2: missing id"),
        ('{"_id": "b"}', r"d\.jsonl:2: 'text' must be a string, got NoneType"),
        ('{"_id": "b", "text": 3}', r"d\.jsonl:2: 'text' must be a string, got int"),
        ('{"_id": "b", "text": "t", "title": 1}', r"d\.jsonl:2: 'title' must be a string"),
        ('{"_id": "b", "text": "t", "metadata": [1]}', r"d\.jsonl:2: 'metadata' must be an object"),
        (
            '{"_id": "a", "text": "again"}',
            r"d\.jsonl:2: duplicate id 'a' \(first at line 1\)",
        ),
    ],
)
def test_jsonl_bad_line_names_file_line_and_problem(
    tmp_path: Path, line: str, message: str
) -> None:
    path = _write_lines(tmp_path / "d.jsonl", ['{"_id": "a", "text": "fine"}', line])
    with pytest.raises(InputError, match=message):
        list(load_jsonl(path))


def test_jsonl_skips_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"_id": "a", "text": "x"}\n')
    assert [d.doc_id for d in load_jsonl(path)] == ["a"]


def test_jsonl_invalid_utf8_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"_id": "a", "text": "\xff"}\n')
    with pytest.raises(InputError, match="not valid UTF-8"):
        list(load_jsonl(bad))
    with pytest.raises(InputError, match="does not exist"):
        load_jsonl(tmp_path / "missing.jsonl")  # raised on the call, not on iteration


def _tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "b.txt").write_text("Plain text.\n# not a title in a .txt\n", encoding="utf-8")
    (root / "a.md").write_text("```\n# fenced\n```\n\n## Real Title ##\nBody.\n", encoding="utf-8")
    (root / "sub" / "deeper" / "c.md").write_text("No heading here.", encoding="utf-8")
    (root / "sub" / "image.png").write_bytes(b"\x89PNG")
    (root / ".hidden" / "secret.txt").write_text("skip me", encoding="utf-8")
    return root


def test_text_dir_sorted_relative_ids_titles_and_metadata(tmp_path: Path) -> None:
    docs = list(load_text_dir(_tree(tmp_path)))
    assert [d.doc_id for d in docs] == ["a.md", "b.txt", "sub/deeper/c.md"]
    assert [d.title for d in docs] == ["Real Title", "b", "c"]
    assert [dict(d.metadata) for d in docs] == [
        {"path": "a.md", "format": "markdown"},
        {"path": "b.txt", "format": "text"},
        {"path": "sub/deeper/c.md", "format": "markdown"},
    ]
    assert docs[1].text == (tmp_path / "b.txt").read_text(encoding="utf-8")


def test_text_dir_single_file_and_bad_utf8(tmp_path: Path) -> None:
    _tree(tmp_path)
    [doc] = load_text_dir(tmp_path / "a.md")
    assert doc.doc_id == "a.md"
    (tmp_path / "sub" / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.txt: not valid UTF-8"):
        list(load_text_dir(tmp_path))
    with pytest.raises(InputError, match="does not exist"):
        load_text_dir(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"image\.png is not a text file"):
        load_text_dir(tmp_path / "sub" / "image.png")


def test_sniff_format(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text('{"_id": "1", "text": "x"}\n', encoding="utf-8")
    texts = _tree(tmp_path / "texts")
    other = tmp_path / "data.csv"
    other.write_text("a,b\n", encoding="utf-8")
    assert sniff_format(beir) == "beir"
    assert sniff_format(beir / "corpus.jsonl") == "jsonl"
    assert sniff_format(texts) == "text"
    assert sniff_format(texts / "a.md") == "text"
    with pytest.raises(InputError, match="cannot tell the format"):
        sniff_format(other)


def test_load_documents_dispatches(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    beir.mkdir()
    _write_lines(beir / "corpus.jsonl", ['{"_id": "1", "title": "T", "text": "x"}'])
    texts = _tree(tmp_path / "texts")
    assert [d.doc_id for d in load_documents(beir)] == ["1"]
    assert [d.doc_id for d in load_documents(beir / "corpus.jsonl")] == ["1"]
    assert [d.doc_id for d in load_documents(str(texts), format="text")] == [
        "a.md",
        "b.txt",
        "sub/deeper/c.md",
    ]
    assert [d.doc_id for d in load_documents(beir, format="beir")] == ["1"]


def test_load_documents_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope does not exist"):
        load_documents(tmp_path / "nope")
    with pytest.raises(UnknownSpecError, match="unknown document format 'csv'"):
        load_documents(tmp_path, format="csv")
    with pytest.raises(InputError, match=r"corpus\.jsonl does not exist"):
        load_documents(tmp_path, format="beir")
