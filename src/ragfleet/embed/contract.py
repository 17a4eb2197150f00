"""The embedding contract: what a collection's vectors mean, pinned so a wrong model is refused.

A collection's vectors are only comparable with query vectors from the same model, the
same weights, the same pooling and prefixes, and (for its documents) the same chunker.
:class:`EmbeddingContract` records those fields plus a few *probe* texts with their
vectors. :meth:`EmbeddingContract.verify` checks an encoder against it twice: its model
fields must hash to the same fingerprint, and every probe must re-encode to (nearly) the
same vector, which catches a changed runtime or a silently different model file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ragfleet.errors import ConfigError, EmbeddingContractError

if TYPE_CHECKING:
    from ragfleet.embed.base import Encoder

#: Short, diverse texts (science, code, numbers, a question, non-English) used as probes.
PROBE_TEXTS: tuple[str, ...] = (
    "Aspirin inhibits cyclooxygenase and reduces the risk of myocardial infarction.",
    "How do I reverse a linked list in Python?",
    "The 2008 financial crisis began with US subprime mortgage defaults.",
    "Le chat dort sur le canapé près de la fenêtre.",
    "def add(a, b): return a + b  # 42",
)

#: The fields that describe the model; ``verify`` compares exactly these.
MODEL_FIELDS: tuple[str, ...] = (
    "model_id",
    "weights_sha256",
    "dim",
    "max_seq_length",
    "pooling",
    "normalize",
    "query_prefix",
    "document_prefix",
    "truncate_dim",
)
#: Fields added after collections were first built: left out of the fingerprint while
#: they hold their default, so the fingerprints of older collections do not change.
_LATER_FIELDS: dict[str, object] = {"truncate_dim": 0, "precision": "fp32", "token_vectors": ""}
_PRECISIONS = ("fp32", "fp16")
_POOLINGS = ("mean", "cls", "max")
#: The cosine a probe must re-encode to. Measured (``benchmarks/contract_cpus.py``): the
#: int8 model's vectors on AVX512-VNNI kernels against its AVX2 kernels (qemu-emulated
#: Haswell), and the torch model's with AVX2-capped against uncapped kernels, agree to
#: ``1 - 2e-13`` or better over 105 texts; the int8 and fp32 builds of the same network —
#: the nearest *other* model — reach at most 0.99952 on the probes. ``1 - 1e-4`` sits nine
#: orders of magnitude above the CPU drift and refuses the other build by its probes alone.
DEFAULT_MIN_COSINE = 0.9999
_DECIMALS = 6

Probe = tuple[str, tuple[float, ...]]


@dataclass(frozen=True)
class EmbeddingContract:
    """Everything that makes two sets of vectors comparable.

    Model fields (:data:`MODEL_FIELDS`): ``model_id``, ``weights_sha256`` (of the weights
    file), ``dim``, ``max_seq_length`` (tokens, longer inputs are truncated), ``pooling``,
    ``normalize`` (unit L2 norm), ``query_prefix`` and ``document_prefix`` (prepended to
    each text of that kind), ``truncate_dim`` (vectors keep their first ``truncate_dim``
    coordinates, renormalised; 0: all ``dim``). ``chunker`` is the chunker spec of the
    collection (``""`` on an encoder's own contract), ``precision`` the precision at which
    the collection keeps its vectors (``fp32``, or ``fp16`` for ``+refine16`` specs) and
    ``token_vectors`` the token codec of a collection that stores token vectors for late
    interaction (``""``: none); all three belong to the collection, not the model. Fields
    added later are left out of the fingerprint while they hold their default, so older
    contracts keep theirs. ``probes`` are ``(text, vector)`` pairs recorded at build time.
    """

    model_id: str
    weights_sha256: str
    dim: int
    max_seq_length: int
    pooling: str = "mean"
    normalize: bool = True
    query_prefix: str = ""
    document_prefix: str = ""
    chunker: str = ""
    probes: tuple[Probe, ...] = ()
    truncate_dim: int = 0
    precision: str = "fp32"
    token_vectors: str = ""

    def __post_init__(self) -> None:
        if not self.model_id:
            raise ConfigError("embedding contract needs a model_id")
        if self.dim < 1 or self.max_seq_length < 1:
            raise ConfigError(
                f"contract dim and max_seq_length must be >= 1, got {self.dim}, "
                f"{self.max_seq_length}"
            )
        if self.pooling not in _POOLINGS:
            raise ConfigError(f"contract pooling must be one of {_POOLINGS}, got {self.pooling!r}")
        if not 0 <= self.truncate_dim < self.dim:
            raise ConfigError(
                f"contract truncate_dim must be in [0, dim={self.dim}), got {self.truncate_dim}"
            )
        if self.precision not in _PRECISIONS:
            raise ConfigError(
                f"contract precision must be one of {_PRECISIONS}, got {self.precision!r}"
            )
        for text, vec in self.probes:
            if len(vec) != self.vector_dim:
                raise ConfigError(
                    f"probe {text!r} has {len(vec)} values but the contract's vectors have "
                    f"{self.vector_dim}"
                )

    @property
    def vector_dim(self) -> int:
        """The width of the collection's vectors: ``truncate_dim`` if set, else ``dim``."""
        return self.truncate_dim or self.dim

    def fingerprint(self) -> str:
        """First 16 hex chars of sha256 over the canonical JSON of every field but probes."""
        fields = {
            k: v
            for k, v in self._fields().items()
            if k != "probes" and not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])
        }
        canon = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; probe vectors as lists of floats rounded to 6 decimals.

        The ``fingerprint`` is included for people reading ``collection.json`` and is
        checked again by :meth:`from_dict`.
        """
        d = {k: v for k, v in self._fields().items() if k != "probes"}
        d["probes"] = [[text, [round(x, _DECIMALS) for x in vec]] for text, vec in self.probes]
        d["fingerprint"] = self.fingerprint()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EmbeddingContract:
        """Inverse of :meth:`to_dict`.

        Raises:
            EmbeddingContractError: a field is missing or unknown, a probe is malformed,
                or the stored ``fingerprint`` does not match the fields (hand-edited).
        """
        try:
            body = dict(d)
            stored = body.pop("fingerprint", None)
            probes = tuple(
                (str(text), tuple(float(x) for x in vec)) for text, vec in body.pop("probes", ())
            )
            contract = cls(**body, probes=probes)
        except ConfigError:
            raise
        except (TypeError, ValueError) as e:
            raise EmbeddingContractError(
                f"invalid embedding contract {d!r:.200}: {e}; expected the fields "
                f"{[f.name for f in dataclasses.fields(cls)]}"
            ) from e
        if stored is not None and stored != contract.fingerprint():
            raise EmbeddingContractError(
                f"embedding contract fingerprint {stored} does not match its fields "
                f"({contract.fingerprint()}); the contract was edited by hand, rebuild it"
            )
        return contract

    def with_probes(
        self, encoder: Encoder, texts: Sequence[str] = PROBE_TEXTS
    ) -> EmbeddingContract:
        """A copy with ``texts`` encoded by ``encoder`` as probes (rounded to 6 decimals).

        Raises:
            EmbeddingContractError: ``encoder``'s model fields differ from this contract.
        """
        self._check_fingerprint(encoder)
        probes = tuple(
            (text, tuple(round(float(x), _DECIMALS) for x in _encode_probe(encoder, text)))
            for text in texts
        )
        return dataclasses.replace(self, probes=probes)

    def verify(self, encoder: Encoder, min_cosine: float = DEFAULT_MIN_COSINE) -> None:
        """Check that ``encoder`` reproduces this contract.

        Two checks: (1) the fingerprint of the encoder's contract with this contract's
        ``chunker`` and ``precision`` substituted, i.e. the :data:`MODEL_FIELDS` only
        (truncation included: an untruncated encoder is refused by a truncated collection),
        equals this one's;
        (2) each probe re-encodes with cosine ``a·b / (‖a‖‖b‖) >= min_cosine``.

        Raises:
            EmbeddingContractError: names both fingerprints and the differing fields, or
                the probe text and its cosine.
        """
        if not -1.0 <= min_cosine <= 1.0:
            raise ConfigError(f"min_cosine must be in [-1, 1], got {min_cosine}")
        self._check_fingerprint(encoder)
        for text, vec in self.probes:
            cos = _cosine(_encode_probe(encoder, text), np.asarray(vec, dtype=np.float64))
            if cos < min_cosine:
                raise EmbeddingContractError(
                    f"probe {text!r} re-encodes with cosine {cos:.6f} < {min_cosine} under "
                    f"encoder {encoder.name!r} (fingerprint {self.fingerprint()}); the model "
                    "file or its runtime changed: use the original one or rebuild the collection"
                )

    def _fields(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if not out["token_vectors"]:
            del out["token_vectors"]
        return out

    def _check_fingerprint(self, encoder: Encoder) -> None:
        theirs = dataclasses.replace(
            encoder.contract,
            chunker=self.chunker,
            precision=self.precision,
            probes=(),
            token_vectors=self.token_vectors,
        )
        if theirs.fingerprint() == self.fingerprint():
            return
        diffs = [
            f"{k}: {getattr(self, k)!r} != {getattr(theirs, k)!r}"
            for k in MODEL_FIELDS
            if getattr(self, k) != getattr(theirs, k)
        ]
        raise EmbeddingContractError(
            f"encoder {encoder.name!r} has contract fingerprint {theirs.fingerprint()} but "
            f"the collection pins {self.fingerprint()}; differing fields (pinned != encoder): "
            f"{'; '.join(diffs)}. Load the encoder the collection was built with "
            f"({self.model_id}) or rebuild the collection"
        )


def _encode_probe(encoder: Encoder, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    """One probe, alone in its batch, as a document (batch-independent under int8)."""
    return np.asarray(encoder.encode([text], kind="document")[0], dtype=np.float32)


def _cosine(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    a = a.astype(np.float64)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denom if denom > 0.0 else 0.0
