"""Does XLA:CPU reach native bf16 arithmetic? bf16 against f32 matmuls and convs of ECCV16's shapes, side by side.

    python -m colorjax.bench bf16_dots

Issue 25 point 3: on a CPU with AVX512-BF16 PyTorch's fastest ECCV16 at batch 8 is bf16 autocast on oneDNN's
`avx512_core_bf16` kernels. This times, in turns in one process, at batch 8: ECCV16's 3x3 convs (64 channels at
256 x 256, 128 at 128, 256 at 64, 512 dilated by 2 at 32) and two matmuls of their im2col / shifted-output shapes,
(8*64*64, 9*256) x (9*256, 256) and (8*256*256, 64) x (64, 9*64), each in XLA float32, XLA bfloat16 with float32
accumulation (`preferred_element_type`), for the convs also as 9 per-tap bf16 matmuls
(`colorjax.models.eccv16.conv_as_tap_matmuls`), and PyTorch float32 and bfloat16 (`torch.matmul` of bf16 tensors,
`F.conv2d` under autocast in channels_last). Each XLA row says which library its compiled program calls (`ynn`:
YNNPACK fusions, `onednn`, or `xla`'s own loops) and whether XLA converts the bf16 operands to f32 first
(`bf16_converted_to_f32`): with jax 0.10.2 a bf16 dot with f32 accumulation is a YNNPACK fusion of the bf16
operands (perf shows `ynn::dot_bf16_bf16_fp32_..._avx512bf16`), a bf16 convolution is converted to f32.

XLA_FLAGS (e.g. `--xla_cpu_use_onednn=true`) are fixed when JAX starts: run once per setting. `quick`: tiny shapes.
"""

import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from colorjax.bench.devices import machine_columns
from colorjax.bench.timing import interleaved_median_seconds
from colorjax.models.eccv16 import conv_as_tap_matmuls

# (name, M, K, N) of the matmuls; (name, batch, side, channels, dilation) of the 3x3 convs (Cin = Cout).
MATMULS = (("im2col of block 3", 8 * 64 * 64, 9 * 256, 256), ("shifted outputs of block 1", 8 * 256 * 256, 64, 9 * 64))
CONVS = (
    ("block 1", 8, 256, 64, 1),
    ("block 2", 8, 128, 128, 1),
    ("block 3", 8, 64, 256, 1),
    ("block 5", 8, 32, 512, 2),
)
QUICK_MATMULS = (("tiny", 64, 32, 16),)
QUICK_CONVS = (("tiny", 2, 8, 8, 1), ("tiny dilated", 2, 8, 8, 2))
DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def compiled_library(fn, *args) -> tuple[str, bool]:
    """(the library XLA:CPU's compiled program calls: ynn, onednn or xla; whether it converts bf16 operands to f32
    before its dots / convolutions: none of their operands is bf16 in the compiled program)."""
    text = fn.lower(*args).compile().as_text()
    if "__ynn_fusion" in text:
        library = "ynn"
    elif "onednn" in text:
        library = "onednn"
    else:
        library = "xla"
    operand_dtypes = set()
    for computation in text.split("\n\n"):
        defined = dict(re.findall(r"%([\w.\-]+) = (\w+)\[", computation))
        for operands in re.findall(r"= \w+\[[^\]]*\]\S* (?:dot|convolution)\(([^)]*)\)", computation):
            operand_dtypes.update(defined.get(name, "?") for name in re.findall(r"%([\w.\-]+)", operands))
    converted = any(str(a.dtype) == "bfloat16" for a in args) and "bf16" not in operand_dtypes
    return library, converted


def _conv(x, w, dilation, preferred=None, conv=jax.lax.conv_general_dilated):
    """A 3x3 conv at `dilation`, padded to keep its size, by `conv` (XLA's, or `conv_as_tap_matmuls`)."""
    pad = ((dilation, dilation), (dilation, dilation))
    return conv(
        x,
        w,
        (1, 1),
        pad,
        rhs_dilation=(dilation, dilation),
        dimension_numbers=DIMENSIONS,
        preferred_element_type=preferred,
    )


def _torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _matmul_contenders(torch, m: int, k: int, n: int) -> list[tuple]:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    found = []
    for precision, dtype, preferred in (("float32", jnp.float32, None), ("bfloat16", jnp.bfloat16, jnp.float32)):
        fn = jax.jit(lambda x, y, preferred=preferred: jnp.dot(x, y, preferred_element_type=preferred))
        args = (jnp.asarray(a, dtype), jnp.asarray(b, dtype))
        found.append(("xla dot", precision, fn, args))
    if torch is not None:
        for precision, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            x, y = torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype)
            found.append(("pytorch matmul", precision, lambda x=x, y=y: torch.matmul(x, y), None))
    return found


def _conv_contenders(torch, batch: int, side: int, channels: int, dilation: int) -> list[tuple]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((batch, side, side, channels), np.float32)
    b = (rng.standard_normal((3, 3, channels, channels)) / np.sqrt(9 * channels)).astype(np.float32)
    f32, bf16 = (jnp.asarray(a), jnp.asarray(b)), (jnp.asarray(a, jnp.bfloat16), jnp.asarray(b, jnp.bfloat16))
    found = [
        ("xla conv", "float32", jax.jit(lambda x, w: _conv(x, w, dilation)), f32),
        ("xla conv", "bfloat16", jax.jit(lambda x, w: _conv(x, w, dilation, jnp.float32)), bf16),
        (
            "xla 9 per-tap matmuls",
            "bfloat16",
            jax.jit(lambda x, w: _conv(x, w, dilation, jnp.float32, conv_as_tap_matmuls)),
            bf16,
        ),
    ]
    if torch is not None:
        x = torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        w = torch.from_numpy(b).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        for precision in ("float32", "bfloat16"):

            def forward(bf16=precision == "bfloat16"):
                with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                    return torch.nn.functional.conv2d(x, w, padding=dilation, dilation=dilation)

            found.append(("pytorch F.conv2d channels_last", precision, forward, None))
    return found


def bench_bf16_dots(quick: bool) -> list[dict]:
    torch = _torch_or_none()
    machine = machine_columns()
    ops = [
        (f"matmul {name} ({m}, {k}) x ({k}, {n})", 2 * m * k * n, (m, k, n))
        for name, m, k, n in (QUICK_MATMULS if quick else MATMULS)
    ]
    ops += [
        (f"conv3x3 {name} {c}->{c} at {b}x{s}x{s}, dilation {d}", 2 * b * s * s * 9 * c * c, (b, s, c, d))
        for name, b, s, c, d in (QUICK_CONVS if quick else CONVS)
    ]
    rows = []
    for op, flops, shape in ops:
        contenders = (_matmul_contenders if op.startswith("matmul") else _conv_contenders)(torch, *shape)
        calls = [(lambda fn=fn, args=args: fn(*args)) if args is not None else fn for _, _, fn, args in contenders]
        start = time.perf_counter()
        seconds = interleaved_median_seconds(calls, 1 if quick else 3)
        op_rows = []
        for (label, precision, fn, args), s in zip(contenders, seconds, strict=True):
            row = {"op": op, "contender": label, "precision": precision, "ms": 1e3 * s, "gflop_per_s": flops / s / 1e9}
            if args is not None:
                row["xla_library"], row["bf16_converted_to_f32"] = compiled_library(fn, *args)
            op_rows.append({**row, **machine})
        xla_f32 = next(r["ms"] for r in op_rows if r["contender"].startswith("xla") and r["precision"] == "float32")
        for row in op_rows:
            row["speedup_vs_xla_f32"] = xla_f32 / row["ms"]
        best = {p: min(r["ms"] for r in op_rows if r["precision"] == p) for p in ("float32", "bfloat16")}
        print(
            f"  {op}: fastest f32 {best['float32']:.0f} ms, fastest bf16 {best['bfloat16']:.0f} ms "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        rows += op_rows
    return rows
