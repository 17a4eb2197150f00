"""Markdown headings, sections and the markdown chunker."""

from __future__ import annotations

from ragfleet.config import ChunkerConfig
from ragfleet.ingest import MarkdownChunker, minilm_tokenizer
from ragfleet.ingest.markdown import first_heading, iter_headings, sections
from ragfleet.types import Document

DOC = """Preamble line.

# Intro
## Setup
Install it. Run it.

```bash
# a comment, not a heading
```
### Deep ###
Deep text.
## Usage
Use it.
#hashtag is text
# Next
"""


def test_headings_skip_fences_and_track_the_path() -> None:
    heads = [(h.level, h.title, h.path) for h in iter_headings(DOC)]
    assert heads == [
        (1, "Intro", "Intro"),
        (2, "Setup", "Intro > Setup"),
        (3, "Deep", "Intro > Setup > Deep"),
        (2, "Usage", "Intro > Usage"),
        (1, "Next", "Next"),
    ]
    assert first_heading(DOC) == "Intro"
    assert first_heading("~~~\n# fenced\n~~~\nno heading") is None
    assert first_heading("    # indented code\n#\n### Third") == "Third"


def test_sections_cover_the_text_and_merge_bare_headings() -> None:
    secs = sections(DOC)
    assert [p for _, _, p in secs] == [
        "",
        "Intro > Setup",
        "Intro > Setup > Deep",
        "Intro > Usage",
        "Next",
    ]
    assert "".join(DOC[s:e] for s, e, _ in secs) == DOC
    assert DOC[secs[1][0] : secs[1][1]].startswith("# Intro\n## Setup\n")  # bare "# Intro" joined
    assert sections("") == [(0, 0, "")]
    assert sections("\n\n# Only\n") == [(0, 9, "Only")]


def test_markdown_chunks_carry_their_section() -> None:
    cfg = ChunkerConfig(kind="markdown", max_tokens=64, overlap=0)
    doc = Document("d", DOC, metadata={"path": "x.md"})
    chunks = MarkdownChunker(cfg, minilm_tokenizer()).chunk(doc)
    got = [(c.metadata["section"], c.text) for c in chunks]
    assert got[0] == ("", "Preamble line.")
    assert got[1][0] == "Intro > Setup" and "# a comment, not a heading" in got[1][1]
    assert got[2] == ("Intro > Setup > Deep", "### Deep ###\nDeep text.")
    assert got[3] == ("Intro > Usage", "## Usage\nUse it.\n#hashtag is text")
    assert got[4] == ("Next", "# Next")
    assert all(c.metadata["path"] == "x.md" for c in chunks)
    assert doc.metadata == {"path": "x.md"}  # not mutated


def test_no_chunk_spans_two_sections() -> None:
    body = " ".join(f"Fact {i} holds." for i in range(30))
    text = f"# A\n{body}\n# B\n{body}\n"
    cfg = ChunkerConfig(kind="markdown", max_tokens=24, overlap=6)
    chunks = MarkdownChunker(cfg, minilm_tokenizer()).chunk(Document("d", text))
    split = text.index("# B")
    assert all(c.end <= split or c.start >= split for c in chunks)
    assert {c.metadata["section"] for c in chunks} == {"A", "B"}


def test_crlf_markdown() -> None:
    text = "# Intro\r\nFirst line.\r\n\r\n## Setup\r\nSecond line.\r\n"
    cfg = ChunkerConfig(kind="markdown", max_tokens=64, overlap=0)
    chunks = MarkdownChunker(cfg, minilm_tokenizer()).chunk(Document("d", text))
    assert [(c.metadata["section"], c.text) for c in chunks] == [
        ("Intro", "# Intro\r\nFirst line."),
        ("Intro > Setup", "## Setup\r\nSecond line."),
    ]
