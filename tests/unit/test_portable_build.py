"""Native code compiled here runs on every x86-64-v3 machine (issue 13).

llama.cpp built with its default ``GGML_NATIVE=ON`` carries AVX-512/AMX code for the build
machine, which a VM that reports those features but cannot execute them dies on (SIGILL).
``scripts/install-llama.sh`` builds for x86-64-v3; this test disassembles what it built
and fails on any instruction outside that baseline: a ``zmm`` register or an opmask
register (AVX-512), AMX tile instructions, or VNNI dot products (AVX-VNNI/AVX512-VNNI).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

#: Operands and mnemonics (AT&T syntax, as objdump prints them) beyond x86-64-v3.
BEYOND_V3 = re.compile(
    r"%zmm\d|%k[0-7]\b|\b(tileloadd|tilestored|tdpb[su]{2}d|tdpbf16ps|ldtilecfg|"
    r"vpdpbusds?|vpdpwssds?|vcvtne2ps2bf16|vdpbf16ps)\b"
)


def _libraries() -> list[Path]:
    llama_cpp = pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python (extra 'llama') is not installed"
    )
    root = Path(llama_cpp.__file__).parent
    libs = sorted(p for p in root.rglob("*.so*") if p.is_file() and not p.is_symlink())
    assert libs, f"no shared libraries under {root}"
    return libs


def test_regex_flags_avx512_and_amx_but_not_avx2() -> None:
    assert BEYOND_V3.search("vaddps %zmm1,%zmm2,%zmm3")
    assert BEYOND_V3.search("kmovw %k1,%eax")
    assert BEYOND_V3.search("tileloadd (%rsi,%rdx,1),%tmm0")
    assert BEYOND_V3.search("vpdpbusd %ymm1,%ymm2,%ymm3")
    assert not BEYOND_V3.search("vfmadd231ps %ymm1,%ymm2,%ymm3")
    assert not BEYOND_V3.search("vcvtph2ps %xmm0,%ymm1")


def test_llama_cpp_has_no_instruction_beyond_x86_64_v3() -> None:
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed")
    for lib in _libraries():
        out = subprocess.run(
            [objdump, "-d", "--no-show-raw-insn", str(lib)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        bad = [line.strip() for line in out.splitlines() if BEYOND_V3.search(line)]
        assert not bad, (
            f"{lib.name} holds {len(bad)} instruction(s) beyond x86-64-v3, e.g. {bad[:3]}: "
            "it was built for the build machine; rebuild with scripts/install-llama.sh"
        )
