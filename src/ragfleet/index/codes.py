"""The FAISS side of a :class:`~ragfleet.index.specs.DenseSpec`: the index that holds a
shard's codes in RAM — built, read, written, parameterised per search, and measured.

Every spec maps to one FAISS index: ``index_factory`` for float, SQ and PQ codes
(``IndexFlat``, ``IndexScalarQuantizer``, ``IndexHNSW{Flat,SQ,PQ}``, ``IndexIVF{Flat,
ScalarQuantizer,PQ,PQFastScan,RaBitQ,RaBitQFastScan}``, ``IndexRaBitQ``, an
``IndexPreTransform`` with an ``OPQMatrix`` for OPQ),
``IndexBinaryFlat`` / ``IndexBinaryHNSW`` for sign bits (:mod:`ragfleet.index.binary`).
:func:`spec_of` inverts the mapping for an index read from disk; :func:`ram_bytes` adds
up the arrays the index keeps in memory (codes, ids, graph links, centroids, codebooks,
precomputed tables), which is what its file holds too.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from ragfleet.errors import CollectionError, ConfigError
from ragfleet.index.specs import GRAMMAR, RABITQ_QUERY_BITS, Codes, DenseSpec

Metric = Literal["ip", "l2"]
#: FAISS file headers that start a binary index (``IBxF`` flat, ``IBHf`` HNSW).
_BINARY_FOURCC = b"IB"


def build(faiss: ModuleType, spec: DenseSpec, d: int, metric: Metric, n_train: int) -> Any:
    """An empty FAISS index for ``spec`` (IVF ``nlist`` resolved from ``n_train``)."""
    if spec.binary:
        if d % 8:
            raise ConfigError(f"binary codes pack 8 dimensions per byte; d={d} is not a multiple")
        if spec.structure == "hnsw":
            return faiss.IndexBinaryHNSW(d, spec.hnsw_m)
        return faiss.IndexBinaryFlat(d)
    fm = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    factory = spec.to_factory_string(d, n_train)  # validates pq_m against d
    if spec.structure == "hnsw" and spec.codes == "pq":
        # the factory builds HNSW,PQ for l2 whatever the metric (FAISS 1.15): construct it;
        # and no polysemous training of its PQ (see DenseSpec._pq_factory's "np")
        index = faiss.IndexHNSWPQ(d, spec.pq_m, spec.hnsw_m, spec.nbits, fm)
        faiss.downcast_index(index.storage).do_polysemous_training = False
        return index
    return faiss.index_factory(d, factory, fm)


def is_binary(faiss: ModuleType, index: Any) -> bool:
    return isinstance(index, faiss.IndexBinary)


def write(faiss: ModuleType, index: Any, path: str | Path) -> None:
    (faiss.write_index_binary if is_binary(faiss, index) else faiss.write_index)(index, str(path))


def read(faiss: ModuleType, path: str | Path) -> Any:
    """Read a float or binary FAISS index (told apart by the file's four-character code)."""
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        if head.startswith(_BINARY_FOURCC):
            return faiss.read_index_binary(str(path))
        return faiss.read_index(str(path))
    except RuntimeError as e:
        raise CollectionError(f"cannot read FAISS index {path}: {e}") from e


def spec_of(faiss: ModuleType, index: Any) -> DenseSpec:
    """The spec that built ``index``, ``refine`` aside (FAISS files do not say; binary
    specs come back with ``refine="fp32"``, which the caller replaces).

    Raises:
        ConfigError: an index this grammar cannot express (another metric or structure).
    """
    # ``index`` stays bound: a downcast proxy does not own the C++ object it points to
    if is_binary(faiss, index):
        down = faiss.downcast_IndexBinary(index)
        if isinstance(down, faiss.IndexBinaryHNSW):
            return DenseSpec("hnsw", "binary", hnsw_m=_hnsw_m(down), refine="fp32")
        if type(down) is faiss.IndexBinaryFlat:
            return DenseSpec("flat", "binary", refine="fp32")
        raise ConfigError(f"unsupported FAISS index {type(down).__name__}; expected {GRAMMAR}")
    if index.metric_type not in (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2):
        raise ConfigError(f"FAISS metric {index.metric_type} is not supported: ip or l2")
    down = faiss.downcast_index(index)
    if isinstance(down, faiss.IndexPreTransform):
        return _opq_spec(faiss, down)
    if isinstance(down, faiss.IndexHNSW):
        storage = faiss.downcast_index(down.storage)
        return _with_codes(faiss, DenseSpec("hnsw", hnsw_m=_hnsw_m(down)), storage)
    if isinstance(down, faiss.IndexIVF):
        return _with_codes(faiss, DenseSpec("ivf", nlist=int(down.nlist)), down)
    return _with_codes(faiss, DenseSpec("flat"), down)


def _hnsw_m(index: Any) -> int:
    return int(index.hnsw.nb_neighbors(1))


def _opq_spec(faiss: ModuleType, index: Any) -> DenseSpec:
    inner = faiss.downcast_index(index.index)
    chain = [faiss.downcast_VectorTransform(index.chain.at(i)) for i in range(index.chain.size())]
    # an OPQMatrix is written as the plain LinearTransform it learnt: a d x d rotation
    names = [type(t).__name__ for t in chain]
    if names not in (["OPQMatrix"], ["LinearTransform"]) or chain[0].d_in != chain[0].d_out:
        raise ConfigError(f"unsupported FAISS index: pre-transform {names}; expected {GRAMMAR}")
    spec = spec_of(faiss, inner)
    if spec.codes != "pq" or spec.structure != "ivf":
        raise ConfigError(f"unsupported FAISS index OPQ over {spec.canonical}; expected {GRAMMAR}")
    return DenseSpec("ivf", "pq", nlist=spec.nlist, pq_m=spec.pq_m, nbits=spec.nbits,
                     fastscan=spec.fastscan, opq=True)  # fmt: skip


def _with_codes(faiss: ModuleType, spec: DenseSpec, index: Any) -> DenseSpec:
    """``spec`` with the codes ``index`` (a flat-codes storage or an IVF index) holds."""
    name = type(index).__name__
    fields: dict[str, Any] = {"structure": spec.structure, "hnsw_m": spec.hnsw_m,
                              "nlist": spec.nlist}  # fmt: skip
    if name in ("IndexFlat", "IndexFlatL2", "IndexFlatIP", "IndexIVFFlat"):
        return DenseSpec(**fields)
    if name in ("IndexScalarQuantizer", "IndexIVFScalarQuantizer"):
        codes = _sq_codes(faiss).get(int(index.sq.qtype))
        if codes is not None:
            return DenseSpec(**fields, codes=codes)
    if name in ("IndexPQ", "IndexIVFPQ", "IndexIVFPQFastScan") and (
        name != "IndexPQ" or spec.structure == "hnsw"
    ):
        pq = index.pq
        return DenseSpec(**fields, codes="pq", pq_m=int(pq.M), nbits=int(pq.nbits),
                         fastscan=name == "IndexIVFPQFastScan")  # fmt: skip
    if name in ("IndexRaBitQ", "IndexIVFRaBitQ", "IndexIVFRaBitQFastScan") and (
        (name == "IndexRaBitQ") == (spec.structure == "flat")
    ):
        return DenseSpec(**fields, codes="rabitq", nbits=int(index.rabitq.nb_bits),
                         fastscan=name.endswith("FastScan"))  # fmt: skip
    raise ConfigError(f"unsupported FAISS index {name} in {spec.structure}; expected {GRAMMAR}")


def _sq_codes(faiss: ModuleType) -> dict[int, Codes]:
    sq = faiss.ScalarQuantizer
    return {int(sq.QT_8bit): "sq8", int(sq.QT_4bit): "sq4", int(sq.QT_fp16): "fp16"}


# -- search parameters ------------------------------------------------------------------


def search_params(faiss: ModuleType, spec: DenseSpec, ef_search: int, nprobe: int, sel: Any) -> Any:
    """The ``SearchParameters`` of one search (``None`` when nothing is to be said)."""
    extra = {} if sel is None else {"sel": sel}
    if spec.codes == "rabitq":  # the query is quantized to qb bits (specs.RABITQ_QUERY_BITS)
        if spec.structure == "flat":
            return faiss.RaBitQSearchParameters(qb=RABITQ_QUERY_BITS, **extra)
        return faiss.IVFRaBitQSearchParameters(nprobe=nprobe, qb=RABITQ_QUERY_BITS, **extra)
    if spec.structure == "flat":
        return faiss.SearchParameters(**extra) if extra else None
    if spec.structure == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=ef_search, **extra)
    ivf = faiss.SearchParametersIVF(nprobe=nprobe, **extra)
    if not spec.opq:
        return ivf
    outer = faiss.SearchParametersPreTransform(index_params=ivf)
    outer.referenced_objects = [ivf]  # the wrapper holds a raw pointer to it
    return outer


def exhaustive(faiss: ModuleType, spec: DenseSpec, index: Any, sel: Any) -> tuple[Any, Any]:
    """``(index, params)`` that search every code (the allowed ones): the flat storage of
    an HNSW graph, or every list of an IVF index (``nprobe = nlist``)."""
    if spec.structure == "hnsw":
        storage = index.storage
        down = faiss.downcast_IndexBinary if spec.binary else faiss.downcast_index
        return down(storage), faiss.SearchParameters(sel=sel)
    if spec.structure == "flat":
        return index, search_params(faiss, spec, 1, 1, sel) or faiss.SearchParameters(sel=sel)
    ivf = faiss.extract_index_ivf(index)
    return index, search_params(faiss, spec, 1, int(ivf.nlist), sel)


# -- memory -----------------------------------------------------------------------------


def ram_bytes(faiss: ModuleType, index: Any) -> int:
    """Bytes of the arrays ``index`` keeps in RAM (and writes to its file)."""
    if is_binary(faiss, index):
        down = faiss.downcast_IndexBinary(index)
        if isinstance(down, faiss.IndexBinaryHNSW):
            return _hnsw_bytes(down.hnsw) + ram_bytes(faiss, down.storage)
        return int(down.ntotal) * int(down.code_size)
    down = faiss.downcast_index(index)
    if isinstance(down, faiss.IndexPreTransform):
        chain = [down.chain.at(i) for i in range(down.chain.size())]
        chain = [faiss.downcast_VectorTransform(t) for t in chain]
        matrices = sum(4 * (int(t.A.size()) + int(t.b.size())) for t in chain)
        return matrices + ram_bytes(faiss, down.index)
    if isinstance(down, faiss.IndexHNSW):
        return _hnsw_bytes(down.hnsw) + ram_bytes(faiss, down.storage)
    if isinstance(down, faiss.IndexIVF):
        return ram_bytes(faiss, down.quantizer) + _lists_bytes(faiss, down) + _tables(down)
    return int(down.ntotal) * int(down.code_size) + _tables(down)


def _hnsw_bytes(hnsw: Any) -> int:
    """int32 links, int32 levels, int64 offsets (``size_t``), the level probabilities."""
    return 4 * (int(hnsw.neighbors.size()) + int(hnsw.levels.size())) + 8 * int(hnsw.offsets.size())


def _lists_bytes(faiss: ModuleType, index: Any) -> int:
    """Codes plus an int64 id per vector; fast-scan lists pad to whole blocks of codes."""
    lists = faiss.downcast_InvertedLists(index.invlists)
    ntotal = int(index.ntotal)
    if isinstance(lists, faiss.BlockInvertedLists):
        per, size = int(lists.n_per_block), int(lists.block_size)
        blocks = sum(-(-int(lists.list_size(i)) // per) for i in range(int(lists.nlist)))
        return blocks * size + 8 * ntotal
    return ntotal * (int(index.code_size) + 8)


def _tables(index: Any) -> int:
    """Codebooks and ranges: PQ centroids, SQ trained ranges, IVF-PQ precomputed tables,
    the RaBitQ centre of a flat RaBitQ index."""
    total = 0
    center = getattr(index, "center", None)
    if center is not None:
        total += 4 * int(center.size())
    pq = getattr(index, "pq", None)
    if pq is not None:
        total += 4 * int(pq.centroids.size())
    sq = getattr(index, "sq", None)
    if sq is not None:
        total += 4 * int(sq.trained.size())
    table = getattr(index, "precomputed_table", None)
    if table is not None:
        total += 4 * int(table.size())
    return total
