"""The baseline of every dense benchmark: what a FAISS user writes for the same search.

Each function searches the *same* FAISS index object a :class:`DenseIndex` holds, with
the same parameters, the shortest way FAISS allows:

* codes without rescoring: ``index.search(x, k, params=SearchParameters…)``;
* ``+refine`` over float codes (SQ, PQ, OPQ): ``faiss.IndexRefineFlat(index, xb)`` searched
  with ``IndexRefineSearchParameters(k_factor=oversample)`` — FAISS's own two-stage
  search, its float32 vectors in RAM;
* binary codes: ``IndexBinary.search`` over the packed sign bits, then the candidates
  rescored by ``faiss.fvec_inner_products_by_idx`` (``fvec_L2sqr_by_idx``) against the
  float32 vectors in RAM and sorted — FAISS has no refine index over binary codes, so this
  is the recipe of the embedding-quantization study in FAISS calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ragfleet._optional import require
from ragfleet.index import binary
from ragfleet.index.dense import DenseIndex
from ragfleet.index.specs import RABITQ_QUERY_BITS

Search = Callable[[npt.NDArray[np.float32]], object]


def raw_params(index: DenseIndex, params: Mapping[str, float], k: int) -> Any:
    """The ``SearchParameters`` a FAISS user would build once for the same search."""
    faiss = require("faiss", "index")
    spec = index.dense_spec
    if spec.codes == "rabitq":  # the same query bits as the shard (specs.RABITQ_QUERY_BITS)
        qb = RABITQ_QUERY_BITS
        if spec.structure == "ivf":
            return faiss.IVFRaBitQSearchParameters(nprobe=int(params.get("nprobe", 16)), qb=qb)
        return faiss.RaBitQSearchParameters(qb=qb)
    if spec.structure == "hnsw":
        ef = max(int(params.get("ef_search", 128)), k)
        return faiss.SearchParametersHNSW(efSearch=ef)
    if spec.structure == "ivf":
        ivf = faiss.SearchParametersIVF(nprobe=int(params.get("nprobe", 16)))
        return faiss.SearchParametersPreTransform(index_params=ivf) if spec.opq else ivf
    return None


def raw_search(
    index: DenseIndex, params: Mapping[str, float], k: int, base: npt.NDArray[np.float32]
) -> Search:
    """A function ``x -> results`` doing ``index``'s search of ``k`` hits with ``params``
    in raw FAISS (``base``: the float32 vectors, for the rescoring baselines)."""
    faiss = require("faiss", "index")
    target = index.faiss_index
    p = raw_params(index, params, k)
    keep = [p, getattr(p, "index_params", None)]  # SWIG parameters hold raw pointers
    if index.vectors is None or params.get("rescore") is False:
        if index.dense_spec.binary:
            return lambda x: (keep, target.search(binary.binarize(x), k, params=p))
        return lambda x: (keep, target.search(x, k, params=p))
    oversample = float(params.get("oversample", index.default_oversample))
    k1 = max(k, math.ceil(k * oversample - 1e-9))
    if index.dense_spec.binary:
        return _binary_refine(faiss, target, p, base, k, k1, index.metric)
    refine = faiss.IndexRefineFlat(target, faiss.swig_ptr(base))
    rp = faiss.IndexRefineSearchParameters(k_factor=k1 / k, base_index_params=p)
    keep += [refine, rp, target]
    return lambda x: (keep, refine.search(x, k, params=rp))


def _binary_refine(
    faiss: Any, target: Any, p: Any, base: npt.NDArray[np.float32], k: int, k1: int, metric: str
) -> Search:
    by_idx = faiss.fvec_inner_products_by_idx if metric == "ip" else faiss.fvec_L2sqr_by_idx
    swig_ptr, d = faiss.swig_ptr, base.shape[1]

    def run(x: npt.NDArray[np.float32]) -> object:
        _, cand = target.search(np.packbits(x > 0, axis=1, bitorder="little"), k1, params=p)
        dist = np.empty(cand.shape, dtype=np.float32)
        by_idx(swig_ptr(dist), swig_ptr(x), swig_ptr(base), swig_ptr(cand), d, *cand.shape)
        order = np.argsort(-dist if metric == "ip" else dist, axis=1)[:, :k]
        return np.take_along_axis(cand, order, axis=1)

    return run
