"""Citations resolve only to passages that were passed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ragfleet.generate.base import Answer, Citation, parse_citations, strip_citations
from ragfleet.types import Hit


def hits(n: int) -> list[Hit]:
    return [Hit(i + 1, f"d{i}", f"d{i}#{i}", 0.0, f"text {i}", 0) for i in range(n)]


@settings(max_examples=100, deadline=None)
@given(n_passages=st.integers(0, 6), marks=st.lists(st.integers(0, 12), max_size=10))
def test_citations_point_at_passed_passages(n_passages: int, marks: list[int]) -> None:
    passages = hits(n_passages)
    text = " ".join(f"claim [{m}]" for m in marks)
    cites = parse_citations(text, passages)
    expected = list(dict.fromkeys(m for m in marks if 1 <= m <= n_passages))
    assert [c.n for c in cites] == expected
    for c in cites:
        assert (c.chunk_id, c.doc_id) == (passages[c.n - 1].chunk_id, passages[c.n - 1].doc_id)


def test_strip_and_to_dict() -> None:
    assert strip_citations("Denver Broncos [1] won [2].") == "Denver Broncos won."
    a = Answer(
        "x [1]", (Citation(1, "d0#0", "d0", (0, 4)),), tuple(hits(1)), "m", {"generate": 1.0}
    )
    d = a.to_dict()
    assert d["citations"] == [{"n": 1, "chunk_id": "d0#0", "doc_id": "d0", "span": [0, 4]}]
    assert d["passages"][0]["n"] == 1 and d["truncated"] is False


def test_attribution_cites_the_first_passage_containing_the_answer() -> None:
    from ragfleet.generate.base import attribute

    ps = [Hit(1, "a", "a#0", 0.0, "Nothing.", 0), Hit(2, "b", "b#0", 0.0, "At Levi's Stadium.", 0)]
    text, cites = attribute("Levi's Stadium.", ps)
    assert text == "Levi's Stadium. [2]" and cites == (Citation(2, "b#0", "b", (3, 17)),)
    assert ps[1].text[3:17] == "Levi's Stadium"
    assert attribute("Paris", ps) == ("Paris", ())
