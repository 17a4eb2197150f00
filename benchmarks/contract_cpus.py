"""Does the embedding contract hold across x86-64 CPUs? (issue 13)

onnxruntime's int8 MatMul picks its kernel at run time from the CPU: AVX512-VNNI, AVX-VNNI,
AVX-512 or AVX2 (``vpmaddubsw``, whose 16-bit intermediate sums can saturate). A collection
built on one machine pins probe vectors; another machine re-encodes them with whatever
kernel it has, and :meth:`EmbeddingContract.verify` refuses the collection when a probe's
cosine falls below its threshold. This script measures those cosines on the kernels this
machine can reach:

* ``native``: this CPU (``lscpu`` model and flags in the JSON);
* ``qemu-<cpu>``: the same Python under ``qemu-x86_64 -cpu <cpu>`` (Debian's qemu-user),
  whose TCG emulates AVX2 but no AVX-512 or VNNI, so onnxruntime takes its AVX2 path;
* ``torch-avx2``: the fp32 torch encoder (``minilm``) natively with its kernels capped at
  AVX2 (``ATEN_CPU_CAPABILITY=avx2``, ``ONEDNN_MAX_CPU_ISA=AVX2``,
  ``MKL_ENABLE_INSTRUCTIONS=AVX2``) against the same encoder uncapped.

For each path it encodes the contract's probe texts and ``--passages`` demo passages, and
reports per-text cosine against the native vectors — next to the cosine between the int8
model and the fp32 torch model of the same network (``minilm``, when installed), the
nearest "other model" a threshold must still refuse. Writes
``benchmarks/results/contract_cpus.json`` and ``.png``.

    python -m benchmarks.contract_cpus [--passages 200] [--cpus Haswell,max]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results"


def texts(n_passages: int) -> list[str]:
    from ragfleet.embed.contract import PROBE_TEXTS

    out = list(PROBE_TEXTS)
    with (REPO / "data" / "demo" / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if len(out) >= len(PROBE_TEXTS) + n_passages:
                break
            d = json.loads(line)
            out.append(f"{d['title']} {d['text']}")
    return out


def encode(encoder_name: str, items: list[str]) -> np.ndarray:
    """Each text alone in its batch, as the contract encodes its probes."""
    from ragfleet.embed.registry import load_encoder

    enc = load_encoder(encoder_name)
    return np.stack([enc.encode([t], kind="document")[0] for t in items]).astype(np.float32)


def _child(args: argparse.Namespace) -> None:
    vecs = encode(args.encoder, texts(args.passages))
    np.save(args.save, vecs, allow_pickle=False)


AVX2_ONLY = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}


def _run_child(
    prefix: list[str], encoder: str, passages: int, save: Path, extra_env: dict[str, str]
) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra_env}
    cmd = [
        *prefix, sys.executable, "-m", "benchmarks.contract_cpus", "--child",
        "--encoder", encoder, "--passages", str(passages), "--save", str(save),
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True)
    return time.perf_counter() - t0


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.sum(a64 * b64, axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


def _summary(cos: np.ndarray, n_probes: int) -> dict[str, float]:
    return {
        "probe_min": float(cos[:n_probes].min()),
        "probe_mean": float(cos[:n_probes].mean()),
        "passage_min": float(cos[n_probes:].min()) if len(cos) > n_probes else float("nan"),
        "passage_p01": float(np.quantile(cos[n_probes:], 0.01)) if len(cos) > n_probes else 0.0,
        "passage_mean": float(cos[n_probes:].mean()) if len(cos) > n_probes else float("nan"),
    }


def _cpu() -> dict[str, str]:
    info = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    wanted = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile")
    return {
        "model": fields.get("Model name", "?").strip(),
        "flags": " ".join(f for f in wanted if f in flags),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--passages", type=int, default=200)
    p.add_argument("--cpus", default="Haswell", help="qemu CPU models, comma-separated")
    p.add_argument("--encoder", default="minilm-int8")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args)
        return
    from ragfleet.embed.contract import PROBE_TEXTS

    items = texts(args.passages)
    n_probes = len(PROBE_TEXTS)
    native = encode(args.encoder, items)
    paths: dict[str, dict[str, float]] = {}
    cosines: dict[str, list[float]] = {}
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        print("qemu-x86_64 not found (apt-get install qemu-user): only native measured")
    with tempfile.TemporaryDirectory() as tmp:
        for cpu in [c for c in args.cpus.split(",") if c] if qemu else []:
            save = Path(tmp) / f"{cpu}.npy"
            prefix = [qemu, "-cpu", cpu]  # type: ignore[list-item]
            seconds = _run_child(prefix, args.encoder, args.passages, save, {})
            cos = _cos(native, np.load(save, allow_pickle=False))
            paths[f"qemu-{cpu}"] = {**_summary(cos, n_probes), "seconds": seconds}
            cosines[f"int8 native vs qemu-{cpu} (AVX2 kernels)"] = cos.tolist()
        try:
            fp32 = encode("minilm", items)
        except Exception as e:  # torch is optional; say why it is missing
            print(f"fp32 torch model not measured: {e}")
        else:
            cos = _cos(native, fp32)
            paths["fp32-torch-model"] = _summary(cos, n_probes)
            cosines["int8 vs fp32 torch model (another weights file)"] = cos.tolist()
            save = Path(tmp) / "torch-avx2.npy"
            seconds = _run_child([], "minilm", args.passages, save, AVX2_ONLY)
            cos = _cos(fp32, np.load(save, allow_pickle=False))
            paths["torch-avx2"] = {**_summary(cos, n_probes), "seconds": seconds}
            cosines["fp32 torch: AVX2-capped vs uncapped kernels"] = cos.tolist()
    from ragfleet.embed.contract import DEFAULT_MIN_COSINE

    result = {
        "cpu": _cpu(),
        "encoder": args.encoder,
        "texts": len(items),
        "probes": n_probes,
        "verify_min_cosine": DEFAULT_MIN_COSINE,
        "paths": paths,
        "cosines": cosines,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "contract_cpus.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(cosines, DEFAULT_MIN_COSINE, OUT / "contract_cpus.png")
    print(json.dumps(result, indent=2))


def _plot(cosines: dict[str, list[float]], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.linspace(-16, -2, 57)
    for label, values in cosines.items():
        gap = np.log10(np.maximum(1.0 - np.asarray(values), 1e-16))
        ax.hist(gap, bins=bins, alpha=0.6, label=label)
    ax.axvline(np.log10(1.0 - threshold), color="k", linestyle="--",
               label=f"verify threshold {threshold}")  # fmt: skip
    ax.set_xlabel("log10(1 - cosine) between the two vectors of a text")
    ax.set_ylabel("texts")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
