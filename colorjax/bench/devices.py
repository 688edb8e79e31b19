"""What a benchmark ran on, and how much of it it used: the device, its bf16 peak, FLOPs and MFU.

FLOPs come from XLA's cost analysis of the LOWERED program (`jax.jit(f).lower(...).cost_analysis()`), before any
backend compiles it: on GPU the compiled executable's count leaves out the cuDNN convolutions (custom calls), so
it reported 0.047 GFLOP for an ECCV16 forward of 79.6. The lowered count is the same on every backend and equals
the CPU-compiled count up to the elementwise ops that fusion rewrites (tests/unit/test_bench.py).

MFU (model FLOPs utilisation) = achieved FLOP/s / the chip's dense bf16 peak, from `PEAK_BF16_FLOPS` by device
kind; None where the kind is not listed (CPUs), and then no MFU is printed.
"""

import os
from collections.abc import Callable

import jax

from colorjax.inference.cpu import cpu_description, this_isa_class

# Dense (no sparsity) bf16 tensor-core / MXU peaks per chip, from the vendors' data sheets. Matched in order against
# the lower-cased `device.device_kind` (e.g. "NVIDIA H100 80GB HBM3", "NVIDIA H200", "TPU v5 lite").
PEAK_BF16_FLOPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("h100", "pcie"), 756e12),
    (("h100", "nvl"), 835e12),
    (("h100",), 989e12),  # SXM
    (("h200",), 989e12),  # SXM; the H100's compute with more memory
    (("a100",), 312e12),
    (("tpu v4",), 275e12),
    (("tpu v5 lite",), 197e12),  # v5e
    (("tpu v5e",), 197e12),
    (("tpu v5",), 459e12),  # v5p
    (("tpu v6 lite",), 918e12),  # v6e (Trillium)
    (("tpu v6e",), 918e12),
)


def peak_bf16_flops(device_kind: str) -> float | None:
    """The dense bf16 peak FLOP/s of a chip by its `device_kind`, or None when unknown (CPUs)."""
    kind = device_kind.lower()
    for words, peak in PEAK_BF16_FLOPS:
        if all(word in kind for word in words):
            return peak
    return None


def describe_device(device: jax.Device | None = None) -> str:
    """One line: platform, kind, count, and the bf16 peak used for MFU (or that there is none)."""
    device = device or jax.devices()[0]
    peak = peak_bf16_flops(device.device_kind)
    peak_text = f"bf16 peak {peak / 1e12:.0f} TFLOP/s" if peak else "no bf16 peak listed: no MFU"
    return f"{jax.device_count()} x {device.platform.upper()} {device.device_kind} (jax {jax.__version__}; {peak_text})"


def lowered_flops(jitted: Callable, *args) -> float:
    """FLOPs of one call of `jitted(*args)` from the lowered (pre-compilation) program's cost analysis."""
    return float(jitted.lower(*args).cost_analysis().get("flops", float("nan")))


def speed_columns(flops: float, seconds: float, device: jax.Device | None = None) -> dict:
    """`tflops_per_s` achieved and, where the device's peak is known, `mfu_percent`."""
    device = device or jax.devices()[0]
    columns = {"tflops_per_s": flops / seconds / 1e12}
    peak = peak_bf16_flops(device.device_kind)
    if peak:
        columns["mfu_percent"] = 100 * flops / seconds / peak
    return columns


def machine_columns() -> dict:
    """What a CPU timing depends on, kept in every CPU row: the CPU (model and ISA class), the threads each framework
    uses, XLA_FLAGS (e.g. `--xla_cpu_max_isa=AVX2`, `--xla_cpu_use_onednn=true`) and the ISA class XLA compiles for
    under them (`colorjax.inference.cpu`), the ISA PyTorch's ATen kernels were built for
    (`torch.backends.cpu.get_cpu_capability()`, which `ATEN_CPU_CAPABILITY=avx2` lowers) and the cap on oneDNN's ISA
    (`ONEDNN_MAX_CPU_ISA`: PyTorch's convolutions are oneDNN's, which ATen's setting leaves alone)."""
    try:
        import torch

        torch_threads: int | str = torch.get_num_threads()
        aten = torch.backends.cpu.get_cpu_capability()
    except (ImportError, AttributeError):
        torch_threads, aten = "-", "-"
    xla_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_description(),
        "threads": f"XLA {xla_threads}, PyTorch {torch_threads}",
        "xla_flags": os.environ.get("XLA_FLAGS") or "-",
        "xla_isa": this_isa_class(),
        "aten_cpu": aten,
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or "-",
    }


def versus_fastest(rows: list[dict], key: str) -> str | None:
    """Adds `vs_pytorch_fastest` to every colorjax row (the fastest PyTorch contender's time over the row's, whatever
    the precisions; `key` is a time column such as "ms_per_image") and returns the headline: the fastest colorjax contender against the fastest PyTorch one. Rows are
    told apart by their contender label (PyTorch's start with "pytorch"); None without PyTorch rows.

    Fastest against fastest is the honest comparison on a CPU: bf16 against bf16 autocast flatters colorjax by 10x on
    a CPU without native bf16, where nobody would run PyTorch in bf16."""
    theirs = [row for row in rows if row["contender"].startswith("pytorch")]
    ours = [row for row in rows if not row["contender"].startswith("pytorch")]
    if not theirs or not ours:
        return None
    best_theirs = min(theirs, key=lambda row: row[key])
    best_ours = min(ours, key=lambda row: row[key])
    for row in ours:
        row["vs_pytorch_fastest"] = best_theirs[key] / row[key]
    return (
        f"fastest colorjax ({best_ours['contender']}, {best_ours['precision']}) "
        f"{best_ours[key]:.3g} vs fastest PyTorch ({best_theirs['precision']}) {best_theirs[key]:.3g} {key}: "
        f"{best_ours['vs_pytorch_fastest']:.2f}x"
    )
