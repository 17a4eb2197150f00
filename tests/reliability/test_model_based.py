"""Model-based crash test of every write path (issue 14), as Hypothesis stateful testing.

A real collection (the real int8 encoder, 2 shards, a checkpoint every few batches) takes
random sequences of upsert / replace / delete / checkpoint / compact / reindex against an
in-memory model of what was acknowledged: ``doc_id → text``. Two kinds of death:

* ``crash``: one write runs with a crash armed at its ``n``-th durability point
  (:mod:`ragfleet.index.faults`: before a log record is written or fsynced, around each
  checkpoint file, before and after each atomic rename, before log truncation, during a
  compaction's swap). The collection is then abandoned as a killed process would leave it
  and reopened; the documents of that write must each be wholly old or wholly new, every
  other document exactly as acknowledged.
* ``kill``: the collection is abandoned between two writes (the process dies after an
  acknowledgement): reopening must find everything acknowledged.

After every step a *reader* (``read_only=True``, opened beside the writer) must see exactly
the model too — documents, chunk texts, no chunk twice, each live document found by its
tag word, each live chunk's stored token vectors (the collection stores them, issue 18:
one segment per checkpoint, in the log between) those of its own text — and must not have
changed a byte of the collection.

Both tests run over ``flat`` and over a compressed spec that keeps its vectors on disk
(``sq8+refine16``: SQ codes trained on the first batch, float16 vectors in checkpoint
segments): there every live row's stored vector must also be its chunk's embedding.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ragfleet.collection import Collection
from ragfleet.config import (
    ChunkerConfig,
    CollectionConfig,
    IndexConfig,
    ShardingConfig,
    TokensConfig,
)
from ragfleet.errors import CollectionError
from ragfleet.index import faults
from ragfleet.index.shard import CheckpointPolicy
from ragfleet.ingest.chunking import make_chunker
from ragfleet.search.request import SearchRequest
from ragfleet.types import Document

IDS = [f"d{i}" for i in range(8)]
WORDS = [
    "river",
    "castle",
    "engine",
    "orbit",
    "harbor",
    "violin",
    "glacier",
    "market",
    "desert",
    "lantern",
]
POLICY = CheckpointPolicy(max_batches=3)
#: The dense specs both tests run over: exact, and compressed with vectors on disk.
SPECS = ["flat", "sq8+refine16"]
_ENCODER: list[Any] = []
_SPEC: list[str] = ["flat"]
_EMBEDDED: dict[str, Any] = {}  # chunk text -> its embedding (checks of stored vectors)
SEEN: dict[str, int] = {}  # crash points hit, by name; reopens; steps


def _config(spec: str | None = None) -> CollectionConfig:
    return CollectionConfig(
        sharding=ShardingConfig(n_shards=2),
        chunker=ChunkerConfig.parse("window:16:4"),
        index=IndexConfig(spec=spec or _SPEC[0]),
        tokens=TokensConfig(enabled=True, pool=1),  # every token: compared one by one below
    )


def _text(seed: int, tag: str) -> str:
    words = [WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(10 + seed % 25)]
    words.insert(seed % len(words), tag)
    return " ".join(words)


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "LOCK":
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


class WritePaths(RuleBasedStateMachine):
    """The state machine: ``self.model`` is what was acknowledged."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="ragfleet-model-"))
        self.root = self.tmp / "c"
        self.model: dict[str, str] = {}
        self.counter = itertools.count()
        self.col: Collection | None = None
        self.encoder = _ENCODER[0]
        self.chunker: Any = None

    @initialize()
    def create(self) -> None:
        self.col = Collection.create(self.root, _config(), encoder=self.encoder, policy=POLICY)
        self.chunker = make_chunker(self.col.config.chunker, self.encoder.tokenizer)

    def teardown(self) -> None:
        if self.col is not None:
            self.col.abandon()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the writes ---------------------------------------------------------------------
    def _new_texts(self, ids: list[str]) -> dict[str, str]:
        out = {}
        for d in ids:
            n = next(self.counter)
            out[d] = _text(n, f"zq{n}x{d}")
        return out

    def _upsert(self, texts: dict[str, str]) -> None:
        assert self.col is not None
        self.col.upsert([Document(d, t) for d, t in texts.items()])
        self.model.update(texts)

    def _delete(self, ids: list[str]) -> None:
        assert self.col is not None
        self.col.delete(ids)
        for d in ids:
            self.model.pop(d, None)

    @rule(ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True))
    def upsert(self, ids: list[str]) -> None:
        self._upsert(self._new_texts(ids))

    @rule(ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True))
    def delete(self, ids: list[str]) -> None:
        self._delete(ids)

    @rule()
    def checkpoint(self) -> None:
        assert self.col is not None
        self.col.checkpoint()

    @rule(threshold=st.sampled_from([0.0, 0.3]))
    def compact(self, threshold: float) -> None:
        assert self.col is not None
        self.col.compact(threshold)

    @precondition(lambda self: len(self.model) <= 6)
    @rule()
    def reindex(self) -> None:
        assert self.col is not None
        self.col.reindex("minilm-int8")

    @rule(
        kind=st.sampled_from(["upsert", "delete", "checkpoint", "compact"]),
        ids=st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True),
        point=st.integers(1, 8) | st.integers(9, 90),
    )
    def crash(self, kind: str, ids: list[str], point: int) -> None:
        """One write dies at its ``point``-th durability boundary (if it gets that far)."""
        assert self.col is not None
        texts = self._new_texts(ids) if kind == "upsert" else {}
        before = {d: self.model.get(d) for d in ids}
        crashed = False
        with faults.crash_at(point):
            try:
                if kind == "upsert":
                    self._upsert(texts)
                elif kind == "delete":
                    self._delete(ids)
                elif kind == "checkpoint":
                    self.col.checkpoint()
                else:
                    self.col.compact(0.0)
            except faults.SimulatedCrash as e:
                crashed = True
                where = str(e).split("(")[-1].rstrip(")").split(":")[0]
                SEEN[where] = SEEN.get(where, 0) + 1
        if not crashed:
            return
        self._reopen()
        if kind in ("upsert", "delete"):
            self._resolve_in_flight(before, texts)

    @rule()
    def kill(self) -> None:
        """The process dies between two writes."""
        self._reopen()

    def _reopen(self) -> None:
        assert self.col is not None
        SEEN["reopen"] = SEEN.get("reopen", 0) + 1
        self.col.abandon()
        self.col = Collection.open(self.root, encoder=self.encoder, policy=POLICY)

    def _resolve_in_flight(self, before: dict[str, str | None], texts: dict[str, str]) -> None:
        """Each document of the write that died is wholly old or wholly new."""
        assert self.col is not None
        stored = self._stored(self.col)
        for d, old in before.items():
            new = texts.get(d)  # None: deleted (or never upserted)
            got = stored.get(d, [])
            options = {"old": old, "new": new}
            match = [k for k, v in options.items() if self._chunks(d, v) == got]
            assert match, f"{d}: stored {got} is neither the old {old!r} nor the new {new!r}"
            value = options[match[0]]
            if value is None:
                self.model.pop(d, None)
            else:
                self.model[d] = value

    # -- the checks ---------------------------------------------------------------------
    def _chunks(self, doc_id: str, text: str | None) -> list[tuple[str, str]]:
        return _chunks(self.chunker, doc_id, text)

    def _stored(self, col: Collection) -> dict[str, list[tuple[str, str]]]:
        return _stored(col)

    @invariant()
    def writer_and_a_reader_see_the_model(self) -> None:
        if self.col is not None:
            check_writer_and_reader(self.col, self.root, self.model, self.chunker, self.encoder)


def _chunks(chunker: Any, doc_id: str, text: str | None) -> list[tuple[str, str]]:
    if text is None:
        return []
    return sorted((c.chunk_id, c.text) for c in chunker.chunk_many([Document(doc_id, text)]))


def _stored(col: Collection) -> dict[str, list[tuple[str, str]]]:
    by_doc: dict[str, list[tuple[str, str]]] = {}
    for shard in col.shards:
        for c in shard.live_chunks():
            by_doc.setdefault(c.doc_id, []).append((c.chunk_id, c.text))
    return {d: sorted(v) for d, v in by_doc.items()}


def check_vectors(col: Collection) -> None:
    """Where a shard keeps its vectors on disk, each live row's is its chunk's embedding
    (cosine >= 0.999: float16 rounding, batch composition) and every row has one."""
    for shard in col.shards:
        store = shard.dense.vectors
        if store is None:
            continue
        assert len(store) == shard.rows.n_rows == shard.dense.ntotal
        chunks = shard.live_chunks()
        if not chunks:
            continue
        texts = [c.text for c in chunks]
        todo = [t for t in dict.fromkeys(texts) if t not in _EMBEDDED]
        if todo:
            _EMBEDDED.update(zip(todo, col.encoder.encode(todo, kind="document"), strict=True))
        got = store.take(np.array([c.row for c in chunks], dtype=np.int64))
        want = np.stack([_EMBEDDED[t] for t in texts])
        cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
        assert cos.min() >= 0.999, (cos.min(), [c.chunk_id for c in chunks])


def check_model(col: Collection, model: dict[str, str], chunker: Any) -> None:
    """``col`` holds exactly ``model``: documents, chunk texts, no chunk twice, and each
    live document is the top sparse hit for its tag word."""
    check_vectors(col)
    stored = _stored(col)
    assert sorted(stored) == sorted(model), (sorted(stored), sorted(model))
    for d, text in model.items():
        assert stored[d] == _chunks(chunker, d, text), d
    ids = [c for chunks in stored.values() for c, _ in chunks]
    assert len(ids) == len(set(ids)), "a chunk is live twice"
    check_token_vectors(col)
    if model:
        tags = {d: next(w for w in t.split() if w.startswith("zq")) for d, t in model.items()}
        results = col.search_batch(list(tags.values()), SearchRequest(k=3, mode="sparse"))
        for (d, tag), res in zip(tags.items(), results, strict=True):
            assert res.hits and res.hits[0].doc_id == d, f"{d} not found by {tag}"


def check_token_vectors(col: Collection) -> None:
    """Every row has token vectors, and each live chunk's are its own text's: as many as
    its tokens without [CLS]/[SEP], matching a fresh encoding (cosine per token)."""
    import numpy as np

    from ragfleet.collection.writer import embed_input
    from ragfleet.embed.token_capture import maxsim_states
    from ragfleet.index.tokens_codec import TokenCodec

    for shard in col.shards:
        assert shard.tokens is not None and shard.tokens.n_rows == shard.rows.n_rows
        chunks = shard.live_chunks()
        if not chunks:
            continue
        blocks = shard.token_blocks([c.chunk_id for c in chunks])
        assert blocks.found.all()
        codec = TokenCodec("int8", shard.dim)
        texts = [embed_input(c.title, c.text) for c in chunks]
        _, states = col.encoder.encode_with_tokens(texts)  # type: ignore[attr-defined]
        for i, (c, s) in enumerate(zip(chunks, states, strict=True)):
            got = codec.decode(blocks.codes[blocks.offsets[i] : blocks.offsets[i + 1]])
            want = maxsim_states(s)
            assert got.shape == want.shape, f"{c.chunk_id}: {got.shape} tokens vs {want.shape}"
            cos = (got * want).sum(axis=1) / np.linalg.norm(got, axis=1)
            assert cos.min() > 0.98, f"{c.chunk_id}: stored token vectors are another text's"


def check_writer_and_reader(
    col: Collection, root: Path, model: dict[str, str], chunker: Any, encoder: Any
) -> None:
    """The writer and a reader opened beside it both hold ``model``; the reader writes
    nothing."""
    check_model(col, model, chunker)
    before = _tree_digest(root)
    try:
        reader = Collection.open(root, encoder=encoder, read_only=True)
    except CollectionError as e:  # pragma: no cover - reported with the sequence
        raise AssertionError(f"a reader could not open the collection: {e}") from e
    try:
        check_model(reader, model, chunker)
    finally:
        reader.close()
    assert _tree_digest(root) == before, "a reader changed the collection"


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
def test_every_write_path_survives_crashes_at_every_boundary(encoder: Any, spec: str) -> None:
    _ENCODER[:] = [encoder]
    _SPEC[:] = [spec]
    examples = int(__import__("os").environ.get("RAGFLEET_MODEL_EXAMPLES", "60"))
    if spec != "flat":  # its every crash point is the exhaustive test's; explore less here
        examples = max(10, examples // 4)
    machine = settings(
        max_examples=examples,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )(type(f"WritePaths_{spec}", (WritePaths,), {}))  # settings apply once per class
    SEEN.clear()
    machine.TestCase().runTest()
    print(f"\ncrash points hit and reopens: {dict(sorted(SEEN.items()))}")
    crashes = sum(v for k, v in SEEN.items() if k != "reopen")
    # crashes landed on the log or a checkpoint's files (which of them is up to Hypothesis:
    # with token vectors a checkpoint has one more file, and runs without a wal.fsync or
    # checkpoint.dense crash occur on main too)
    hit = {k for k in SEEN if k.startswith(("wal.", "checkpoint."))}
    assert crashes >= 5 and hit, SEEN


#: The scripted workload of the exhaustive test: (operation, argument).
WORKLOAD: list[tuple[str, Any]] = [
    ("upsert", ["d0", "d1", "d2", "d3"]),
    ("delete", ["d1"]),
    ("upsert", ["d2", "d4"]),  # a replacement and a new document
    ("checkpoint", None),
    ("upsert", ["d5"]),
    ("delete", ["d0", "d5"]),
    ("compact", 0.0),
    ("upsert", ["d1", "d6"]),
    ("close", None),
]


def _run_workload(
    col: Collection,
    model: dict[str, str],
    texts: dict[int, dict[str, str]],
    in_flight: list[tuple[dict[str, str | None], dict[str, str]]],
) -> None:
    """Run :data:`WORKLOAD`, keeping ``model`` at the acknowledged state; the write in
    flight is recorded in ``in_flight`` (its documents' old values and new texts)."""
    for step, (op, arg) in enumerate(WORKLOAD):
        ids = arg if isinstance(arg, list) else []
        new = texts.get(step, {})
        in_flight[:] = [({d: model.get(d) for d in ids}, new)]
        if op == "upsert":
            col.upsert([Document(d, t) for d, t in new.items()])
            model.update(new)
        elif op == "delete":
            col.delete(ids)
            for d in ids:
                model.pop(d, None)
        elif op == "checkpoint":
            col.checkpoint()
        elif op == "compact":
            col.compact(arg)
        else:
            col.close()
        in_flight.clear()


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
def test_a_crash_at_every_durability_point_of_a_workload(
    tmp_path: Path, encoder: Any, spec: str
) -> None:
    """Exhaustive: the workload is run once counting its durability points, then once per
    point with a crash there; every run reopens to the acknowledged state."""
    _SPEC[:] = [spec]
    texts = {
        step: {d: _text(step * 10 + i, f"zq{step}x{d}") for i, d in enumerate(arg)}
        for step, (op, arg) in enumerate(WORKLOAD)
        if op == "upsert"
    }
    base = tmp_path / "base"
    Collection.create(base, _config(), encoder=encoder, policy=POLICY).close()
    chunker = make_chunker(_config().chunker, encoder.tokenizer)
    probe = tmp_path / "probe"
    shutil.copytree(base, probe)
    with faults.counting() as names:
        col = Collection.open(probe, encoder=encoder, policy=POLICY)
        _run_workload(col, {}, texts, [])
    n_points = len(names)
    assert n_points > 100, names  # the workload crosses every kind of boundary
    if spec != "flat":  # and the vector segments' writes, renames and the merge
        assert {"checkpoint.vectors"} <= set(names), names
        assert any(n.startswith("atomic.rename:vectors-") for n in names), names
    for n in range(1, n_points + 1):
        root = tmp_path / f"run-{n}"
        shutil.copytree(base, root)
        model: dict[str, str] = {}
        in_flight: list[tuple[dict[str, str | None], dict[str, str]]] = []
        col = Collection.open(root, encoder=encoder, policy=POLICY)
        with faults.crash_at(n):
            try:
                _run_workload(col, model, texts, in_flight)
                raise AssertionError(f"no crash at point {n} ({names[n - 1]})")
            except faults.SimulatedCrash:
                pass
        col.abandon()
        col = Collection.open(root, encoder=encoder, policy=POLICY)
        try:
            stored = _stored(col)
            for before, new in in_flight:  # each document of the dying write: old or new
                for d, old in before.items():
                    got = stored.get(d, [])
                    if got == _chunks(chunker, d, new.get(d)) and (d in new or old is not None):
                        value = new.get(d)
                    else:
                        assert got == _chunks(chunker, d, old), (
                            f"crash at point {n} ({names[n - 1]}): {d} is neither old nor new"
                        )
                        value = old
                    if value is None:
                        model.pop(d, None)
                    else:
                        model[d] = value
            check_writer_and_reader(col, root, model, chunker, encoder)
        except AssertionError as e:
            raise AssertionError(f"after a crash at point {n} ({names[n - 1]}): {e}") from e
        finally:
            col.close()
        shutil.rmtree(root)
    print(f"\n{n_points} crash points, every one reopened to the acknowledged state")
