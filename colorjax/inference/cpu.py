"""The CPU an inference runs on: its ISA class, as XLA compiles for it.

ISA classes, narrowest first (`ISA_CLASSES`): SSE (below AVX2), AVX2, AVX-512 (avx512f), AVX512-BF16 (bf16 dot
products, e.g. AMD Zen 4 and later, Intel Cooper Lake) and AMX (Intel Sapphire Rapids and later: bf16 matrix tiles).
The class is the widest one among /proc/cpuinfo's flags, capped by `--xla_cpu_max_isa` in XLA_FLAGS, which makes
XLA:CPU generate code for a narrower class (how the AVX2 class is timed on an AVX-512 machine: python -m
colorjax.bench zhang --levers, README "Performance").
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

ISA_CLASSES = ("SSE", "AVX2", "AVX-512", "AVX512-BF16", "AMX")

# XLA's --xla_cpu_max_isa values (its flag's help: SSE4_2, AVX, AVX2, AVX512, AVX512_VNNI, AVX512_BF16, AMX, AMX_FP16)
# by the class they cap at.
XLA_MAX_ISA_CLASSES = {
    "SSE4_2": "SSE",
    "AVX": "SSE",
    "AVX2": "AVX2",
    "AVX512": "AVX-512",
    "AVX512_VNNI": "AVX-512",
    "AVX512_BF16": "AVX512-BF16",
    "AMX": "AMX",
    "AMX_FP16": "AMX",
}


def cpu_isa(flags: set[str] | frozenset[str]) -> str:
    """The widest vector / matrix extension class among /proc/cpuinfo's flags: AMX (amx_tile), AVX512-BF16
    (avx512_bf16), AVX-512 (avx512f), AVX2, or SSE."""
    if "amx_tile" in flags:
        return "AMX"
    for flag, name in (("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2")):
        if flag in flags:
            return name
    return "SSE"


def _cpuinfo_fields(cpuinfo: str | Path) -> dict[str, str] | None:
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_description(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """ "MODEL NAME, ISA class" of this machine's CPU from /proc/cpuinfo (Linux); the platform's processor name
    elsewhere."""
    fields = _cpuinfo_fields(cpuinfo)
    if fields is None:
        return f"{platform.processor() or platform.machine()}, ISA unknown"
    model = fields.get("model name") or fields.get("Processor") or platform.machine()
    return f"{model}, {cpu_isa(frozenset(fields.get('flags', '').split()))}"


def xla_isa_class(cpu_class: str, xla_flags: str) -> str:
    """The class XLA:CPU compiles for: `cpu_class` capped by XLA_FLAGS' `--xla_cpu_max_isa` (an unknown value caps
    nothing, as XLA itself rejects it)."""
    match = re.search(r"--xla_cpu_max_isa=(\S+)", xla_flags)
    cap = XLA_MAX_ISA_CLASSES.get(match.group(1).upper()) if match else None
    if cap is None or cpu_class not in ISA_CLASSES:
        return cpu_class
    return min(cpu_class, cap, key=ISA_CLASSES.index)


def this_isa_class(cpuinfo: str | Path = "/proc/cpuinfo", environ=os.environ) -> str:
    """This process's ISA class for XLA:CPU (/proc/cpuinfo's, capped by XLA_FLAGS); AVX2 where /proc/cpuinfo cannot
    be read (x86-64 machines of the last decade have it)."""
    fields = _cpuinfo_fields(cpuinfo)
    cpu_class = "AVX2" if fields is None else cpu_isa(frozenset(fields.get("flags", "").split()))
    return xla_isa_class(cpu_class, environ.get("XLA_FLAGS", ""))
