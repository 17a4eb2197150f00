"""The long crash-and-stress harness (issue 14): SIGKILL a writer at random moments, again
and again, while reader processes keep opening and searching the same collection.

A *zygote* process loads the real int8 encoder once and forks one writer per trial; each
writer runs random batches — new documents, replacements, deletes, explicit checkpoints,
compactions, now and then a reindex — logging an ``intent`` line before each operation and
an ``ack`` line after it returns. The parent SIGKILLs it at a random moment, reopens the
collection, and compares it with the model of what was acknowledged:

* **lost**: an acknowledged document missing or at an older version;
* **resurrected**: an acknowledged delete undone;
* **torn**: a document of the operation in flight that is neither wholly old nor new;
* **unopenable**: the open failed.

Meanwhile ``--readers`` processes open the collection read-only in a loop (beside the
writer, across its checkpoints and compactions) and check what they see: stats agree with
the documents, every live document has chunks ``0 .. m-1`` of one version (same document
hash), and search returns live chunks only. Writes ``benchmarks/results/crash_stress.json``
and ``.png``.

    python -m benchmarks.crash_stress --kills 500 [--readers 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results"
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
]


def _config() -> Any:
    from ragfleet.config import ChunkerConfig, CollectionConfig, ShardingConfig

    return CollectionConfig(
        sharding=ShardingConfig(n_shards=2), chunker=ChunkerConfig.parse("window:16:4")
    )


def plan(seed: int, batches: int = 12) -> list[dict[str, Any]]:
    """Deterministic operations of one writer."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for b in range(batches):
        roll = rng.random()
        if roll < 0.06:
            out.append({"op": "compact"})
        elif roll < 0.12:
            out.append({"op": "checkpoint"})
        elif roll < 0.13:
            out.append({"op": "reindex"})
        else:
            ids = rng.sample(range(N_IDS), rng.randint(2, 4))
            words = [rng.choice(WORDS) for _ in range(rng.randint(12, 40))]
            upsert = {f"d{i:02d}": " ".join([*words, f"zq{seed}x{b}x{i}"]) for i in ids[1:]}
            delete = [f"d{ids[0]:02d}"] if rng.random() < 0.5 else []
            out.append({"op": "write", "upsert": upsert, "delete": delete})
    return out


def _writer(directory: str, log_path: str, seed: int, encoder: Any) -> None:
    from ragfleet.collection import Collection
    from ragfleet.index.shard import CheckpointPolicy
    from ragfleet.types import Document

    col = Collection.open(directory, encoder=encoder, policy=CheckpointPolicy(max_batches=3))
    with open(log_path, "a", encoding="utf-8") as log:
        for n, step in enumerate(plan(seed)):
            log.write(json.dumps({"intent": n, **step}) + "\n")
            log.flush()
            if step["op"] == "write":
                col.upsert([Document(d, t) for d, t in step["upsert"].items()])
                if step["delete"]:
                    col.delete(step["delete"])
            elif step["op"] == "compact":
                col.compact(0.0)
            elif step["op"] == "checkpoint":
                col.checkpoint()
            else:
                col.reindex("minilm-int8")
            log.write(json.dumps({"ack": n}) + "\n")
            log.flush()
    col.close()


def zygote() -> None:
    from ragfleet.embed.registry import load_encoder

    encoder = load_encoder("minilm-int8", threads=1)
    encoder.encode(["warm up"], kind="document")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    for line in sys.stdin:
        directory, log_path, seed = line.split()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _writer(directory, log_path, int(seed), encoder)
            except BaseException as e:
                Path(log_path).with_suffix(".err").write_text(repr(e), "utf-8")
                code = 1
            os._exit(code)
        print(pid, flush=True)


def reader(directory: str, out_path: str) -> None:
    """Open read-only, check, close, until SIGTERM; counts go to ``out_path`` as JSON."""
    from ragfleet.collection import Collection
    from ragfleet.embed.registry import load_encoder

    enc = load_encoder("minilm-int8", threads=1)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    counts = {"opens": 0, "errors": 0, "torn_seen": 0, "dead_hits": 0}
    errors: list[str] = []
    while not stop:
        try:
            with Collection.open(directory, encoder=enc, read_only=True) as col:
                ids = col.doc_ids()
                if col.stats()["documents"] != len(ids):
                    errors.append("stats disagree with the documents")
                for shard in col.shards:
                    for d in shard.doc_hashes():
                        chunks = shard.chunks_of([d])
                        if (
                            sorted(c.n for c in chunks) != list(range(len(chunks)))
                            or len({c.doc_hash for c in chunks}) != 1
                        ):
                            counts["torn_seen"] += 1
                for h in col.search("river castle engine", k=10, mode="hybrid").hits:
                    counts["dead_hits"] += h.doc_id not in ids
            counts["opens"] += 1
        except Exception as e:  # a failed open or search beside the writer is the finding
            counts["errors"] += 1
            errors.append(repr(e)[:300])
    Path(out_path).write_text(json.dumps({**counts, "examples": errors[:5]}))


def _read_log(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    intents: dict[int, dict[str, Any]] = {}
    acked = []
    for line in path.read_text("utf-8").splitlines():
        rec = json.loads(line)
        if "intent" in rec:
            intents[rec["intent"]] = rec
        else:
            acked.append(intents.pop(rec["ack"]))
    return acked, next(iter(intents.values()), None)


def _compare(col: Any, model: dict[str, str], in_flight: dict[str, Any] | None) -> dict[str, int]:
    """Count lost / resurrected / torn documents, and resolve the in-flight ones in ``model``."""
    from ragfleet.ingest.chunking import make_chunker
    from ragfleet.types import Document

    chunker = make_chunker(col.config.chunker, col.encoder.tokenizer)

    def chunks(d: str, t: str | None) -> list[tuple[str, str]]:
        return (
            []
            if t is None
            else sorted((c.chunk_id, c.text) for c in chunker.chunk_many([Document(d, t)]))
        )

    stored: dict[str, list[tuple[str, str]]] = {}
    for shard in col.shards:
        for c in shard.live_chunks():
            stored.setdefault(c.doc_id, []).append((c.chunk_id, c.text))
    new: dict[str, str | None] = {}
    if in_flight is not None and in_flight["op"] == "write":
        new.update(in_flight["upsert"])
        new.update(dict.fromkeys(in_flight["delete"]))
    found = {"lost": 0, "resurrected": 0, "torn": 0}
    for d in set(stored) | set(model) | set(new):
        got = sorted(stored.get(d, []))
        old = model.get(d)
        if d in new and got == chunks(d, new[d]):
            value = new[d]
        elif got == chunks(d, old):
            value = old
        else:
            key = "torn" if d in new else ("resurrected" if old is None else "lost")
            found[key] += 1
            value = old
        if value is None:
            model.pop(d, None)
        else:
            model[d] = value
    return found


def _apply(model: dict[str, str], step: dict[str, Any]) -> None:
    if step["op"] == "write":
        model.update(step["upsert"])
        for d in step["delete"]:
            model.pop(d, None)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=500)
    p.add_argument("--readers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--zygote", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--reader", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.zygote:
        zygote()
        return
    if args.reader:
        reader(*args.reader)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    from ragfleet.collection import Collection
    from ragfleet.embed.registry import load_encoder

    encoder = load_encoder("minilm-int8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    work = Path(tempfile.mkdtemp(prefix="crash-stress-"))
    root = work / "c"
    Collection.create(root, _config(), encoder=encoder).close()
    mod = [sys.executable, "-m", "benchmarks.crash_stress"]
    zyg = subprocess.Popen([*mod, "--zygote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True, env=env, cwd=REPO)  # fmt: skip
    assert zyg.stdout is not None and zyg.stdin is not None
    if zyg.stdout.readline().strip() != "ready":
        raise SystemExit("the zygote did not start")
    readers = [
        subprocess.Popen(
            [*mod, "--reader", str(root), str(work / f"reader-{i}.json")], env=env, cwd=REPO
        )
        for i in range(args.readers)
    ]
    rng = random.Random(args.seed)
    model: dict[str, str] = {}
    totals = {"lost": 0, "resurrected": 0, "torn": 0, "unopenable": 0}
    acked_ops = 0
    recover_ms: list[float] = []
    t0 = time.monotonic()
    try:
        for trial in range(args.kills):
            log = work / f"trial-{trial}.log"
            log.touch()
            zyg.stdin.write(f"{root} {log} {args.seed * 100_000 + trial}\n")
            zyg.stdin.flush()
            pid = int(zyg.stdout.readline())
            want = rng.randint(0, 4)
            deadline = time.monotonic() + 60
            while log.read_text("utf-8").count('"ack"') < want and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.5))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while True:
                try:
                    os.kill(pid, 0)
                    time.sleep(0.005)
                except ProcessLookupError:
                    break
            err = log.with_suffix(".err")
            if err.exists():
                raise SystemExit(f"trial {trial}: the writer failed: {err.read_text()}")
            acked, in_flight = _read_log(log)
            for step in acked:
                _apply(model, step)
            acked_ops += len(acked)
            t = time.perf_counter()
            try:
                col = Collection.open(root, encoder=encoder)
            except Exception as e:
                totals["unopenable"] += 1
                print(f"trial {trial}: unopenable: {e}")
                break
            recover_ms.append((time.perf_counter() - t) * 1000)
            try:
                for k, v in _compare(col, model, in_flight).items():
                    totals[k] += v
            finally:
                col.close()
            if trial % 25 == 24:
                print(
                    f"{trial + 1} kills, {acked_ops} acknowledged operations, {totals}", flush=True
                )
    finally:
        zyg.stdin.close()
        zyg.wait(timeout=60)
        for r in readers:
            r.send_signal(signal.SIGTERM)
        for r in readers:
            r.wait(timeout=120)
    seen = [json.loads((work / f"reader-{i}.json").read_text()) for i in range(args.readers)]
    result = {
        "kills": len(recover_ms) + totals["unopenable"],
        "acknowledged_operations": acked_ops,
        **totals,
        "documents_at_end": len(model),
        "recover_ms": {
            "p50": _pct(recover_ms, 50),
            "p99": _pct(recover_ms, 99),
            "max": max(recover_ms, default=0.0),
        },
        "readers": seen,
        "seconds": time.monotonic() - t0,
        "cpu": os.cpu_count(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "crash_stress.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(recover_ms, OUT / "crash_stress.png", result)
    print(json.dumps(result, indent=2))


def _pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else 0.0


def _plot(recover_ms: list[float], path: Path, result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(range(1, len(recover_ms) + 1), recover_ms, ".", markersize=3)
    ax.set_xlabel("kill")
    ax.set_ylabel("reopen after SIGKILL (ms)")
    ax.set_title(
        f"{result['kills']} kills, {result['acknowledged_operations']} acked ops: "
        f"{result['lost']} lost, {result['resurrected']} resurrected, "
        f"{result['torn']} torn, {result['unopenable']} unopenable",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
