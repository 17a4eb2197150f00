"""The writer side of the collection crash test (``test_collection_crash.py``).

Run as a *zygote*: it imports ragfleet and loads the real int8 encoder once (one ONNX
thread, so the process can fork safely), prints ``ready``, then for every line
``<collection dir> <log file> <seed>`` on stdin forks a writer and prints its pid. The
writer opens the collection and upserts/deletes batches; before each call it appends an
``intent`` line to the log, after the call returns an ``ack`` line (both flushed), so the
parent that SIGKILLs it knows exactly which batches were acknowledged.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from pathlib import Path
from typing import cast

N_IDS = 24
WORDS = [
    "river",
    "castle",
    "engine",
    "theorem",
    "protein",
    "orbit",
    "harbor",
    "violin",
    "glacier",
    "market",
    "desert",
    "lantern",
    "falcon",
    "copper",
    "meadow",
    "signal",
    "archive",
    "canyon",
    "mirror",
    "thunder",
    "garden",
    "pepper",
    "saddle",
    "comet",
]


def doc_text(rng: random.Random, tag: str) -> str:
    """12-40 words (1-4 chunks under ``window:16:4``), with a unique tag word."""
    words = [rng.choice(WORDS) for _ in range(rng.randint(12, 40))]
    words.insert(rng.randrange(len(words)), tag)
    return " ".join(words)


def plan(seed: int, batches: int = 12) -> list[dict[str, object]]:
    """Deterministic batches of new, changed and deleted documents."""
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    for b in range(batches):
        ids = rng.sample(range(N_IDS), rng.randint(2, 4))
        upsert = {f"d{i:02d}": doc_text(rng, f"zq{seed}x{b}x{i}") for i in ids[1:]}
        delete = [f"d{ids[0]:02d}"] if rng.random() < 0.5 else []
        out.append({"upsert": upsert, "delete": delete})
    return out


def write(directory: str, log_path: str, seed: int) -> None:
    from ragfleet.collection import Collection
    from ragfleet.embed.registry import load_encoder
    from ragfleet.index.shard import CheckpointPolicy
    from ragfleet.types import Document

    encoder = load_encoder("minilm-int8", threads=1)
    col = Collection.open(directory, encoder=encoder, policy=CheckpointPolicy(max_batches=2))
    with open(log_path, "a", encoding="utf-8") as log:
        for n, batch in enumerate(plan(seed)):
            log.write(json.dumps({"intent": n, **batch}) + "\n")
            log.flush()
            upsert = cast(dict[str, str], batch["upsert"])
            col.upsert([Document(d, t) for d, t in upsert.items()])
            delete = cast(list[str], batch["delete"])
            if delete:
                col.delete(delete)
            log.write(json.dumps({"ack": n}) + "\n")
            log.flush()
    col.close()


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ragfleet.collection import Collection
    from ragfleet.embed.registry import load_encoder

    encoder = load_encoder("minilm-int8", threads=1)
    encoder.encode(["warm up"], kind="document")
    del Collection
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    print("ready", flush=True)
    for line in sys.stdin:
        directory, log_path, seed = line.split()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                write(directory, log_path, int(seed))
            except BaseException as e:  # report, then leave without running the parent's atexit
                Path(log_path).with_suffix(".err").write_text(repr(e), "utf-8")
                code = 1
            os._exit(code)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
