import subprocess
import sys

import ragfleet

PINNED = {
    "Chunk",
    "Collection",
    "CollectionConfig",
    "CollectionError",
    "ConfigError",
    "Document",
    "EmbeddingContractError",
    "Hit",
    "InputError",
    "MissingDependencyError",
    "RagfleetError",
    "Results",
    "SearchRequest",
    "StageTimings",
    "__version__",
}


def test_public_api_is_pinned() -> None:
    assert set(ragfleet.__all__) == PINNED
    for name in ragfleet.__all__:
        assert getattr(ragfleet, name) is not None


def test_import_is_light() -> None:
    code = (
        "import sys, ragfleet; heavy = {'faiss', 'torch', 'onnxruntime', 'sentence_transformers'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
