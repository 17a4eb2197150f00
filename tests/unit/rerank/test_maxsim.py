"""MaxSim (Khattab & Zaharia 2020) over the bundled encoder's token states."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ragfleet.errors import ConfigError
from ragfleet.rerank.base import RerankConfig
from ragfleet.rerank.maxsim import MaxSimReranker, maxsim, normalize_tokens
from ragfleet.types import Hit

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def reranker() -> MaxSimReranker:
    return MaxSimReranker(config=RerankConfig(candidates=8, batch_size=3))


def test_maxsim_is_the_sum_of_row_maxima() -> None:
    rng = np.random.default_rng(0)
    q = normalize_tokens(rng.normal(size=(7, 16)).astype(np.float32))
    d = normalize_tokens(rng.normal(size=(11, 16)).astype(np.float32))
    expected = sum(max(float(qi @ dj) for dj in d) for qi in q)
    assert maxsim(q, d) == pytest.approx(expected, rel=1e-5)
    assert maxsim(q, d[:0]) == 0.0


def test_normalize_drops_specials_and_unit_norms() -> None:
    x = np.arange(20, dtype=np.float32).reshape(5, 4) + 1
    y = normalize_tokens(x)
    assert y.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-6)


def test_a_passage_equal_to_the_query_scores_its_token_count(reranker: MaxSimReranker) -> None:
    q = "how do vaccines train the immune system"
    s = reranker.score(q, [q])
    n_tokens = len(reranker.encoder.token_embeddings([q])[0]) - 2
    assert s[0] == pytest.approx(n_tokens, rel=1e-4)  # each token matches itself: cos = 1


def test_relevant_passage_ranks_first_and_batches_agree(reranker: MaxSimReranker) -> None:
    texts = [
        "The stock market closed higher on Friday after strong earnings.",
        "Vaccines expose the immune system to an antigen so it learns to fight the pathogen.",
        "A recipe for sourdough bread needs flour, water, salt and a starter.",
        "Football fans celebrated the championship win downtown.",
    ]
    hits = [Hit(i + 1, f"d{i}", f"d{i}#0", 1.0 / (i + 1), t, 0) for i, t in enumerate(texts)]
    out = reranker.rerank("how do vaccines train the immune system", hits, top_n=2)
    assert out[0].doc_id == "d1" and [h.rank for h in out] == [1, 2]
    one_by_one = np.concatenate([reranker.score("vaccines immune", [t]) for t in texts])
    np.testing.assert_allclose(reranker.score("vaccines immune", texts), one_by_one, rtol=1e-3)


def test_encoder_without_token_states_is_refused() -> None:
    class NoTokens:
        name = "x"

    bad: Any = NoTokens()
    with pytest.raises(ConfigError, match="token_embeddings"):
        MaxSimReranker(encoder=bad)
