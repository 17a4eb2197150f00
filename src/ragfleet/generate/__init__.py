"""Generate: cited answers from ranked hits.

``Extractive`` (default, no model) quotes the answer-bearing sentence; ``LlamaGenerator``
runs a local GGUF model (extra ``llama``); ``OpenAIGenerator`` calls any OpenAI-compatible
server. All pack the best passages first into a token budget (:func:`build_prompt`) and
cite them ``[n]``.
"""

from ragfleet.generate.base import Answer, Citation, Generator, parse_citations, strip_citations
from ragfleet.generate.extractive import Extractive, ExtractiveConfig
from ragfleet.generate.prompt import Prompt, PromptConfig, build_prompt

__all__ = [
    "Answer",
    "Citation",
    "Extractive",
    "ExtractiveConfig",
    "Generator",
    "Prompt",
    "PromptConfig",
    "build_prompt",
    "parse_citations",
    "strip_citations",
]
