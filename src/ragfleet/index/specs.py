"""Dense index spec strings: parse ``"hnsw32"``, ``"ivf1024,pq48"``… into a :class:`DenseSpec`.

Grammar (case-insensitive, spaces ignored)::

    flat                      exact search (the test oracle)
    hnsw[M]                   HNSW graph, M neighbours per node (default 32)
    ivf[NLIST]                IVF with flat lists
    ivf[NLIST],pqM[xNBITS]    IVF + product quantizer, M sub-quantizers of NBITS bits (default 8)
    ivfpqM[xNBITS]            same, NLIST chosen at train time
    ivfsq8 | ivf[NLIST],sq8   IVF + 8-bit scalar quantizer

When NLIST is omitted it is chosen from the number of training vectors n as
``clamp(round(4 * sqrt(n)), 16, 65536)`` (the FAISS wiki's rule of thumb, 4·√n to 16·√n).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from ragfleet.errors import ConfigError, UnknownSpecError

SpecKind = Literal["flat", "hnsw", "ivf", "ivfpq", "ivfsq8"]

GRAMMAR = (
    "flat | hnsw[M] | ivf[NLIST] | ivf[NLIST],pqM[xNBITS] | ivfpqM[xNBITS] "
    "| ivfsq8 | ivf[NLIST],sq8"
)
DEFAULT_HNSW_M = 32
MIN_AUTO_NLIST = 16
MAX_AUTO_NLIST = 65536
#: FAISS k-means warns below this many training points per centroid.
POINTS_PER_CENTROID = 39

_KINDS = ("flat", "hnsw", "ivf", "ivfpq", "ivfsq8")
_PATTERNS: tuple[tuple[SpecKind, re.Pattern[str]], ...] = (
    ("flat", re.compile(r"flat")),
    ("hnsw", re.compile(r"hnsw(?P<M>\d+)?")),
    ("ivf", re.compile(r"ivf(?P<nlist>\d+)?(?:,flat)?")),
    ("ivfpq", re.compile(r"ivf(?P<nlist>\d+)?,pq(?P<m>\d+)(?:x(?P<nbits>\d+))?")),
    ("ivfpq", re.compile(r"ivfpq(?P<m>\d+)(?:x(?P<nbits>\d+))?")),
    ("ivfsq8", re.compile(r"ivf(?P<nlist>\d+)?,sq8")),
    ("ivfsq8", re.compile(r"ivfsq8")),
)


@dataclass(frozen=True, slots=True)
class DenseSpec:
    """A parsed dense index spec.

    Attributes:
        kind: the index family.
        hnsw_m: HNSW neighbours per node (``M``), only for ``hnsw``.
        nlist: IVF inverted lists; ``None`` means chosen from n at train time.
        pq_m: product-quantizer sub-quantizers (``m``), only for ``ivfpq``; must divide d.
        nbits: bits per PQ code (``2**nbits`` centroids per codebook).
    """

    kind: SpecKind
    hnsw_m: int | None = None
    nlist: int | None = None
    pq_m: int | None = None
    nbits: int = 8

    @classmethod
    def parse(cls, spec: str) -> DenseSpec:
        """Parse a spec string; raise :class:`UnknownSpecError` naming the grammar."""
        text = "".join(spec.split()).lower()
        for kind, pattern in _PATTERNS:
            match = pattern.fullmatch(text)
            if match is not None:
                return cls._from_match(kind, match.groupdict())
        raise UnknownSpecError(f"unknown dense index spec {spec!r}; expected one of: {GRAMMAR}")

    @classmethod
    def _from_match(cls, kind: SpecKind, groups: dict[str, str | None]) -> DenseSpec:
        def num(name: str) -> int | None:
            value = groups.get(name)
            return None if value is None else int(value)

        hnsw_m, nbits = num("M"), num("nbits")
        return cls(
            kind=kind,
            hnsw_m=(DEFAULT_HNSW_M if hnsw_m is None else hnsw_m) if kind == "hnsw" else None,
            nlist=num("nlist"),
            pq_m=num("m"),
            nbits=8 if nbits is None else nbits,
        )

    @classmethod
    def of_faiss_index(cls, faiss: ModuleType, index: Any) -> DenseSpec:
        """The spec that built ``index`` (e.g. one read from disk).

        Raises:
            ConfigError: an index this grammar cannot express (another metric or structure).
        """
        if index.metric_type not in (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2):
            raise ConfigError(f"FAISS metric {index.metric_type} is not supported: ip or l2")
        if isinstance(index, faiss.IndexHNSWFlat):
            return cls("hnsw", hnsw_m=int(index.hnsw.nb_neighbors(1)))
        if isinstance(index, faiss.IndexIVFPQ):
            return cls("ivfpq", nlist=index.nlist, pq_m=index.pq.M, nbits=index.pq.nbits)
        if isinstance(index, faiss.IndexIVFScalarQuantizer) and (
            index.sq.qtype == faiss.ScalarQuantizer.QT_8bit
        ):
            return cls("ivfsq8", nlist=index.nlist)
        if isinstance(index, faiss.IndexIVFFlat):
            return cls("ivf", nlist=index.nlist)
        if type(index) in (faiss.IndexFlat, faiss.IndexFlatL2, faiss.IndexFlatIP):
            return cls("flat")
        raise ConfigError(f"unsupported FAISS index {type(index).__name__}; expected {GRAMMAR}")

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise UnknownSpecError(f"unknown dense index kind {self.kind!r}; one of {_KINDS}")
        if (self.kind == "hnsw") != (self.hnsw_m is not None):
            raise ConfigError(f"hnsw_m is required for hnsw and only for hnsw: {self}")
        if (self.kind == "ivfpq") != (self.pq_m is not None):
            raise ConfigError(f"pq_m is required for ivfpq and only for ivfpq: {self}")
        if self.kind in ("flat", "hnsw") and self.nlist is not None:
            raise ConfigError(f"nlist applies to ivf specs only: {self}")
        if self.hnsw_m is not None and not 2 <= self.hnsw_m <= 512:
            raise ConfigError(f"hnsw M must be in [2, 512], got {self.hnsw_m}")
        if self.nlist is not None and not 1 <= self.nlist <= 1 << 24:
            raise ConfigError(f"ivf nlist must be in [1, 2**24], got {self.nlist}")
        if self.pq_m is not None and self.pq_m < 1:
            raise ConfigError(f"pq sub-quantizers m must be >= 1, got {self.pq_m}")
        if not 1 <= self.nbits <= 16:
            raise ConfigError(f"pq nbits must be in [1, 16], got {self.nbits}")

    @property
    def needs_training(self) -> bool:
        """True for the IVF family (coarse quantizer and PQ/SQ codebooks are learnt)."""
        return self.kind not in ("flat", "hnsw")

    @property
    def canonical(self) -> str:
        """The spec written in full, e.g. ``"ivf1024,pq48"`` (``ivf`` alone when nlist is auto)."""
        ivf = f"ivf{self.nlist if self.nlist is not None else ''}"
        if self.kind == "hnsw":
            return f"hnsw{self.hnsw_m}"
        if self.kind == "ivfpq":
            bits = "" if self.nbits == 8 else f"x{self.nbits}"
            return f"{ivf},pq{self.pq_m}{bits}"
        if self.kind == "ivfsq8":
            return f"{ivf},sq8"
        return ivf if self.kind == "ivf" else "flat"

    def resolve_nlist(self, n_train: int) -> int:
        """The number of IVF lists for ``n_train`` training vectors.

        ``nlist`` when given, else ``clamp(round(4 * sqrt(n_train)), 16, 65536)``.
        """
        if self.nlist is not None:
            return self.nlist
        auto = round(4.0 * math.sqrt(max(n_train, 0)))
        return min(max(auto, MIN_AUTO_NLIST), MAX_AUTO_NLIST)

    def min_train_size(self, n_train: int) -> int:
        """The fewest training vectors FAISS accepts: ``max(nlist, 2**nbits for PQ)``; 0 if
        no training is needed. (k-means needs at least one point per centroid.)"""
        if not self.needs_training:
            return 0
        nlist = self.resolve_nlist(n_train)
        return max(nlist, 2**self.nbits) if self.kind == "ivfpq" else nlist

    def recommended_train_size(self, n_train: int) -> int:
        """``39 * max(nlist, 2**nbits for PQ)``: below it FAISS k-means warns of poor centroids."""
        return POINTS_PER_CENTROID * self.min_train_size(n_train)

    def to_factory_string(self, d: int, n_train: int) -> str:
        """The ``faiss.index_factory`` description for vectors of width ``d``.

        Raises:
            ConfigError: ``d < 1``, or the PQ sub-quantizer count does not divide ``d``.
        """
        if d < 1:
            raise ConfigError(f"vector dimension d must be >= 1, got {d}")
        if self.kind == "flat":
            return "Flat"
        if self.kind == "hnsw":
            return f"HNSW{self.hnsw_m}"
        nlist = self.resolve_nlist(n_train)
        if self.kind == "ivf":
            return f"IVF{nlist},Flat"
        if self.kind == "ivfsq8":
            return f"IVF{nlist},SQ8"
        if self.pq_m is None or d % self.pq_m != 0:
            divisors = [m for m in range(1, min(d, 96) + 1) if d % m == 0]
            raise ConfigError(
                f"pq{self.pq_m} needs m to divide d={d}; choose m from {divisors[-6:]}"
            )
        # "np": no polysemous training (an annealing of code ids for Hamming pre-filtering
        # that we never use; it costs minutes on a few thousand vectors).
        return f"IVF{nlist},PQ{self.pq_m}x{self.nbits}np"
