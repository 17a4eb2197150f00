"""A client for any OpenAI-compatible server (vLLM, llama.cpp server, TGI), stdlib only.

``POST {base_url}/chat/completions`` (or ``/completions`` with ``endpoint="completions"``)
with ``stream: true``; the server answers with server-sent events, one ``data: {json}``
line per token delta, ending with ``data: [DONE]``. The request's whole timeout is the
deadline: reading stops when it passes and the answer is marked ``truncated`` (an answer
with no text at all by then raises :class:`~ragfleet.errors.DeadlineExceeded`).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ragfleet.errors import ConfigError, DeadlineExceeded, InputError, RagfleetError
from ragfleet.generate.base import Answer, check_query, cited_answer, drain
from ragfleet.generate.prompt import PromptConfig, TokenCounter, build_prompt
from ragfleet.types import Hit


@dataclass(frozen=True)
class OpenAIConfig:
    """Server, model and sampling. ``base_url`` ends in ``/v1`` (e.g.
    ``http://127.0.0.1:8000/v1``); ``timeout_ms`` caps a request when the caller gives none."""

    base_url: str
    model: str
    endpoint: Literal["chat", "completions"] = "chat"
    max_tokens: int = 128
    temperature: float = 0.0
    stop: tuple[str, ...] = ("\n\nQuestion:", "\n\n\n")
    timeout_ms: float = 30_000.0
    api_key: str = ""
    prompt: PromptConfig = field(
        default_factory=lambda: PromptConfig(budget_tokens=1024, max_passages=5)
    )

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url must start with http:// or https://, got {self.base_url!r}"
            )
        if not self.model or self.max_tokens < 1 or self.timeout_ms <= 0:
            raise ConfigError("a model name, max_tokens >= 1 and timeout_ms > 0 are required")
        if self.endpoint not in ("chat", "completions"):
            raise ConfigError(f"endpoint must be 'chat' or 'completions', got {self.endpoint!r}")


class OpenAIGenerator:
    """Answers with a model behind an OpenAI-compatible HTTP API, streaming.

    Args:
        config: see :class:`OpenAIConfig`.
        counter: token counter for prompt packing (default: the MiniLM tokenizer, an
            approximation of the server model's tokenizer — keep a margin in the budget).
        on_token: called with each streamed text delta (e.g. to print as it arrives).
    """

    def __init__(
        self,
        config: OpenAIConfig,
        *,
        counter: TokenCounter | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> None:
        from ragfleet.ingest.tokenize import minilm_tokenizer

        self.config = config
        self.name = f"openai:{config.model}"
        self.counter: TokenCounter = counter or minilm_tokenizer()
        self.on_token = on_token

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
        """Pack the prompt, stream the completion until done, a stop sequence or the deadline."""
        check_query(query)
        t0 = time.perf_counter()
        budget = min(timeout_ms, self.config.timeout_ms) if timeout_ms else self.config.timeout_ms
        deadline = time.monotonic() + budget / 1e3
        prompt = build_prompt(query, hits, self.counter, self.config.prompt)
        deltas = self._stream(prompt.text, deadline)
        text, truncated = drain(deltas, deadline, (on_token, self.on_token))
        return cited_answer(text, prompt.passages, self.name, t0, truncated)

    def _request(self, prompt: str) -> urllib.request.Request:
        c = self.config
        body: dict[str, Any] = {
            "model": c.model,
            "max_tokens": c.max_tokens,
            "temperature": c.temperature,
            "stop": list(c.stop),
            "stream": True,
        }
        if c.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if c.api_key:
            headers["Authorization"] = f"Bearer {c.api_key}"
        path = "chat/completions" if c.endpoint == "chat" else "completions"
        url = f"{c.base_url.rstrip('/')}/{path}"
        return urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")

    def _stream(self, prompt: str, deadline: float) -> Iterator[str]:
        """Text deltas from the server's event stream; the socket timeout is what is left."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("no time left to call the generation server")
        try:
            with urllib.request.urlopen(self._request(prompt), timeout=left) as resp:
                for raw in resp:
                    delta = parse_event(raw.decode("utf-8"), self.config.endpoint)
                    if delta is None:
                        return
                    if delta:
                        yield delta
        except TimeoutError as e:
            raise DeadlineExceeded(
                f"{self.config.base_url} did not answer within {left:.3f}s"
            ) from e
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:300]
            raise InputError(f"{self.config.base_url} answered HTTP {e.code}: {detail}") from e
        except urllib.error.URLError as e:
            raise RagfleetError(
                f"cannot reach the generation server {self.config.base_url}: {e.reason}; "
                "check --base-url and that the server is running"
            ) from e


def parse_event(line: str, endpoint: str) -> str | None:
    """The text delta of one SSE line: ``""`` for non-data lines, ``None`` at ``[DONE]``."""
    line = line.strip()
    if not line.startswith("data:"):
        return ""
    data = line[len("data:") :].strip()
    if data == "[DONE]":
        return None
    try:
        choice = json.loads(data)["choices"][0]
    except (ValueError, KeyError, IndexError) as e:
        raise InputError(f"malformed event from the generation server: {data[:200]!r}") from e
    if endpoint == "chat":
        return str((choice.get("delta") or {}).get("content") or "")
    return str(choice.get("text") or "")
