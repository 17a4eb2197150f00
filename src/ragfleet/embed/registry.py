"""Encoders by name, loaded once per process.

``load_encoder("minilm-int8")`` builds an encoder the first time and returns the same object
for the same name and options afterwards, so tests, the CLI and bulk workers share one
model; an alias (``onnx``, ``torch``) shares its canonical name's cache entry. Every
factory accepts ``threads`` and ``batch_size`` keyword options.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Hashable
from typing import Any

from ragfleet.config import EncoderConfig
from ragfleet.embed.base import Encoder
from ragfleet.errors import ConfigError, UnknownSpecError


def _build(cls: Callable[..., Encoder], options: dict[str, Any]) -> Encoder:
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as e:
        raise ConfigError(
            f"bad options for {cls.__name__}: {options!r} ({e}); see its docstring"
        ) from e
    return cls(**options)


def _onnx(**options: Any) -> Encoder:
    from ragfleet.embed.onnx import OnnxMiniLMEncoder

    return _build(OnnxMiniLMEncoder, options)


def _torch(**options: Any) -> Encoder:
    from ragfleet.embed.st import SentenceTransformerEncoder

    return _build(SentenceTransformerEncoder, options)


#: Registry name → factory. Aliases name the runtime (``onnx``, ``torch``).
ENCODERS: dict[str, Callable[..., Encoder]] = {
    "minilm-int8": _onnx,
    "onnx": _onnx,
    "minilm": _torch,
    "torch": _torch,
}
_CANONICAL = {"onnx": "minilm-int8", "torch": "minilm"}

_LOADED: dict[tuple[str, tuple[tuple[str, Hashable], ...]], Encoder] = {}
_LOCK = threading.Lock()


def encoder_names() -> list[str]:
    """The registered names, sorted."""
    return sorted(ENCODERS)


def load_encoder(name: str, **options: Any) -> Encoder:
    """The encoder registered as ``name``, built once per ``(name, options)`` per process.

    Raises:
        UnknownSpecError: ``name`` is not registered (the message lists the choices).
        ConfigError: an option is not hashable or the factory does not accept it.
    """
    factory = ENCODERS.get(name)
    if factory is None:
        raise UnknownSpecError(f"unknown encoder {name!r}; choose one of {encoder_names()}")
    try:
        key = (_CANONICAL.get(name, name), tuple(sorted(options.items())))
        hash(key)
    except TypeError as e:
        raise ConfigError(f"encoder options must be hashable values, got {options!r}") from e
    with _LOCK:
        encoder = _LOADED.get(key)
        if encoder is None:
            encoder = _LOADED[key] = factory(**options)
        return encoder


def encoder_for(config: EncoderConfig) -> Encoder:
    """The encoder a collection's :class:`~ragfleet.config.EncoderConfig` names: the
    registry encoder, truncated to ``config.truncate_dim`` when that is set."""
    from ragfleet.embed.truncate import truncated

    return truncated(load_encoder(config.name), config.truncate_dim)
