#!/usr/bin/env bash
# Build llama-cpp-python for a portable x86-64 baseline (x86-64-v3: AVX2, FMA, F16C, BMI2),
# never for the build machine, and never reuse a wheel another machine compiled.
#
#   scripts/install-llama.sh PYTHON VERSION
#
# llama.cpp's default GGML_NATIVE=ON compiles with -march=native: on a VM that reports
# AVX-512/AMX it cannot execute, the result dies with SIGILL. pip's wheel cache is keyed by
# the sdist, not by CMAKE_ARGS, so the build runs with --no-cache-dir and the flags are
# recorded in a stamp next to the interpreter: a venv whose stamp differs is rebuilt.
set -euo pipefail
python=${1:?usage: install-llama.sh PYTHON VERSION}
version=${2:?usage: install-llama.sh PYTHON VERSION}

flags="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF"
flags+=" -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
flags+=" -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF"
flags+=" -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
stamp="$(dirname "$python")/../.llama-build"
want="llama-cpp-python==$version $flags"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$python" -c 'import llama_cpp' 2>/dev/null; then
  exit 0
fi
echo "install-llama.sh: compiling llama-cpp-python $version for x86-64-v3 (~5 min)" >&2
CMAKE_ARGS="$flags" "$python" -m pip install -q --no-cache-dir --no-binary llama-cpp-python \
  --force-reinstall --no-deps "llama-cpp-python==$version"
# Its pure-Python requirements (the wheel cache is fine for those).
"$python" -m pip install -q "llama-cpp-python[server]==$version"
printf '%s' "$want" >"$stamp"
