#!/usr/bin/env bash
# Builds llama-cpp-python (which has no wheel on PyPI) for a portable CPU baseline and installs it.
#
#   scripts/build_llama.sh .venv/bin/python
#
# Never for the build machine's CPU: machines of one kind have different CPUs, and a wheel built
# with -march=native (ggml's default) crashes on one that lacks an instruction it used (AMX tiles,
# AVX-512). On x86-64 the baseline is x86-64-v3 (AVX2, FMA, F16C, BMI2): every x86 server CPU of
# the last ten years has it, and SmolLM2 loses little against AVX-512 (docs/local-models.md has the
# figures). Elsewhere ggml's generic non-native build.
#
# pip's wheel cache is keyed on the sdist alone, so it would hand a wheel built with other flags
# to the next set-up: this script builds with --no-cache-dir into a cache of its own whose key
# holds the locked sdist, the flags, the compiler and the Python, and records the key it installed
# in the venv, so a venv with a wheel built any other way is reinstalled.
set -euo pipefail

python=${1:?usage: build_llama.sh VENV_PYTHON}
cd "$(dirname "$0")/.."

# The locked requirement (version and sdist hash), as requirements.lock spells it.
requirement=$(awk '/^llama-cpp-python==/{p=1} p{print; if ($0 !~ /\\$/) exit}' requirements.lock)
[ -n "$requirement" ] || { echo "build_llama.sh: llama-cpp-python is not in requirements.lock" >&2; exit 1; }
version=$(printf '%s\n' "$requirement" | sed -n 's/^llama-cpp-python==\([^ ;]*\).*/\1/p')

common="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
case "$(uname -m)" in
    x86_64 | amd64)
        flags="$common -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
        ;;
    *)
        flags="$common"
        ;;
esac
flags="${CHATSTREAM_LLAMA_CMAKE_ARGS:-$flags}"  # an override (benchmarks); it is part of the key too

key=$(
    {
        printf '%s\n' "$requirement" "$flags" "$(uname -m)"
        cc --version 2>/dev/null | head -n 1
        c++ --version 2>/dev/null | head -n 1
        "$python" -c 'import sys, sysconfig; print(sys.version, sysconfig.get_platform())'
    } | sha256sum | cut -c 1-16
)
venv=$("$python" -c 'import sys; print(sys.prefix)')
marker="$venv/.llama-cpp-python-build"
if [ "$(cat "$marker" 2>/dev/null)" = "$key" ] && "$python" -m pip show --quiet llama-cpp-python >/dev/null 2>&1; then
    exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/chatstream/llama-cpp-python/$key"
wheel=$(ls "$cache"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
    echo "set-up: compiling llama-cpp-python $version for a portable CPU baseline (several minutes on 2 cores;" \
        "later set-ups reuse it from $cache)"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    printf '%s\n' "$requirement" >"$work/requirement.txt"
    CMAKE_ARGS="$flags" FORCE_CMAKE=1 CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
        "$python" -m pip wheel --quiet --no-deps --no-cache-dir --require-hashes \
        -r "$work/requirement.txt" -w "$work/out"
    mkdir -p "$cache"
    built=$(ls "$work"/out/*.whl)
    cp "$built" "$cache/.incoming.whl"
    mv "$cache/.incoming.whl" "$cache/$(basename "$built")"  # atomic: a cut-off build leaves no wheel
    wheel="$cache/$(basename "$built")"
fi
"$python" -m pip install --quiet --no-deps --no-index --force-reinstall "$wheel"
printf '%s\n' "$key" >"$marker"
