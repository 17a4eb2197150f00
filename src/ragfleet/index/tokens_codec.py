"""Token-vector codecs: how a chunk's unit-norm token vectors are packed into bytes.

Late interaction (ColBERT, Khattab & Zaharia, SIGIR 2020) stores one vector per token,
so storage is ``bytes per token × tokens``; a codec trades bytes for MaxSim quality.
Every codec packs ``[n, d]`` float32 rows (each L2-normalised first) into ``[n, B]``
uint8 rows, ``B`` = :attr:`TokenCodec.bytes_per_token`, and decodes them back:

* ``fp32`` — raw float32, ``B = 4d`` (the uncompressed reference);
* ``fp16`` — IEEE half, ``B = 2d``;
* ``int8`` — symmetric per-token absmax quantisation (as in LLM.int8's vector-wise
  scaling, Dettmers et al. 2022): ``s = max_j |x_j| / 127``, ``c_j = round(x_j / s)`` in
  int8, the scale as float16: ``B = d + 2``; decoded ``x̂_j = s · c_j``;
* ``int4`` — the same with 4-bit codes in ``[-7, 7]``, two per byte: ``B = d/2 + 2``.

The benchmark ``benchmarks/late_codecs.py`` measures each (and a ColBERTv2-style residual
codec, :mod:`ragfleet.index.tokens_residual`) as nDCG@10 against bytes per token; ``int8``
keeps the uncompressed nDCG and is the default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ragfleet.errors import ConfigError, InputError

Codes = npt.NDArray[np.uint8]
Matrix = npt.NDArray[np.float32]

CODECS = ("fp32", "fp16", "int8", "int4")
_LEVELS = {"int8": 127.0, "int4": 7.0}


def unit_rows(x: npt.ArrayLike) -> Matrix:
    """Rows divided by ``max(‖row‖₂, 1e-12)``, float32 C-contiguous."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise InputError(f"token vectors must be 2-d [n_tokens, d], got shape {a.shape}")
    norms = np.maximum(np.linalg.norm(a, axis=1, keepdims=True), np.float32(1e-12))
    return np.ascontiguousarray(a / norms, dtype=np.float32)


@dataclass(frozen=True)
class TokenCodec:
    """One codec (see the module docstring) for ``d``-dimensional token vectors."""

    name: str
    d: int

    def __post_init__(self) -> None:
        if self.name not in CODECS:
            raise ConfigError(f"unknown token codec {self.name!r}; choose one of {CODECS}")
        if self.d < 2 or (self.name == "int4" and self.d % 2):
            raise ConfigError(f"token codec {self.name} needs an even d >= 2, got {self.d}")

    @property
    def bytes_per_token(self) -> int:
        """``B``: the bytes one packed token takes."""
        return {"fp32": 4 * self.d, "fp16": 2 * self.d, "int8": self.d + 2}.get(
            self.name, self.d // 2 + 2
        )

    def encode(self, tokens: npt.ArrayLike) -> Codes:
        """Pack ``[n, d]`` token vectors (normalised here) into ``[n, B]`` uint8."""
        x = unit_rows(tokens)
        if x.shape[1] != self.d:
            raise InputError(f"token vectors have d={x.shape[1]}, the codec expects {self.d}")
        if self.name == "fp32":
            return _bytes(x.astype("<f4"))
        if self.name == "fp16":
            return _bytes(x.astype("<f2"))
        levels = _LEVELS[self.name]
        scale = np.maximum(np.abs(x).max(axis=1, keepdims=True), 1e-12) / levels
        scale16 = scale.astype("<f2")
        q = np.clip(np.rint(x / scale16.astype(np.float32)), -levels, levels).astype(np.int8)
        if self.name == "int4":
            nib = (q + 8).astype(np.uint8)
            q = (nib[:, 0::2] | (nib[:, 1::2] << 4)).view(np.int8)
        return np.ascontiguousarray(np.hstack([_bytes(q), _bytes(scale16)]))

    def decode(self, codes: npt.ArrayLike) -> Matrix:
        """Unpack ``[n, B]`` uint8 rows into ``[n, d]`` float32."""
        values, scale = self.split(codes)
        return values if scale is None else values * scale[:, None]

    def split(self, codes: npt.ArrayLike) -> tuple[Matrix, Matrix | None]:
        """``decode`` in two factors: the codes as float32 ``[n, d]`` and the per-token
        scale ``[n]`` (``None`` for the float codecs), so that a product ``q · x̂`` can be
        scaled once per token after the matrix product instead of once per value."""
        c = np.ascontiguousarray(codes, dtype=np.uint8)
        if c.ndim != 2 or c.shape[1] != self.bytes_per_token:
            raise InputError(
                f"packed tokens have shape {c.shape}, codec {self.name} expects "
                f"[n, {self.bytes_per_token}]"
            )
        if self.name == "fp32":
            return np.ascontiguousarray(c.view("<f4"), dtype=np.float32), None
        if self.name == "fp16":
            return c.view("<f2").astype(np.float32), None
        scale = c[:, -2:].view("<f2").astype(np.float32)[:, 0]
        body = c[:, :-2]
        if self.name == "int4":
            vals = np.empty((len(c), self.d), dtype=np.float32)
            vals[:, 0::2] = (body & 0x0F).astype(np.float32) - 8.0
            vals[:, 1::2] = (body >> 4).astype(np.float32) - 8.0
        else:
            vals = body.view(np.int8).astype(np.float32)
        return vals, scale


def _bytes(a: npt.NDArray[np.generic]) -> Codes:
    """A 2-d array's rows reinterpreted as bytes."""
    a = np.ascontiguousarray(a)
    return a.view(np.uint8).reshape(a.shape[0], -1)
