"""One shard's dense index: a FAISS index built from a spec string (see :mod:`.specs`),
and for compressed ``+refine`` specs the full-precision vectors it rescores from.

Rows are append-only and *are* FAISS's internal ids (row ``i`` is the ``i``-th vector
added), so no ``IndexIDMap`` is needed and a row filter is a plain bitmap over rows.

Scores are "higher is better" for both metrics so that merge code always sorts
descending: ``ip`` returns the inner product ``<q, x>``; ``l2`` returns the *negated*
squared distance ``-||q - x||²``. Missing hits are padded with row ``-1`` and score ``-inf``.

Two stages for ``+refine`` specs (binary codes always): the codes in RAM (sign bits, PQ,
SQ) give ``k' = ceil(k · oversample)`` candidates, rescored exactly from the vectors kept
on disk (:mod:`.vectors`, memory-mapped) — :mod:`.rescore`. ``oversample`` and ``rescore``
are per search; the defaults per code family (:data:`DEFAULT_OVERSAMPLE`) were measured
(``benchmarks/scale.py``, ``benchmarks/scale_quality.py``). Without rescoring, scores are
the codes' own (``-hamming`` for binary codes, approximate distances for PQ/SQ).

Restrictive filters keep their recall: when a filter allows at most
:func:`brute_force_limit` rows, the search is exact over the allowed rows — by FAISS on
the stored codes (the flat storage of an HNSW graph, every list of an IVF index), or from
the full-precision vectors when the spec keeps them. Any query that an approximate
filtered search leaves with fewer than ``min(k, n_allowed)`` hits is re-run the same exact
way, so filtered search always returns ``min(k, n_allowed)`` hits.

Thread-safety: concurrent :meth:`DenseIndex.search` calls are safe (FAISS search is
read-only and every per-query parameter travels in a ``SearchParameters`` object, never
in the shared index). ``train``/``add``/``save`` must not overlap with searches: the
shard serialises writes behind a readers-writer lock.

This module is longer than most (~410 lines) on purpose: one class serves every FAISS
spec, and the filtered-search fallbacks depend on each spec's internals.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ragfleet._optional import require
from ragfleet.errors import (
    CollectionError,
    ConfigError,
    DimensionError,
    IndexNotTrainedError,
    InputError,
)
from ragfleet.index import binary, codes
from ragfleet.index import rescore as rescoring
from ragfleet.index.atomic import atomic_path
from ragfleet.index.rowfilter import RowFilter
from ragfleet.index.specs import DenseSpec
from ragfleet.index.vectors import Precision, VectorStore

Metric = Literal["ip", "l2"]
Scores = npt.NDArray[np.float32]
Rows = npt.NDArray[np.int64]

#: Defaults when a search passes no ``ef_search``/``nprobe`` (same as ``IndexConfig``).
DEFAULT_EF_SEARCH = 128
DEFAULT_NPROBE = 16
#: Candidates per hit rescored by default, per code family. Measured
#: (``benchmarks/results/scale_quality.json``, ``scale_single.json``): sq8 at 1.5 and sq4
#: at 2 reach recall@10 >= 0.99 against exact on real MiniLM vectors and on fashion-mnist;
#: binary at 8 gives SciFact nDCG@10 equal to flat's (dense and hybrid) at 32x less RAM,
#: but recall@10 against exact is lower (0.66 for SQuAD queries over SciFact chunks; on 1M
#: mixture-sampled vectors 0.92 at 64) — pass a larger ``oversample`` where that matters;
#: pq at 4 is bounded by ``nprobe`` first. 1-bit RaBitQ at 20 keeps recall@10 >= 0.96 at
#: 1M-2M mixture-sampled vectors (0.90-0.93 at 10; ``scale_rabitq.json``), and 2-bit
#: codes (:data:`RABITQ_MULTIBIT_OVERSAMPLE`) 0.98 at 5.
DEFAULT_OVERSAMPLE: dict[str, float] = {
    "binary": 8.0,
    "rabitq": 20.0,
    "pq": 4.0,
    "sq4": 2.0,
    "sq8": 1.5,
    "fp16": 1.0,
}
#: Candidates per hit for RaBitQ codes of 2 bits or more per dimension.
RABITQ_MULTIBIT_OVERSAMPLE = 5.0
#: Filters allowing at most ``max(BRUTE_FORCE_MIN_ROWS, BRUTE_FORCE_FRACTION * ntotal)``
#: rows are searched exactly. Measured on fashion-mnist (60k x 784, l2, k=10, one query
#: at a time): hnsw32 (ef 128) with a 2% filter costs 0.65 ms at recall 0.915 where the
#: exact filtered scan costs 0.74 ms at recall 1; at 5% hnsw costs 1.0 ms at recall 0.993
#: against 2.3 ms exact. ivf256 (nprobe 16) keeps recall >= 0.95 down to 1%.
BRUTE_FORCE_MIN_ROWS = 1024
BRUTE_FORCE_FRACTION = 0.02
_PARAMS_CACHE_SIZE = 64
_MISSING = object()


def set_omp_threads(n: int) -> None:
    """Set the OpenMP threads FAISS uses per call (process-wide; the shard decides)."""
    if n < 1:
        raise ConfigError(f"omp threads must be >= 1, got {n}")
    require("faiss", "index").omp_set_num_threads(n)


def brute_force_limit(ntotal: int) -> int:
    """Filters allowing at most this many rows are searched exactly."""
    return max(BRUTE_FORCE_MIN_ROWS, int(BRUTE_FORCE_FRACTION * ntotal))


class DenseIndex:
    """A FAISS index over one shard's vectors, for every spec of :mod:`.specs`.

    Args:
        spec: a spec string such as ``"flat"``, ``"hnsw32"``, ``"ivf1024,pq48+refine"``.
        d: the vector width.
        metric: ``"ip"`` (inner product; cosine for normalised vectors) or ``"l2"``.
    """

    __slots__ = ("_d", "_faiss", "_index", "_l2", "_metric", "_params", "_spec", "_store")

    def __init__(self, spec: str | DenseSpec, d: int, metric: Metric = "ip") -> None:
        parsed = spec if isinstance(spec, DenseSpec) else DenseSpec.parse(spec)
        if metric not in ("ip", "l2"):
            raise ConfigError(f"metric must be 'ip' or 'l2', got {metric!r}")
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ConfigError(f"vector dimension d must be a positive int, got {d!r}")
        self._faiss: ModuleType = require("faiss", "index")
        self._spec, self._d, self._metric = parsed, d, metric
        self._params: dict[tuple[int | None, int | None, int], Any] = {}
        self._l2 = metric == "l2"
        self._index: Any = None
        self._store = VectorStore(d, parsed.refine) if parsed.refine else None
        if not parsed.needs_training:
            self._index = codes.build(self._faiss, parsed, d, metric, 0)

    # -- properties ---------------------------------------------------------------------

    @property
    def spec(self) -> str:
        """The canonical spec, with nlist filled in once trained (e.g. ``"ivf980,pq49"``)."""
        return self._spec.canonical

    @property
    def dense_spec(self) -> DenseSpec:
        return self._spec

    @property
    def d(self) -> int:
        return self._d

    @property
    def metric(self) -> Metric:
        return self._metric

    @property
    def ntotal(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def needs_training(self) -> bool:
        return self._spec.needs_training

    @property
    def is_trained(self) -> bool:
        return self._index is not None and bool(self._index.is_trained)

    @property
    def faiss_index(self) -> Any:
        """The underlying FAISS index, for read-only use (benchmarks, inspection)."""
        return self._require_trained()

    @property
    def vectors(self) -> VectorStore | None:
        """The full-precision vectors of a ``+refine`` spec (None otherwise)."""
        return self._store

    @property
    def default_oversample(self) -> float:
        """Candidates per hit rescored when a search does not say (1 without rescoring)."""
        if self._store is None:
            return 1.0
        if self._spec.codes == "rabitq" and self._spec.nbits > 1:
            return RABITQ_MULTIBIT_OVERSAMPLE
        return DEFAULT_OVERSAMPLE.get(self._spec.codes, 1.0)

    def ram_bytes(self) -> int:
        """Bytes held in RAM: the FAISS index (codes, ids, graph, centroids) and the
        vectors added since the last checkpoint (the rest are memory-mapped)."""
        faiss_bytes = 0 if self._index is None else codes.ram_bytes(self._faiss, self._index)
        return faiss_bytes + (self._store.ram_bytes() if self._store is not None else 0)

    def __repr__(self) -> str:
        return f"DenseIndex({self.spec!r}, d={self._d}, metric={self._metric!r}, n={self.ntotal})"

    # -- build --------------------------------------------------------------------------

    def train(self, vectors: npt.ArrayLike) -> None:
        """Learn the IVF coarse quantizer and PQ/SQ codebooks; a no-op for specs that
        learn nothing (flat, hnsw, sqfp16, binary).

        Raises:
            ConfigError: fewer vectors than the spec needs (the message says how many).
            InputError: the index is already trained, or the vectors are malformed.
        """
        if not self.needs_training:
            return
        if self.is_trained:
            raise InputError(f"{self.spec} is already trained; create a new DenseIndex to retrain")
        x = self._matrix(vectors, "training vectors")
        n = x.shape[0]
        need = self._spec.min_train_size(n)
        if n < need:
            raise ConfigError(
                f"{self.spec} needs at least {need} training vectors "
                f"({self._spec.recommended_train_size(n)} recommended), got {n}; "
                "train on more vectors or use 'flat' or 'hnsw32', which need no training"
            )
        index = codes.build(self._faiss, self._spec, self._d, self._metric, n)
        index.train(x)
        if self._spec.structure == "ivf":
            nlist = int(self._faiss.extract_index_ivf(index).nlist)
            self._spec = dataclasses.replace(self._spec, nlist=nlist)
        self._index = index

    def add(self, rows: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Append ``vectors`` as rows ``ntotal .. ntotal + n - 1`` (``rows`` must say so).

        Raises:
            IndexNotTrainedError: a spec that learns from data and was not trained.
            DimensionError: vectors whose width is not ``d``.
            InputError: rows that are not exactly the next ``n`` rows; non-finite values.
        """
        index = self._require_trained()
        x = self._matrix(vectors, "vectors")
        start, n = int(index.ntotal), x.shape[0]
        r = np.asarray(rows)
        if r.shape != (n,) or not np.array_equal(r, np.arange(start, start + n)):
            raise InputError(
                f"rows must be exactly {start}..{start + n - 1} (append-only, one per vector); "
                f"got {n} vectors and rows of shape {r.shape} starting at "
                f"{r.reshape(-1)[0] if r.size else 'nothing'}"
            )
        if self._spec.binary:
            binary.add(index, x)
        else:
            index.add(x)
        if self._store is not None:
            self._store.add(x)

    @property
    def keeps_vectors(self) -> bool:
        """Whether :meth:`stored_vectors` returns the exact vectors that were added."""
        exact = self._spec.exact_storage and self._spec.structure in ("flat", "hnsw")
        return self._store is not None or exact

    def stored_vectors(self, rows: npt.ArrayLike) -> npt.NDArray[np.float32] | None:
        """The exact vectors of ``rows`` where the index keeps them (``+refine`` specs, flat
        and hnsw over float32), else None (the caller re-embeds)."""
        r = np.asarray(rows, dtype=np.int64)
        if self._store is not None:
            return self._store.take(r)
        if self.keeps_vectors:
            index = self._require_trained()
            out = np.empty((r.shape[0], self._d), dtype=np.float32)
            for j, row in enumerate(r.tolist()):
                out[j] = index.reconstruct(row)
            return out
        return None

    # -- search -------------------------------------------------------------------------

    def search(
        self,
        vectors: npt.ArrayLike,
        k: int,
        *,
        allow: RowFilter | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        oversample: float | None = None,
        rescore: bool | None = None,
    ) -> tuple[Scores, Rows]:
        """The top ``k`` rows of each query, best first.

        Args:
            vectors: queries, shape ``(nq, d)``; float32 C-contiguous input is used as is.
            k: hits per query (``>= 1``).
            allow: only these rows may be returned (tombstones, metadata filters).
            ef_search: HNSW beam width (raised to the candidates wanted); default 128.
            nprobe: IVF lists visited; default 16.
            oversample: ``+refine`` specs: candidates per hit taken from the codes and
                rescored (``>= 1``); default :data:`DEFAULT_OVERSAMPLE` of the codes.
            rescore: ``+refine`` specs rescore unless ``False``; ``True`` on a spec that
                keeps no vectors is an error.

        Returns:
            ``(scores, rows)``: float32 and int64 arrays of shape ``(nq, k)``; scores are
            higher-is-better (``-||q-x||²`` for l2); missing hits have row -1, score -inf.
        """
        index = self._index if self._index is not None else self._require_trained()
        if type(k) is not int or k < 1:
            k = _check_k(k)
        if (ef_search is not None and ef_search < 1) or (nprobe is not None and nprobe < 1):
            raise InputError(f"ef_search and nprobe must be >= 1, got {ef_search} and {nprobe}")
        k1 = self._candidates(k, oversample, rescore)
        store = self._store if rescore is not False else None  # None: no second stage
        x = self._matrix(vectors, "queries")
        if allow is not None:
            return self._search_filtered(index, x, k, k1, allow, ef_search, nprobe, store)
        # The hot path is inlined: each Python call costs microseconds here, since the FAISS
        # search between two calls evicts the interpreter's working set from the CPU caches.
        key = (ef_search, nprobe, k1)
        params = self._params.get(key, _MISSING)
        if params is _MISSING:
            params = self._cache_params(key)
        scores, rows = self._first_stage(index, x, k1, params)
        if store is not None:
            return rescoring.rescore(self._faiss, store, x, rows, k, self._metric)
        # FAISS pads at the tail of a row (with ±FLT_MAX), so only a -1 in the last column
        # calls for the -inf mask.
        nq = rows.shape[0]
        if (rows.item(k - 1) < 0) if nq == 1 else (nq > 1 and rows[:, -1].min() < 0):
            np.putmask(scores, rows < 0, -np.inf)
        return scores, rows

    def _candidates(self, k: int, oversample: float | None, rescore: bool | None) -> int:
        """How many first-stage candidates a search of ``k`` hits takes (``k`` when it
        does not rescore)."""
        if self._store is None:
            if rescore:
                raise InputError(
                    f"{self.spec} keeps no full-precision vectors to rescore from; "
                    f"build with '{self.spec}+refine' or search with rescore off"
                )
            return k
        if oversample is not None and not (
            isinstance(oversample, int | float) and math.isfinite(oversample) and oversample >= 1
        ):
            raise InputError(f"oversample must be a number >= 1, got {oversample!r}")
        if rescore is False:
            return k
        return rescoring.candidates(k, oversample or self.default_oversample)

    def _first_stage(
        self, index: Any, x: npt.NDArray[np.float32], k: int, params: Any
    ) -> tuple[Scores, Rows]:
        """``index.search`` minus the FAISS Python wrapper's re-validation and asserts
        (``x`` is already float32, C-contiguous and ``d`` wide: see :meth:`_matrix`);
        scores higher-is-better."""
        if self._spec.binary:
            return binary.search(self._faiss, index, x, k, params)
        n = x.shape[0]
        scores = np.empty((n, k), dtype=np.float32)
        rows = np.empty((n, k), dtype=np.int64)
        swig_ptr = self._faiss.swig_ptr
        index.search_c(n, swig_ptr(x), k, swig_ptr(scores), swig_ptr(rows), params)
        if self._l2:
            np.negative(scores, out=scores)
        return scores, rows

    def _search_filtered(
        self,
        index: Any,
        x: npt.NDArray[np.float32],
        k: int,
        k1: int,
        allow: RowFilter,
        ef_search: int | None,
        nprobe: int | None,
        store: VectorStore | None,
    ) -> tuple[Scores, Rows]:
        if len(allow) != index.ntotal:
            raise InputError(
                f"row filter covers {len(allow)} rows but the index holds {index.ntotal}; "
                "rebuild the filter after adding rows"
            )
        want = min(k, allow.n_allowed)
        if want == 0:
            return _empty(x.shape[0], k)
        packed = allow.packed  # the bitmap must outlive the selector that points into it
        sel = self._faiss.IDSelectorBitmap(len(allow), self._faiss.swig_ptr(packed))
        if allow.n_allowed <= brute_force_limit(index.ntotal):
            return self._exact_filtered(index, x, k, sel, allow, store)
        params = self._make_params(k1, ef_search, nprobe, sel)
        scores, rows = self._first_stage(index, x, k1, params)
        if store is not None:
            scores, rows = rescoring.rescore(self._faiss, store, x, rows, k, self._metric)
        else:
            np.putmask(scores, rows < 0, -np.inf)
        short = np.flatnonzero(rows[:, want - 1] < 0)
        if short.size:
            scores[short], rows[short] = self._exact_filtered(index, x[short], k, sel, allow, store)
        return scores, rows

    def _exact_filtered(
        self,
        index: Any,
        x: npt.NDArray[np.float32],
        k: int,
        sel: Any,
        allow: RowFilter,
        store: VectorStore | None,
    ) -> tuple[Scores, Rows]:
        """Exhaustive search over the allowed rows: from the full-precision vectors when
        the search rescores, else by FAISS over every stored code."""
        if store is not None:
            return rescoring.exact_subset(
                self._faiss, store, x, allow.allowed_rows(), k, self._metric
            )
        target, params = codes.exhaustive(self._faiss, self._spec, index, sel)
        scores, rows = self._first_stage(target, x, k, params)
        np.putmask(scores, rows < 0, -np.inf)
        return scores, rows

    def _cache_params(self, key: tuple[int | None, int | None, int]) -> Any:
        """Unfiltered search parameters for ``(ef_search, nprobe, k')``, built once and
        then shared read-only by every search (a bounded cache, cleared when full)."""
        params = self._make_params(key[2], key[0], key[1], None)
        if len(self._params) >= _PARAMS_CACHE_SIZE:
            self._params.clear()
        self._params[key] = params
        return params

    def _make_params(self, k: int, ef_search: int | None, nprobe: int | None, sel: Any) -> Any:
        ef = max(ef_search or DEFAULT_EF_SEARCH, k)
        return codes.search_params(self._faiss, self._spec, ef, nprobe or DEFAULT_NPROBE, sel)

    # -- validation ---------------------------------------------------------------------

    def _require_trained(self) -> Any:
        if self._index is None or not self._index.is_trained:
            raise IndexNotTrainedError(
                f"{self.spec} index must be trained before use: call train(vectors) first"
            )
        return self._index

    def _matrix(self, vectors: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
        """``vectors`` as float32 C-contiguous ``(n, d)``, without a copy when already so."""
        if (
            type(vectors) is np.ndarray
            and vectors.dtype == np.float32
            and vectors.flags.c_contiguous
        ):
            x: npt.NDArray[np.float32] = vectors
        else:
            try:
                x = np.ascontiguousarray(vectors, dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise InputError(f"{what} must be a numeric array of shape (n, d): {e}") from e
        if x.ndim != 2:
            raise InputError(f"{what} must have shape (n, {self._d}), got {x.shape}")
        if x.shape[1] != self._d:
            raise DimensionError(f"{what} have dimension {x.shape[1]}, the index has d={self._d}")
        # A NaN or ±inf makes the sum of squares non-finite. FAISS's C kernel computes it in
        # one pass with no temporaries (numpy reductions cost several times more per query);
        # if huge finite values overflow it, the element-wise check has the last word.
        faiss = self._faiss
        sum_sq = faiss.fvec_norm_L2sqr(faiss.swig_ptr(x), x.size)
        if not math.isfinite(sum_sq) and not np.isfinite(x).all():
            raise InputError(f"{what} contain NaN or infinite values")
        return x

    # -- persistence --------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the FAISS index to ``path`` atomically (temp file, fsync, rename). The
        vectors of a ``+refine`` spec are saved by their store (:attr:`vectors`)."""
        index = self._require_trained()
        with atomic_path(path) as tmp:
            codes.write(self._faiss, index, tmp)

    @classmethod
    def load(
        cls,
        path: str | Path,
        spec: str | None = None,
        metric: Metric | None = None,
        *,
        vectors: Sequence[tuple[str, Path]] = (),
    ) -> DenseIndex:
        """Read an index written by :meth:`save`, with the ``(role, path)`` vector segments
        of a ``+refine`` spec (memory-mapped, read-only).

        The spec and metric are read from the FAISS file itself (binary codes keep no
        metric: ``metric`` or ``ip``); when ``spec``/``metric`` are given (from the
        collection config) they are checked against it.

        Raises:
            CollectionError: the file is missing, unreadable, or holds another kind of
                index; the vectors are missing or do not match the index.
        """
        faiss = require("faiss", "index")
        if not Path(path).is_file():
            raise CollectionError(f"no dense index file at {path}")
        index = codes.read(faiss, path)
        try:
            found = codes.spec_of(faiss, index)
        except ConfigError as e:
            raise CollectionError(f"{path}: {e}") from e
        binary_index = codes.is_binary(faiss, index)
        found_metric: Metric = (
            (metric or "ip")
            if binary_index
            else "ip"
            if index.metric_type == faiss.METRIC_INNER_PRODUCT
            else "l2"
        )
        expected = _expected(found, spec, vectors)
        if _codes_of(found) != _codes_of(expected) or found_metric != (metric or found_metric):
            raise CollectionError(
                f"{path} holds a {found.canonical} index with metric {found_metric!r}, "
                f"but {expected.canonical} with metric {metric!r} was expected"
            )
        self = cls(expected, int(index.d), found_metric)
        self._index = index
        if expected.refine is not None:
            self._store = VectorStore.load(self._d, expected.refine, vectors)
            if len(self._store) != self.ntotal:
                raise CollectionError(
                    f"{path}: the index holds {self.ntotal} rows but its vectors "
                    f"{len(self._store)}; restore the shard from a replica or rebuild it"
                )
        return self


def _codes_of(spec: DenseSpec) -> tuple[object, ...]:
    """Everything a FAISS file says of a spec: all but ``refine``."""
    return tuple(getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name != "refine")


def _expected(found: DenseSpec, spec: str | None, vectors: Sequence[tuple[str, Path]]) -> DenseSpec:
    """The spec a loaded index must be: ``spec`` (nlist filled in from the file), or what
    the file and the vector segments say."""
    if spec is None:
        refine: Precision | None = None
        if vectors:
            dtype = np.load(vectors[0][1], mmap_mode="r", allow_pickle=False).dtype
            refine = "fp16" if dtype == np.float16 else "fp32"
        elif found.binary:
            raise CollectionError("a binary index needs its vectors to rescore from")
        return dataclasses.replace(found, refine=refine)
    expected = DenseSpec.parse(spec)
    if expected.structure == "ivf" and expected.nlist is None and found.nlist is not None:
        expected = dataclasses.replace(expected, nlist=found.nlist)
    return expected


def _check_k(k: object) -> int:
    """``k`` as an int >= 1 (numpy integers accepted), else :class:`InputError`."""
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1:
        return int(k)
    raise InputError(f"k must be a positive int, got {k!r}")


def _empty(nq: int, k: int) -> tuple[Scores, Rows]:
    return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)
