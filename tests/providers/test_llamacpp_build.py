"""The installed llama.cpp libraries are built for a portable x86-64 baseline, not this machine's CPU.

A green run on a CPU that has AVX-512 and AMX proves nothing about one that hasn't (or whose kernel
doesn't grant AMX tiles): the libraries themselves are disassembled and searched for instructions
outside x86-64-v3 (AVX2, FMA, F16C, BMI2). scripts/build_llama.sh makes the build.
"""

from __future__ import annotations

import importlib.util
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"), reason="the baseline checked here is x86-64's"
)

# What only AVX-512 (any subset, with or without VL), AVX-VNNI or AMX can encode.
BEYOND_BASELINE = re.compile(
    r"%zmm\d+"  # 512-bit registers
    r"|%[xy]mm(?:1[6-9]|2\d|3[01])\b"  # registers 16-31: EVEX only
    r"|%k[0-7]\b|\{%k[0-7]\}"  # opmask registers
    r"|\b(?:ldtilecfg|sttilecfg|tileloadd\w*|tilestored|tilerelease|tilezero|tdp\w+)\b"  # AMX
    r"|\b(?:vpternlog[dq]|vperm[it]2\w+|vp?compress\w+|vp?expand\w+|vpro[lr]v?[dq]|vpconflict[dq]"
    r"|vplzcnt[dq]|vpdpbusds?|vpdpwssds?|vdpbf16ps|vcvtne2?ps2bf16|vpmov[dqw][bdw]|vfpclass\w+"
    r"|vgetexp\w+|vgetmant\w+|vrndscale\w+|vreduce\w+|vscalef\w+|vrcp14\w+|vrsqrt14\w+)\b"
)


def llama_libraries() -> list[Path]:
    spec = importlib.util.find_spec("llama_cpp")  # found, not imported: the test process loads no model
    assert spec is not None and spec.submodule_search_locations, "llama-cpp-python is installed by make setup"
    lib = Path(spec.submodule_search_locations[0]) / "lib"
    found = sorted(p for p in lib.glob("lib*.so") if p.name.startswith(("libggml", "libllama")))
    assert any(p.name == "libggml-cpu.so" for p in found), f"no CPU backend in {lib}: {found}"
    return found


def beyond_baseline(library: Path) -> list[str]:
    """The disassembled lines of `library` that use instructions beyond x86-64-v3."""
    objdump = shutil.which("objdump")
    assert objdump is not None, "objdump (binutils, installed with the C compiler) is needed"
    listing = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", str(library)], capture_output=True, text=True, check=True
    ).stdout
    return [line.strip() for line in listing.splitlines() if BEYOND_BASELINE.search(line)]


def test_the_cpu_backend_is_built_without_avx512_or_amx() -> None:
    for library in llama_libraries():
        offending = beyond_baseline(library)
        assert offending == [], f"{library.name}: {len(offending)} instructions, e.g. {offending[:5]}"


def test_the_cpu_backend_does_use_avx2() -> None:
    """The baseline is v3, not the slowest x86-64: the matrix kernels use 256-bit registers."""
    cpu = next(p for p in llama_libraries() if p.name == "libggml-cpu.so")
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(cpu)], capture_output=True, text=True, check=True
    ).stdout
    assert listing.count("%ymm") > 1000


def test_the_pattern_recognises_what_it_must_refuse() -> None:
    """The search itself can fail: lines as objdump prints AVX-512, AVX-VNNI and AMX code."""
    refused = [
        "vmovups (%rax),%zmm0",
        "vpaddd %ymm17,%ymm1,%ymm2",
        "vaddps %ymm1,%ymm2,%ymm3{%k1}",
        "kmovw %k1,%eax",
        "ldtilecfg (%rsi)",
        "tileloadd (%rax,%rcx,1),%tmm0",
        "tdpbssd %tmm2,%tmm1,%tmm0",
        "vpternlogd $0x96,%ymm2,%ymm1,%ymm0",
        "{vex} vpdpbusd %ymm2,%ymm1,%ymm0",
        "vpmovdb %ymm0,%xmm1",
    ]
    allowed = ["vfmadd231ps %ymm2,%ymm1,%ymm0", "vpmovmskb %ymm0,%eax", "vcvtph2ps %xmm0,%ymm1", "shlx %rax"]
    assert all(BEYOND_BASELINE.search(line) for line in refused)
    assert not any(BEYOND_BASELINE.search(line) for line in allowed)
