"""Hard-negative mining from a real (tiny) collection with hybrid search."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ragfleet.collection import Collection
from ragfleet.errors import InputError
from ragfleet.rerank.train import TrainConfig, mine_groups
from ragfleet.types import Document

pytestmark = pytest.mark.model

TEXTS = {
    "v1": "Vaccines train the immune system to recognise pathogens.",
    "v2": "Immune responses to vaccines differ between children and adults.",
    "b1": "Sourdough bread rises thanks to wild yeast.",
    "b2": "Bread flour has more protein than cake flour.",
    "r1": "The Rhine flows into the North Sea.",
    "r2": "The Danube flows into the Black Sea.",
}


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collection]:
    docs = [Document(d, t) for d, t in TEXTS.items()]
    col = Collection.build(tmp_path_factory.mktemp("mine") / "c", docs)
    yield col
    col.close()


def test_groups_hold_a_positive_and_judged_free_negatives(collection: Collection) -> None:
    queries = {"q1": "how do vaccines work", "q2": "why does bread rise", "q3": "unjudged"}
    qrels = {"q1": {"v1": 1}, "q2": {"b1": 1, "b2": 0}}
    config = TrainConfig(negatives=2, mine_depth=5, seed=3)
    groups = mine_groups(collection, queries, qrels, TEXTS, config)
    assert sorted(g.query for g in groups) == ["how do vaccines work", "why does bread rise"]
    for g in groups:
        rel = "v1" if "vaccines" in g.query else "b1"
        assert g.positive == TEXTS[rel] and len(g.negatives) == 2
        assert TEXTS[rel] not in g.negatives and len(set(g.negatives)) == 2
    assert mine_groups(collection, queries, qrels, TEXTS, config) == groups  # seeded
    with pytest.raises(InputError, match="no training query"):
        mine_groups(collection, queries, {"q1": {"zz": 1}}, TEXTS, config)
