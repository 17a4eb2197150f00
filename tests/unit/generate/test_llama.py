"""The local GGUF generator (gemma-3 270M, a base model) with llama-cpp-python."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragfleet.errors import ConfigError
from ragfleet.generate.llama import LlamaConfig, LlamaGenerator, bundled_model_path
from ragfleet.generate.prompt import PromptConfig, build_prompt
from ragfleet.types import Hit

HITS = [
    Hit(
        1,
        "sb50",
        "sb50#0",
        1.0,
        "Super Bowl 50 was played at Levi's Stadium in Santa Clara.",
        0,
        title="Super Bowl 50",
    ),
    Hit(2, "bread", "bread#0", 0.5, "Sourdough bread is leavened by a starter.", 0),
]


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> LlamaGenerator:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (extra 'llama') is not installed")
    path = bundled_model_path(tmp_path_factory.mktemp("gguf"))
    return LlamaGenerator(LlamaConfig(model_path=str(path), max_tokens=24))


def test_answers_and_cites_only_passed_passages(gen: LlamaGenerator) -> None:
    a = gen.generate("Where was Super Bowl 50 played?", HITS)
    assert a.text and a.model.startswith("llama:") and a.passages == tuple(HITS)
    for c in a.citations:
        assert 1 <= c.n <= 2 and c.chunk_id == HITS[c.n - 1].chunk_id


def test_own_tokenizer_keeps_the_prompt_in_budget(gen: LlamaGenerator) -> None:
    long = [Hit(i + 1, f"d{i}", f"d{i}#0", 0.0, "word " * 300, 0) for i in range(5)]
    p = build_prompt("q?", long, gen.counter, PromptConfig(budget_tokens=400))
    assert gen.counter.count([p.text])[0] == p.n_tokens <= 400 and len(p.passages) >= 1


def test_deadline_truncates(gen: LlamaGenerator) -> None:
    """Decoding stops at the first token after the deadline (the prompt evaluation before
    it is one blocking call: the pipeline budgets it from the generator's observed p95)."""
    slow = LlamaGenerator(LlamaConfig(model_path=gen.config.model_path, max_tokens=300, stop=()))
    a = slow.generate("Tell a long story about Super Bowl 50.", HITS, timeout_ms=1)
    assert a.truncated and len(a.text.split()) <= 2


def test_config_checks_context(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_ctx"):
        LlamaConfig(n_ctx=512, max_tokens=96)
