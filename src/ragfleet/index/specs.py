"""Dense index spec strings: parse ``"hnsw32"``, ``"ivf1024,pq48+refine"``… into a DenseSpec.

A spec is a *structure* (how candidates are found), the *codes* it keeps in RAM, and
optionally ``+refine``: the full-precision vectors kept on disk, memory-mapped, from which
the oversampled candidates of the codes are rescored exactly. Grammar (case-insensitive,
spaces ignored)::

    flat                         exact search over float32 (the test oracle)
    sq8 | sq4 | sqfp16           exhaustive search over scalar-quantized codes
    binary                       exhaustive Hamming search over sign bits (always +refine)
    rabitq[B]                    exhaustive search over RaBitQ codes, B bits per dimension
    hnsw[M]                      HNSW graph over float32, M neighbours per node (default 32)
    hnsw[M],CODES                HNSW over CODES: sq8 | sq4 | sqfp16 | pqM[xNBITS] | binary
    ivf[NLIST]                   IVF with float32 lists
    ivf[NLIST],CODES             IVF over sq8 | sq4 | sqfp16 | pqM[xNBITS] | pqMx4fs (fast scan)
                                 | rabitq[B] | rabitq[B]fs (fast scan)
    ivfpqM[xNBITS] | ivfsq8      shorthands of ivf,pqM[xNBITS] and ivf,sq8
    opq[M],ivf[NLIST],pqM…       IVF-PQ after an OPQ rotation (Ge et al., CVPR 2013)
    SPEC+refine | SPEC+refine16  keep float32 | float16 vectors on disk and rescore

When NLIST is omitted it is chosen from the number of training vectors n as
``clamp(round(4 * sqrt(n)), 16, 65536)`` (the FAISS wiki's rule of thumb, 4·√n to 16·√n).

``binary`` follows the sign-bit quantization of Qdrant's and Vespa's binary quantization and
of Hugging Face's embedding-quantization study (``bit_i = x_i > 0``, Hamming distance, then
rescoring): 1 bit per dimension, 32× smaller than float32. FAISS's ``IndexBinaryIVF``
cannot apply an ``IDSelector`` (filters, tombstones), so binary codes come flat or in an
HNSW graph only.

``rabitq[B]`` is RaBitQ (Gao & Long, SIGMOD 2024; extended to B bits per dimension in Gao
et al., SIGMOD 2025): each vector, centred on its IVF centroid (or the data mean) and
rotated, is stored as B bits per dimension plus two float factors; inner products are
estimated without bias, with an error of O(1/sqrt(d)) that shrinks with B. Queries are
quantized to :data:`RABITQ_QUERY_BITS` bits (a float query costs ~50x more per code).
1-bit codes are ``d/8 + 8`` bytes (56 B at d=384: 27x smaller than float32).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from ragfleet.errors import ConfigError, UnknownSpecError

Structure = Literal["flat", "hnsw", "ivf"]
Codes = Literal["float", "sq8", "sq4", "fp16", "pq", "binary", "rabitq"]
Refine = Literal["fp32", "fp16"]

GRAMMAR = (
    "flat | sq8 | sq4 | sqfp16 | binary | hnsw[M][,CODES] | ivf[NLIST][,CODES] "
    "| rabitq[B] | ivfpqM[xNBITS] | ivfsq8 | opq,ivf[NLIST],pqM, with CODES one of sq8, sq4, "
    "sqfp16, pqM[xNBITS], pqMx4fs (ivf), rabitq[B], rabitq[B]fs (ivf), binary (hnsw); "
    "any compressed spec may end in "
    "+refine or +refine16"
)
DEFAULT_HNSW_M = 32
MIN_AUTO_NLIST = 16
MAX_AUTO_NLIST = 65536
#: FAISS k-means warns below this many training points per centroid.
POINTS_PER_CENTROID = 39
#: Bits of the quantized query RaBitQ codes are scored against (FAISS's ``qb``; 0 would
#: score a float query, ~50x slower per code for no measurable recall after rescoring).
RABITQ_QUERY_BITS = 8
MAX_RABITQ_BITS = 9

_STRUCTURES = ("flat", "hnsw", "ivf")
_CODES = ("float", "sq8", "sq4", "fp16", "pq", "binary", "rabitq")
_SQ_TOKENS: dict[str, Codes] = {"sq8": "sq8", "sq4": "sq4", "sqfp16": "fp16"}
_SQ_FACTORY = {"sq8": "SQ8", "sq4": "SQ4", "fp16": "SQfp16"}
_STRUCTURE_RE = re.compile(r"(?P<s>flat|hnsw|ivf)(?P<n>\d+)?")
_PQ_RE = re.compile(r"pq(?P<m>\d+)(?:x(?P<nbits>\d+))?(?P<fs>fs)?")
_RABITQ_RE = re.compile(r"rabitq(?P<b>\d+)?(?P<fs>fs)?")
_SHORTHAND_RE = re.compile(r"ivf(?P<rest>pq\d+(?:x\d+)?(?:fs)?|sq8|sq4|sqfp16)")
_OPQ_RE = re.compile(r"opq(?P<m>\d+)?")
_REFINE: dict[str, Refine] = {"refine": "fp32", "refine16": "fp16"}


@dataclass(frozen=True, slots=True)
class DenseSpec:
    """A parsed dense index spec.

    Attributes:
        structure: ``flat`` (exhaustive), ``hnsw`` (graph) or ``ivf`` (inverted lists).
        codes: what RAM holds per vector: ``float`` (float32), ``sq8``/``sq4`` (8/4-bit
            scalar quantizer), ``fp16``, ``pq`` (product quantizer), ``binary`` (sign bits)
            or ``rabitq`` (RaBitQ codes).
        hnsw_m: HNSW neighbours per node (``M``), only for ``hnsw``.
        nlist: IVF inverted lists; ``None`` means chosen from n at train time.
        pq_m: product-quantizer sub-quantizers (``m``), only for ``pq``; must divide d.
        nbits: bits per PQ code (``2**nbits`` centroids per codebook); for ``rabitq``, bits
            per dimension (1 to 9).
        fastscan: 4-bit PQ or RaBitQ codes in IVF lists searched with SIMD lookup tables
            (André et al., VLDB 2015).
        opq: an OPQ rotation learnt before IVF-PQ.
        refine: precision of the vectors kept on disk for rescoring, or ``None``.
    """

    structure: Structure = "flat"
    codes: Codes = "float"
    hnsw_m: int | None = None
    nlist: int | None = None
    pq_m: int | None = None
    nbits: int = 8
    fastscan: bool = False
    opq: bool = False
    refine: Refine | None = None

    @classmethod
    def parse(cls, spec: str) -> DenseSpec:
        """Parse a spec string; raise :class:`UnknownSpecError` naming the grammar."""
        text = "".join(spec.split()).lower()
        base, plus, suffix = text.partition("+")
        if plus and suffix not in _REFINE:
            raise _unknown(spec)
        tokens = _expand(base.split(","))
        opq = tokens[0] if tokens and _OPQ_RE.fullmatch(tokens[0]) else None
        tokens = tokens[1:] if opq is not None else tokens
        if not tokens or len(tokens) > 2:
            raise _unknown(spec)
        if len(tokens) == 1 and _STRUCTURE_RE.fullmatch(tokens[0]) is None:
            tokens = ["flat", tokens[0]]  # sq8, binary: exhaustive over codes
        structure = _STRUCTURE_RE.fullmatch(tokens[0])
        if structure is None or (structure.group("s") == "flat" and structure.group("n")):
            raise _unknown(spec)
        fields = _structure_fields(structure) | _codes_fields(tokens[1:], spec)
        if opq is not None:
            fields["opq"] = True
            m = _OPQ_RE.fullmatch(opq)
            opq_m = m.group("m") if m is not None else None
            if opq_m is not None and int(opq_m) != fields.get("pq_m"):
                raise ConfigError(f"{spec!r}: opq{opq_m} must rotate for the pq it precedes")
        refine: Refine | None = _REFINE[suffix] if plus else None
        if fields.get("codes") == "binary" and refine is None:
            refine = "fp32"  # sign bits alone rank too coarsely: always rescored
        return cls(**fields, refine=refine)

    def __post_init__(self) -> None:
        if self.structure not in _STRUCTURES:
            raise UnknownSpecError(f"unknown index structure {self.structure!r}; {_STRUCTURES}")
        if self.codes not in _CODES:
            raise UnknownSpecError(f"unknown index codes {self.codes!r}; one of {_CODES}")
        if (self.structure == "hnsw") != (self.hnsw_m is not None):
            raise ConfigError(f"hnsw_m is required for hnsw and only for hnsw: {self}")
        if (self.codes == "pq") != (self.pq_m is not None):
            raise ConfigError(f"pq_m is required for pq codes and only for them: {self}")
        if self.structure != "ivf" and self.nlist is not None:
            raise ConfigError(f"nlist applies to ivf specs only: {self}")
        if self.codes == "pq" and self.structure == "flat":
            raise ConfigError("pq codes need an ivf or hnsw structure, e.g. ivf,pq48")
        if self.codes == "rabitq" and self.structure == "hnsw":
            raise ConfigError("rabitq codes come flat or in ivf lists, e.g. ivf1024,rabitqfs")
        if self.codes == "binary" and self.structure == "ivf":
            raise ConfigError(
                "binary codes come flat or in hnsw (FAISS's IndexBinaryIVF cannot filter)"
            )
        if self.codes == "binary" and self.refine is None:
            raise ConfigError("binary codes are always rescored: give refine='fp32' or 'fp16'")
        if self.refine is not None and self.codes == "float":
            raise ConfigError(
                f"{self.structure} over float32 is exact already; +refine applies to "
                "compressed codes (sq8, sq4, sqfp16, pq, binary, rabitq)"
            )
        if self.refine not in (None, "fp32", "fp16"):
            raise ConfigError(f"refine must be None, 'fp32' or 'fp16', got {self.refine!r}")
        if self.fastscan and not (self.codes in ("pq", "rabitq") and self.structure == "ivf"):
            raise ConfigError("fast scan (fs) applies to ivf,pqMx4fs and ivf,rabitq[B]fs only")
        if self.fastscan and self.codes == "pq" and self.nbits != 4:
            raise ConfigError(f"fast-scan PQ codes have 4 bits, got x{self.nbits}")
        if self.opq and not (self.codes == "pq" and self.structure == "ivf"):
            raise ConfigError("opq rotates for ivf,pq only, e.g. opq,ivf1024,pq48")
        _check_ranges(self)

    # -- properties ---------------------------------------------------------------------

    @property
    def needs_training(self) -> bool:
        """True when something is learnt from data: IVF centroids, SQ ranges, PQ codebooks."""
        return self.structure == "ivf" or self.codes in ("sq8", "sq4", "pq", "rabitq")

    @property
    def binary(self) -> bool:
        return self.codes == "binary"

    @property
    def exact_storage(self) -> bool:
        """True when the index keeps the float32 vectors themselves (flat, hnsw, ivf)."""
        return self.codes == "float"

    @property
    def family(self) -> str:
        """The spec without its numbers, e.g. ``"ivf,pq+refine"``, ``"binary+refine"``."""
        codes = {"float": "", "fp16": "sqfp16", "pq": "pqfs" if self.fastscan else "pq",
                 "rabitq": "rabitqfs" if self.fastscan else "rabitq"}  # fmt: skip
        token = codes.get(self.codes, self.codes)
        text = ",".join(filter(None, ["" if self.structure == "flat" and token else
                                      self.structure, token]))  # fmt: skip
        if self.opq:
            text = f"opq,{text}"
        return text + ("+refine" if self.refine else "")

    @property
    def canonical(self) -> str:
        """The spec written in full, e.g. ``"ivf1024,pq48+refine"`` (``ivf`` alone when
        nlist is auto)."""
        if self.structure == "hnsw":
            head = f"hnsw{self.hnsw_m}"
        elif self.structure == "ivf":
            head = f"ivf{self.nlist if self.nlist is not None else ''}"
        else:
            head = "flat"
        codes = self._codes_token()
        if self.structure == "flat" and codes:
            text = codes
        else:
            text = ",".join(filter(None, [head, codes]))
        if self.opq:
            text = f"opq,{text}"
        suffix = {None: "", "fp32": "+refine", "fp16": "+refine16"}[self.refine]
        return text + suffix

    def _codes_token(self) -> str:
        if self.codes == "pq":
            bits = "" if self.nbits == 8 else f"x{self.nbits}"
            return f"pq{self.pq_m}{bits}{'fs' if self.fastscan else ''}"
        if self.codes == "rabitq":
            return f"rabitq{'' if self.nbits == 1 else self.nbits}{'fs' if self.fastscan else ''}"
        if self.codes == "fp16":
            return "sqfp16"
        return "" if self.codes == "float" else self.codes

    # -- sizes --------------------------------------------------------------------------

    def resolve_nlist(self, n_train: int) -> int:
        """The number of IVF lists for ``n_train`` training vectors.

        ``nlist`` when given, else ``clamp(round(4 * sqrt(n_train)), 16, 65536)``.
        """
        if self.nlist is not None:
            return self.nlist
        auto = round(4.0 * math.sqrt(max(n_train, 0)))
        return min(max(auto, MIN_AUTO_NLIST), MAX_AUTO_NLIST)

    def min_train_size(self, n_train: int) -> int:
        """The fewest training vectors FAISS accepts: ``nlist`` for IVF, ``2**nbits`` for
        PQ codebooks (the larger of the two), 1 for SQ ranges; 0 if nothing is learnt."""
        need = [0]
        if self.structure == "ivf":
            need.append(self.resolve_nlist(n_train))
        if self.codes == "pq":
            need.append(2**self.nbits)
        if self.codes in ("sq8", "sq4", "rabitq"):
            need.append(1)
        return max(need)

    def recommended_train_size(self, n_train: int) -> int:
        """``39 * min_train_size``: below it FAISS k-means warns of poor centroids."""
        return POINTS_PER_CENTROID * self.min_train_size(n_train)

    def to_factory_string(self, d: int, n_train: int) -> str:
        """The ``faiss.index_factory`` description for vectors of width ``d`` (binary
        codes are built by :mod:`ragfleet.index.binary`, not by the factory).

        Raises:
            ConfigError: ``d < 1``, binary codes (no factory string), or the PQ
                sub-quantizer count does not divide ``d``.
        """
        if d < 1:
            raise ConfigError(f"vector dimension d must be >= 1, got {d}")
        if self.binary:
            raise ConfigError("binary codes have no FAISS factory string; see index/binary.py")
        codes = {"float": "Flat", **_SQ_FACTORY}.get(self.codes) or (
            self._rabitq_factory() if self.codes == "rabitq" else self._pq_factory(d)
        )
        if self.structure == "flat":
            return codes
        if self.structure == "hnsw":
            return f"HNSW{self.hnsw_m}" + ("" if self.codes == "float" else f",{codes}")
        ivf = f"IVF{self.resolve_nlist(n_train)},{codes}"
        return f"OPQ{self.pq_m},{ivf}" if self.opq else ivf

    def _rabitq_factory(self) -> str:
        return f"RaBitQ{'fs' if self.fastscan else ''}{'' if self.nbits == 1 else self.nbits}"

    def _pq_factory(self, d: int) -> str:
        if self.pq_m is None or d % self.pq_m != 0:
            divisors = [m for m in range(1, min(d, 96) + 1) if d % m == 0]
            raise ConfigError(
                f"pq{self.pq_m} needs m to divide d={d}; choose m from {divisors[-6:]}"
            )
        if self.fastscan:
            return f"PQ{self.pq_m}x4fs"
        # "np": no polysemous training (an annealing of code ids for Hamming pre-filtering
        # that we never use; it costs minutes on a few thousand vectors). HNSW's PQ
        # storage takes no such flag.
        return f"PQ{self.pq_m}x{self.nbits}" + ("np" if self.structure == "ivf" else "")

    def with_nlist(self, nlist: int) -> DenseSpec:
        return dataclasses.replace(self, nlist=nlist)


def _unknown(spec: str) -> UnknownSpecError:
    return UnknownSpecError(f"unknown dense index spec {spec!r}; expected one of: {GRAMMAR}")


def _expand(tokens: list[str]) -> list[str]:
    """``ivfpq48`` → ``ivf, pq48``; ``ivfsq8`` → ``ivf, sq8``; ``ivf,flat`` → ``ivf``."""
    out: list[str] = []
    for tok in tokens:
        short = _SHORTHAND_RE.fullmatch(tok)
        out.extend(["ivf", short.group("rest")] if short else [tok])
    if len(out) == 2 and out[1] == "flat" and out[0] != "flat":
        out = out[:1]
    return out


def _structure_fields(m: re.Match[str]) -> dict[str, Any]:
    structure, n = m.group("s"), m.group("n")
    if structure == "flat":
        return {}
    if structure == "hnsw":
        return {"structure": "hnsw", "hnsw_m": DEFAULT_HNSW_M if n is None else int(n)}
    return {"structure": "ivf", "nlist": None if n is None else int(n)}


def _codes_fields(tokens: list[str], spec: str) -> dict[str, Any]:
    if not tokens:
        return {}
    tok = tokens[0]
    if tok in _SQ_TOKENS:
        return {"codes": _SQ_TOKENS[tok]}
    if tok == "binary":
        return {"codes": "binary"}
    rabitq = _RABITQ_RE.fullmatch(tok)
    if rabitq is not None:
        bits = rabitq.group("b")
        return {"codes": "rabitq", "nbits": 1 if bits is None else int(bits),
                "fastscan": rabitq.group("fs") is not None}  # fmt: skip
    pq = _PQ_RE.fullmatch(tok)
    if pq is None:
        raise _unknown(spec)
    nbits = pq.group("nbits")
    return {
        "codes": "pq",
        "pq_m": int(pq.group("m")),
        "nbits": 4 if nbits is None and pq.group("fs") else 8 if nbits is None else int(nbits),
        "fastscan": pq.group("fs") is not None,
    }


def _check_ranges(spec: DenseSpec) -> None:
    if spec.hnsw_m is not None and not 2 <= spec.hnsw_m <= 512:
        raise ConfigError(f"hnsw M must be in [2, 512], got {spec.hnsw_m}")
    if spec.nlist is not None and not 1 <= spec.nlist <= 1 << 24:
        raise ConfigError(f"ivf nlist must be in [1, 2**24], got {spec.nlist}")
    if spec.pq_m is not None and spec.pq_m < 1:
        raise ConfigError(f"pq sub-quantizers m must be >= 1, got {spec.pq_m}")
    if spec.codes == "rabitq" and not 1 <= spec.nbits <= MAX_RABITQ_BITS:
        raise ConfigError(f"rabitq bits per dimension must be in [1, {MAX_RABITQ_BITS}], "
                          f"got {spec.nbits}")  # fmt: skip
    if not 1 <= spec.nbits <= 16:
        raise ConfigError(f"pq nbits must be in [1, 16], got {spec.nbits}")
