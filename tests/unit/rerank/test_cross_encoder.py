"""Cross-encoder loading (offline, clear errors) and the resumable trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ragfleet.errors import ConfigError, InputError
from ragfleet.rerank.cross_encoder import CrossEncoderReranker, check_model_dir
from ragfleet.rerank.train import TrainConfig, load_groups, lr_at, save_groups, train
from ragfleet.rerank.train_io import Group
from ragfleet.types import Hit

pytest.importorskip("torch", reason="the torch extra is not installed")
pytestmark = pytest.mark.model

GROUPS = [
    Group("what do vaccines do", "Vaccines train the immune system.", ("Bread needs flour.",)),
    Group("who won the match", "The home team won the match 2-1.", ("Stocks rose on Friday.",)),
    Group("what is sourdough", "Sourdough is bread leavened by a starter.", ("Cats sleep a lot.",)),
]
CONFIG = TrainConfig(
    max_queries=3,
    negatives=1,
    groups_per_step=1,
    max_seq=32,
    save_every=2,
    mine_depth=2,
    lr=1e-4,
    warmup=0.0,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ce")
    return train(GROUPS, out, CONFIG, meta={"data": "inline"})


def test_not_a_model_dir_names_the_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=str(tmp_path / "nope")):
        check_model_dir(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match="missing weights"):
        CrossEncoderReranker(tmp_path)


def test_trained_folder_loads_and_reranks(trained: Path) -> None:
    meta = json.loads((trained / "fingerprint.json").read_text())
    assert meta["steps"] == 3 and len(meta["fingerprint"]) == 16
    assert not (trained / "checkpoint").exists()
    ce = CrossEncoderReranker(trained)
    texts = ["Vaccines train the immune system.", "Bread needs flour.", "Stocks rose."]
    s = ce.score("what do vaccines do", texts)
    assert s.shape == (3,) and np.all(np.isfinite(s))
    np.testing.assert_allclose(s[:1], ce.score("what do vaccines do", texts[:1]), atol=1e-4)
    hits = [Hit(i + 1, f"d{i}", f"d{i}#0", 0.0, t, 0) for i, t in enumerate(texts)]
    out = ce.rerank("what do vaccines do", hits, top_n=3)
    assert sorted(h.doc_id for h in out) == ["d0", "d1", "d2"]
    assert [h.scores["rerank"] for h in out] == sorted(s.tolist(), reverse=True)


def test_resume_continues_from_the_checkpoint(tmp_path: Path, trained: Path) -> None:
    """Interrupt after step 2 (checkpointed), rerun: it does step 3 only and ends where an
    uninterrupted run ends; a rerun with another config is refused."""

    class Stop(Exception):
        pass

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        train(GROUPS, tmp_path, CONFIG, meta={"data": "inline"}, progress=stop_after_two)
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["step"] == 2
    other = TrainConfig(**{**CONFIG.__dict__, "lr": 5e-5})
    with pytest.raises(InputError, match="rerun with the same options"):
        train(GROUPS, tmp_path, other, meta={})
    resumed: list[int] = []
    train(
        GROUPS, tmp_path, CONFIG, meta={"data": "inline"}, progress=lambda d, t: resumed.append(d)
    )
    assert resumed == [3]
    q, t = "what is sourdough", ["Sourdough is bread leavened by a starter."]
    np.testing.assert_allclose(
        CrossEncoderReranker(trained).score(q, t),
        CrossEncoderReranker(tmp_path).score(q, t),
        atol=1e-4,
    )


def test_lr_schedule_and_config_and_groups_roundtrip(tmp_path: Path) -> None:
    c = TrainConfig(lr=1.0, warmup=0.25)
    assert [lr_at(s, 8, c) for s in range(8)] == [0.5, 1.0, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]
    with pytest.raises(ConfigError):
        TrainConfig(negatives=5, mine_depth=5)
    save_groups(tmp_path / "g.jsonl", GROUPS)
    assert load_groups(tmp_path / "g.jsonl") == GROUPS
