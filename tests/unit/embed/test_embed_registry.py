"""The encoder registry: names, aliases, one load per process, clear errors."""

from __future__ import annotations

import pytest

from ragfleet.embed.base import Encoder
from ragfleet.embed.registry import ENCODERS, encoder_names, load_encoder
from ragfleet.errors import ConfigError, UnknownSpecError


def test_names_are_sorted_and_complete() -> None:
    assert encoder_names() == sorted(ENCODERS)
    assert {"minilm", "minilm-int8", "onnx", "torch"} <= set(encoder_names())


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(UnknownSpecError) as info:
        load_encoder("bert-huge")
    assert "'bert-huge'" in str(info.value)
    for name in encoder_names():
        assert name in str(info.value)


@pytest.mark.model
def test_loaded_once_per_name_and_options_alias_shared() -> None:
    enc = load_encoder("minilm-int8")
    assert isinstance(enc, Encoder) and enc.name == "minilm-int8"
    assert load_encoder("minilm-int8") is enc
    assert load_encoder("onnx") is enc
    other = load_encoder("minilm-int8", threads=1)
    assert other is not enc and load_encoder("minilm-int8", threads=1) is other
    assert other.contract == enc.contract


@pytest.mark.model
def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="colour"):
        load_encoder("minilm-int8", colour="blue")
    with pytest.raises(ConfigError, match="hashable"):
        load_encoder("minilm-int8", threads=[1])
