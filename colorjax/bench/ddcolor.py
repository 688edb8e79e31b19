"""DDColor speed: colorjax's Flax DDColor vs the authors' PyTorch DDColor on the same machine, side by side in one run.

    python -m colorjax.bench ddcolor [--models tiny,large] [--sizes 256,512] [--batches 1,8] [--budget-s 1800]
                                     [--skip autocast]

DDColor is Kang et al., ICCV 2023 (github piddnad/DDColor); the PyTorch contender is the authors' own modules
(`colorjax.bench.ddcolor_torch.authors_ddcolor`, from the modelscope wheel), with random weights of a trained
network's scale (`randomise`) that colorjax reads through its importer from the published state-dict layout, so
both run the same network with the same numbers. Each setting (model, S, batch) times, in turns (a, b, c, a, b, c,
...: a load spike on this shared machine hits every contender alike), the network itself on grey RGB at S x S
(`DDColor.colorize_rgb`, the authors' `DDColor.forward`):

- colorjax `jit`, float32 and bfloat16 (`DDColor(dtype=bfloat16)`, parameters cast to bfloat16 once);
- PyTorch eager (`inference_mode`) in float32 and in bfloat16 (`torch.autocast`), on the CPU (or CUDA when JAX has a
  GPU); on a CPU also float32 with ONE thread (PyTorch's OpenMP threads lose much of their time when the cores are
  shared with other work, and then one thread is its fastest).

Columns: ms per image, GFLOP per image of the authors' network (the lowered program's count of colorjax's DDColor in
their order of operations, `colorjax.bench.devices`; colorjax's default program does a little less), `vs_pytorch` (the
PyTorch contender of the same precision at its default threads / this one's time) and `vs_pytorch_fastest` (the
fastest PyTorch contender of the setting / this one's time), and, on the colorjax float32 row, its largest |ab|
difference from PyTorch's float32 output. The CPU's model, its ISA class (AVX2 / AVX-512 / AVX512-BF16 / AMX from
/proc/cpuinfo), the thread counts and XLA_FLAGS are printed first and kept in every row.

Settings run smallest first; after each, the next one's time is estimated from its FLOPs at the rates just measured,
and a setting that would not fit in what is left of `--budget-s` is skipped with a row saying so (DDColor-L at
512 x 512, batch 8, is about 3 TFLOP a call: minutes per call on two cores). Warm-up (compilation) plus at least one
timed turn; up to three when time allows. `--skip` leaves out the contenders whose label or precision contains one
of its comma-separated words (`--skip autocast` under an AVX2 restriction, where PyTorch's bf16 autocast takes 600+ s
an image without native bf16 and cannot be the fastest; each setting then keeps a row saying what it skipped).
`quick=True`: a CPU-sized network (the test widths) at 64 x 64, batch 1
and 2, one turn: seconds, for the tests.

XLA's oneDNN kernels (`--xla_cpu_use_onednn=true`, which `colorize` and `serve` add on a CPU,
`colorjax.inference.colorizer.prefer_fast_cpu_kernels`) are fixed when JAX starts, so they cannot be switched within
one run: run the benchmark once with `XLA_FLAGS=--xla_cpu_use_onednn=true` and once without to compare them.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from colorjax.bench.devices import lowered_flops, machine_columns
from colorjax.models import get_model
from colorjax.models.ddcolor import SIZES, DDColor

# The CPU-sized network of the tests (tests/test_ddcolor.py's widths, 3 decoder layers: one per scale).
TEST_WIDTHS: dict[str, Any] = {
    "depths": (1, 1, 1, 1),
    "dims": (8, 16, 32, 64),
    "nf": 32,
    "num_queries": 4,
    "hidden_dim": 16,
    "num_heads": 2,
    "dim_feedforward": 32,
    "dec_layers": 3,
}
WIDTHS: dict[str, dict[str, Any]] = {"test": TEST_WIDTHS, "tiny": dict(SIZES["tiny"]), "large": dict(SIZES["large"])}
MAX_REPEATS = 3


@dataclasses.dataclass(frozen=True)
class Options:
    """What to run: networks (`test`, `tiny`, `large`), square sizes S, batch sizes, and the time budget."""

    models: tuple[str, ...]
    sizes: tuple[int, ...]
    batches: tuple[int, ...]
    budget_s: float
    max_repeats: int = MAX_REPEATS
    skip: tuple[str, ...] = ()


def options(quick: bool, environ: dict[str, str] | os._Environ = os.environ) -> Options:
    """The defaults (quick: the test network at 64, batch 1 and 2; else tiny and large at 256 and 512, batch 1 and 8,
    half an hour at most; nothing skipped), overridden by `python -m colorjax.bench`'s --models / --sizes / --batches /
    --budget-s / --skip (which it passes as COLORJAX_BENCH_MODELS, _SIZES, _BATCHES, _BUDGET_S, _SKIP)."""
    if quick:
        defaults = Options(("test",), (64,), (1, 2), 120.0, max_repeats=1)
    else:
        defaults = Options(("tiny", "large"), (256, 512), (1, 8), 1800.0)

    def listed(key: str, default: tuple, kind: Callable) -> tuple:
        text = environ.get(f"COLORJAX_BENCH_{key}")
        return tuple(kind(item) for item in text.split(",") if item.strip()) if text else default

    chosen = Options(
        models=listed("MODELS", defaults.models, str.strip),
        sizes=listed("SIZES", defaults.sizes, int),
        batches=listed("BATCHES", defaults.batches, int),
        budget_s=float(environ.get("COLORJAX_BENCH_BUDGET_S") or defaults.budget_s),
        max_repeats=defaults.max_repeats,
        skip=listed("SKIP", (), str.strip),
    )
    unknown = [name for name in chosen.models if name not in WIDTHS]
    if unknown:
        raise ValueError(f"Unknown DDColor network {unknown[0]!r}; choose from: {', '.join(WIDTHS)}.")
    bad_sizes = [size for size in chosen.sizes if size <= 0 or size % 32]
    if bad_sizes:
        raise ValueError(f"DDColor sizes must be positive multiples of 32 (the encoder's stride), not {bad_sizes[0]}.")
    return chosen


@dataclasses.dataclass
class Contender:
    label: str
    precision: str
    run: Callable[[], Any]
    pytorch: bool = False
    default_threads: bool = True  # False: the one-thread PyTorch row (a reference, not the like-for-like one)


class Networks:
    """One network in both frameworks with the same weights: the authors' PyTorch module (None without torch or
    modelscope) and colorjax's module and variables (read from the PyTorch state dict by the importer)."""

    def __init__(self, name: str):
        from colorjax.models.ddcolor_import import state_dict_to_variables

        self.name = name
        widths = WIDTHS[name]
        self.model = get_model("ddcolor", **({"size": name} if name in SIZES else {"size": "tiny", **widths}))
        template = jax.eval_shape(lambda: self.model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1))))
        self.torch, self.torch_model, self.torch_device = _authors_network(widths)
        if self.torch_model is not None:
            state = {key: value.detach().cpu().numpy() for key, value in self.torch_model.state_dict().items()}
            self.variables = state_dict_to_variables(state, template, source="benchmark weights")
        else:  # random weights of the right shapes are all the colorjax rows need
            rng = np.random.default_rng(0)
            self.variables = jax.tree.map(
                lambda leaf: jnp.asarray(0.02 * rng.standard_normal(leaf.shape), leaf.dtype), template
            )
        self.bf16_model = self.model.clone(dtype=jnp.bfloat16)
        self.bf16_variables = jax.tree.map(
            lambda leaf: leaf.astype(jnp.bfloat16) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf,
            self.variables,
        )
        self.apply = jax.jit(lambda v, rgb: self.model.apply(v, rgb, method=DDColor.colorize_rgb))
        self.apply_bf16 = jax.jit(lambda v, rgb: self.bf16_model.apply(v, rgb, method=DDColor.colorize_rgb))

    def flops(self, shape: tuple[int, ...]) -> float:
        """FLOPs of one call of the authors' network on a batch of this shape: the lowered program of colorjax's
        DDColor in the authors' order of operations (`fold_fusion=False`, grouped depthwise convolutions), so the
        count is theirs, not that of colorjax's cheaper rearrangement."""
        authors_order = self.model.clone(fold_fusion=False, depthwise_as_shifts=False)
        apply = jax.jit(lambda v, rgb: authors_order.apply(v, rgb, method=DDColor.colorize_rgb))
        return lowered_flops(apply, self.variables, jax.ShapeDtypeStruct(shape, jnp.float32))

    def contenders(self, rgb: np.ndarray) -> list[Contender]:
        rgb_jax = jnp.asarray(rgb)
        found = [
            Contender("colorjax jit", "float32", lambda: self.apply(self.variables, rgb_jax)),
            Contender("colorjax jit", "bfloat16", lambda: self.apply_bf16(self.bf16_variables, rgb_jax)),
        ]
        if self.torch_model is not None:
            found += _torch_contenders(self.torch, self.torch_model, self.torch_device, rgb)
        return found


def _authors_network(widths: dict[str, Any]) -> tuple[Any, Any, str]:
    """(torch, the authors' DDColor at these widths with `randomise`d weights, its device), or Nones without
    torch or modelscope."""
    try:
        import torch

        from colorjax.bench.ddcolor_torch import authors_ddcolor, randomise

        model = authors_ddcolor(**widths)
    except ImportError:
        return None, None, "cpu"
    randomise(model, seed=0)
    device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    return torch, model.to(device).eval(), device


def _torch_contenders(torch: Any, model: Any, device: str, rgb: np.ndarray) -> list[Contender]:
    """PyTorch eager float32, bfloat16 autocast and (on a CPU with several threads) float32 on one thread."""
    batch = torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))).to(device)
    threads = torch.get_num_threads()

    def forward(bf16: bool, one_thread: bool = False) -> Callable[[], Any]:
        def run():
            if one_thread:
                torch.set_num_threads(1)
            try:
                with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=bf16):
                    out = model(batch)
                if device == "cuda":
                    torch.cuda.synchronize()
                return out
            finally:
                if one_thread:
                    torch.set_num_threads(threads)

        return run

    version = f"pytorch {torch.__version__.split('+')[0]} eager {device}"
    found = [
        Contender(f"{version}, {threads} threads" if device == "cpu" else version, "float32", forward(False), True),
        Contender(f"{version}, autocast", "bfloat16", forward(True), True),
    ]
    if device == "cpu" and threads > 1:
        found.append(Contender(f"{version}, 1 thread", "float32", forward(False, True), True, default_threads=False))
    return found


def _block(value: Any) -> Any:
    return jax.block_until_ready(value) if not hasattr(value, "detach") else value


def _timed_turns(contenders: list[Contender], repeats: int) -> list[float]:
    """Median seconds of each contender over `repeats` turns, after one untimed warm-up call each."""
    for contender in contenders:
        _block(contender.run())
    times: list[list[float]] = [[] for _ in contenders]
    for _ in range(repeats):
        for contender, seconds in zip(contenders, times, strict=True):
            start = time.perf_counter()
            _block(contender.run())
            seconds.append(time.perf_counter() - start)
    return [statistics.median(seconds) for seconds in times]


class Clock:
    """The time budget: learns seconds per FLOP of one turn of all contenders from each setting, and says what
    the next setting would cost."""

    def __init__(self, budget_s: float):
        self.budget_s, self.start = budget_s, time.perf_counter()
        self.seconds_per_flop: float | None = None

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def estimate(self, flops: float, calls: int) -> float | None:
        """Seconds for `calls` turns of all contenders at `flops` each, from the last setting's rate (None at first)."""
        return None if self.seconds_per_flop is None else self.seconds_per_flop * flops * calls

    def learn(self, flops: float, turn_seconds: float) -> None:
        self.seconds_per_flop = turn_seconds / flops


def skipped(contender: Contender, words: tuple[str, ...]) -> bool:
    """Whether `--skip`'s words leave this contender out: one of them is in its label or precision."""
    return any(word and (word in contender.label or word == contender.precision) for word in words)


def _setting_rows(
    networks: Networks, size: int, batch: int, clock: Clock, max_repeats: int, skip: tuple[str, ...] = ()
) -> list[dict]:
    setting = {"model": networks.name, "size": size, "batch": batch}
    rgb = np.random.default_rng(size + batch).uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
    contenders = networks.contenders(rgb)
    left_out = [c for c in contenders if skipped(c, skip)]
    contenders = [c for c in contenders if not skipped(c, skip)]
    notes = [{**setting, "contender": f"skipped (--skip): {c.label}", "precision": c.precision} for c in left_out]
    flops = networks.flops(rgb.shape)
    estimate = clock.estimate(flops, 2)  # warm-up + one timed turn, the least a setting needs
    if estimate is not None and estimate > clock.left():
        note = f"skipped: about {estimate:.0f} s for a warm-up and one turn, {max(clock.left(), 0):.0f} s left"
        return [{**setting, "contender": note}, *notes]
    repeats = max_repeats
    if estimate is not None:  # as many turns as fit in a third of what is left, at least one
        repeats = int(min(max_repeats, max(1, clock.left() / 3 / (estimate / 2) - 1)))
    seconds = _timed_turns(contenders, repeats)
    clock.learn(flops, sum(seconds))
    return _rows(networks, contenders, seconds, flops, rgb, setting, repeats) + notes


def _rows(
    networks: Networks,
    contenders: list[Contender],
    seconds: list[float],
    flops: float,
    rgb: np.ndarray,
    setting: dict,
    repeats: int,
) -> list[dict]:
    batch = setting["batch"]
    like_for_like = {
        c.precision: s for c, s in zip(contenders, seconds, strict=True) if c.pytorch and c.default_threads
    }
    fastest = min((s for c, s in zip(contenders, seconds, strict=True) if c.pytorch), default=None)
    rows = []
    for contender, s in zip(contenders, seconds, strict=True):
        row = {
            **setting,
            "contender": contender.label,
            "precision": contender.precision,
            "ms_per_image": 1e3 * s / batch,
            "images_per_s": batch / s,
            "gflops_per_image": flops / batch / 1e9,
            "turns": repeats,
        }
        if not contender.pytorch and contender.precision in like_for_like:
            row["vs_pytorch"] = like_for_like[contender.precision] / s
        if fastest is not None:
            row["vs_pytorch_fastest"] = fastest / s
        rows.append(row)
    agreement = _agreement(contenders) if networks.torch_model is not None else None
    if agreement is not None:
        rows[0]["max_ab_diff_vs_pytorch"] = agreement
    return rows


def _agreement(contenders: list[Contender]) -> float | None:
    """Largest |ab| difference between colorjax float32 and PyTorch float32 (same weights, same input); None when
    `--skip` left either out."""
    float32 = [c for c in contenders if c.precision == "float32" and c.default_threads]
    colorjax = next((c for c in float32 if not c.pytorch), None)
    pytorch = next((c for c in float32 if c.pytorch), None)
    if colorjax is None or pytorch is None or colorjax is not contenders[0]:
        return None
    ours = np.asarray(colorjax.run(), np.float64)
    theirs = pytorch.run().detach().float().cpu().numpy().transpose(0, 2, 3, 1)
    return float(np.max(np.abs(ours - theirs)))


def bench_ddcolor(quick: bool) -> list[dict]:
    chosen = options(quick)
    header = machine_columns()
    print(
        f"DDColor bench: {header['cpu']}; threads: {header['threads']}; XLA_FLAGS {header['xla_flags']}; "
        f"budget {chosen.budget_s:.0f} s" + (f"; skipping {', '.join(chosen.skip)}" if chosen.skip else ""),
        flush=True,
    )
    clock = Clock(chosen.budget_s)
    rows = []
    for name in chosen.models:
        networks = Networks(name)
        for size in sorted(chosen.sizes):
            for batch in sorted(chosen.batches):
                setting_rows = _setting_rows(networks, size, batch, clock, chosen.max_repeats, chosen.skip)
                print(f"  {name} {size}x{size} batch {batch}: {_summary(setting_rows)}", flush=True)
                rows += [{**row, **header} for row in setting_rows]
        del networks
    return rows


def _summary(rows: list[dict]) -> str:
    """One progress line: colorjax float32's ms per image and its ratios, or why the setting was skipped."""
    first = rows[0]
    if "ms_per_image" not in first:
        return first["contender"]
    ratios = ", ".join(f"{first[key]:.2f}x {key}" for key in ("vs_pytorch", "vs_pytorch_fastest") if key in first)
    return f"colorjax float32 {first['ms_per_image']:.0f} ms/image" + (f" ({ratios})" if ratios else "")
