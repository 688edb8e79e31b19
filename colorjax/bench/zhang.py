"""Zhang et al. ECCV16 speed: colorjax vs the same network in PyTorch, the train step, and soft-encoding.

Rows:
- `eccv16_inference`: full-width ECCV16 at 256x256 (the authors' demo size), batch 8 on a CPU and 64 on an
  accelerator, colorjax `jit(apply)` in float32 and bfloat16 vs PyTorch eager on the SAME device (CUDA when JAX has
  a GPU; `inference_mode`, and bf16 autocast) with the same weights; on a CPU also colorjax with its first conv as an
  im2col matmul (the alternative ECCV16 chose against), on an accelerator the space-to-batch dilated blocks. PyTorch
  rows are skipped where torch is not installed.
- `eccv16_train_step`: the trainer's step (`train.make_train_step`) of `configs/zhang_eccv16.py` (rebalanced loss,
  Adam 3e-5 with weight decay) at width 1.0 on 176x176 crops (the paper's training size), float32 and bfloat16
  (`config.precision`); batch 2 on a CPU, 40 (the paper's) and 256 on an accelerator; vs the same step in PyTorch.
FLOPs are the lowered program's (`colorjax.bench.devices`), so TFLOP/s and MFU are honest on GPUs too; MFU is
printed where the device's bf16 peak is known.
- `soft_encode`, `cross_entropy_gradient`: the loss's soft targets for a batch-40 176x176 target grid (40 x 44 x 44
  pixels) as K (index, weight) pairs, as the loss uses them, vs dense (..., 313) rows; alone and with the
  cross-entropy gradient.
Ratios: `vs_pytorch_same_precision`, and `vs_pytorch_fastest` (PyTorch's fastest contender at any precision over
the row's time): the fastest colorjax contender against the fastest PyTorch one is the headline printed, with the
CPU's model and ISA class (AVX2 / AVX-512 / AVX512-BF16 / AMX), the threads and XLA_FLAGS, kept in every CPU row.
bf16 against bf16 autocast alone would flatter colorjax about 10x on a CPU without native bf16, where PyTorch's bf16
is far slower than its own fp32. To time the AVX2 class on an AVX-512 machine: `XLA_FLAGS=--xla_cpu_max_isa=AVX2
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python -m colorjax.bench zhang` (the `aten_cpu` column shows what
ATen used; ATen's setting alone leaves PyTorch's bf16 convolutions on oneDNN's AVX512-BF16 kernels: measured, its
autocast stayed 1.6x faster than its fp32 under `ATEN_CPU_CAPABILITY=avx2`).
`quick=True` shrinks widths, batches and sizes to finish in seconds.

`--levers` (`lever_rows`) runs instead issue 25's CPU lever table for ECCV16 at 256, or with `--model siggraph17`
for SIGGRAPH17 at 256 in its automatic mode (zero hints and mask, as the authors' port feeds them; PyTorch: the same
port, `torch_siggraph17`): every contender in turns in one process, at batch 8 and at batch 1, each with its ratio
to PyTorch's fastest contender at the same batch: colorjax's default (the first conv as a plain conv); ECCV16 only,
the first conv as an im2col matmul, blocks 1-6's BatchNorms folded into the next convs at load time
(`eccv16.fold_batch_norms`), and both; bfloat16 (flax `dtype`: bf16 products, bf16 results); bfloat16 with float32
accumulation (`accumulation_dtype`, `preferred_element_type`); ECCV16 only, that with its convs as per-tap bf16
matmuls, all or blocks 4-7 (`ECCV16.matmul_blocks`: XLA:CPU converts a bf16 conv to f32 but runs a bf16 dot with
f32 accumulation on YNNPACK's AVX512-BF16 kernel, `python -m colorjax.bench bf16_dots`); the ONNX export in
onnxruntime (`colorize --runtime onnx`); PyTorch fp32 and bf16 autocast, each in NCHW and channels_last. A PyTorch contender whose first call is 3x
or more slower than PyTorch's fastest at the same batch is timed by that call alone (`turns` 1): bf16 autocast on a
CPU without native bf16 takes minutes a call. Process-wide levers are one run each: XLA's oneDNN kernels
(`XLA_FLAGS=--xla_cpu_use_onednn=true`, what `colorize` adds) and the ISA restrictions above; the rows keep them in
their machine columns.
"""

import copy
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import quantize
from colorjax.bench.devices import lowered_flops, machine_columns, speed_columns, versus_fastest
from colorjax.bench.timing import interleaved_median_seconds
from colorjax.bench.train_step import config_train_step, repo_config
from colorjax.models import get_model
from colorjax.models.eccv16 import fold_batch_norms
from colorjax.models.published import state_dict_to_variables
from colorjax.models.width import scaled_width


def torch_eccv16(torch, width: float = 1.0):
    """The authors' ECCV16 forward in PyTorch (logits and the T = 1 decoded ab), at a width multiplier; with
    width 1.0 its state dict has the published layout (the tests import it as the reference)."""
    nn = torch.nn

    def c(channels):
        return scaled_width(channels, width)

    def block(channels_in, channels, strides, dilation=1):
        layers = []
        for stride in strides:
            layers += [
                nn.Conv2d(channels_in, channels, 3, stride, padding=dilation, dilation=dilation),
                nn.ReLU(True),
            ]
            channels_in = channels
        return nn.Sequential(*layers, nn.BatchNorm2d(channels))

    class ECCV16Torch(nn.Module):
        def __init__(self):
            super().__init__()
            self.model1 = block(1, c(64), (1, 2))
            self.model2 = block(c(64), c(128), (1, 2))
            self.model3 = block(c(128), c(256), (1, 1, 2))
            self.model4 = block(c(256), c(512), (1, 1, 1))
            self.model5 = block(c(512), c(512), (1, 1, 1), dilation=2)
            self.model6 = block(c(512), c(512), (1, 1, 1), dilation=2)
            self.model7 = block(c(512), c(512), (1, 1, 1))
            self.model8 = nn.Sequential(
                nn.ConvTranspose2d(c(512), c(256), 4, 2, 1),
                nn.ReLU(True),
                nn.Conv2d(c(256), c(256), 3, 1, 1),
                nn.ReLU(True),
                nn.Conv2d(c(256), c(256), 3, 1, 1),
                nn.ReLU(True),
                nn.Conv2d(c(256), 313, 1),
            )
            self.model_out = nn.Conv2d(313, 2, 1, bias=False)
            self.upsample4 = nn.Upsample(scale_factor=4, mode="bilinear")
            with torch.no_grad():
                centres = torch.from_numpy(quantize.ab_bin_centres() / 110.0)
                self.model_out.weight.copy_(centres.T[:, :, None, None])

        def forward(self, L):
            x = (L - 50.0) / 100.0
            for block_ in (self.model1, self.model2, self.model3, self.model4):
                x = block_(x)
            logits = self.model8(self.model7(self.model6(self.model5(x))))
            ab = 110.0 * self.upsample4(self.model_out(torch.softmax(logits, dim=1)))
            return logits, ab

    return ECCV16Torch().eval()


def torch_siggraph17(torch, width: float = 1.0):
    """The authors' SIGGRAPH17 forward in PyTorch (richzhang/colorization `colorizers/siggraph17.py`: the 529-way
    class logits and ab), at a width multiplier; with width 1.0 its state dict has the published layout (the tests
    import it as the reference). Without hints it feeds zero ab and a zero mask, as the port does."""
    nn = torch.nn

    def c(channels):
        return scaled_width(channels, width)

    def convs(channels_in, channels, count, dilation=1):
        layers = []
        for _ in range(count):
            layers += [
                nn.Conv2d(channels_in, channels, 3, 1, padding=dilation, dilation=dilation),
                nn.ReLU(True),
            ]
            channels_in = channels
        return layers

    class SIGGRAPH17Torch(nn.Module):
        def __init__(self):
            super().__init__()
            self.model1 = nn.Sequential(*convs(4, c(64), 2), nn.BatchNorm2d(c(64)))
            self.model2 = nn.Sequential(*convs(c(64), c(128), 2), nn.BatchNorm2d(c(128)))
            self.model3 = nn.Sequential(*convs(c(128), c(256), 3), nn.BatchNorm2d(c(256)))
            self.model4 = nn.Sequential(*convs(c(256), c(512), 3), nn.BatchNorm2d(c(512)))
            self.model5 = nn.Sequential(*convs(c(512), c(512), 3, 2), nn.BatchNorm2d(c(512)))
            self.model6 = nn.Sequential(*convs(c(512), c(512), 3, 2), nn.BatchNorm2d(c(512)))
            self.model7 = nn.Sequential(*convs(c(512), c(512), 3), nn.BatchNorm2d(c(512)))
            self.model8up = nn.Sequential(nn.ConvTranspose2d(c(512), c(256), 4, 2, 1))
            self.model8 = nn.Sequential(nn.ReLU(True), *convs(c(256), c(256), 2), nn.BatchNorm2d(c(256)))
            self.model9up = nn.Sequential(nn.ConvTranspose2d(c(256), c(128), 4, 2, 1))
            self.model9 = nn.Sequential(nn.ReLU(True), *convs(c(128), c(128), 1), nn.BatchNorm2d(c(128)))
            self.model10up = nn.Sequential(nn.ConvTranspose2d(c(128), c(128), 4, 2, 1))
            self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(c(128), c(128), 3, 1, 1), nn.LeakyReLU(0.2))
            self.model3short8 = nn.Sequential(nn.Conv2d(c(256), c(256), 3, 1, 1))
            self.model2short9 = nn.Sequential(nn.Conv2d(c(128), c(128), 3, 1, 1))
            self.model1short10 = nn.Sequential(nn.Conv2d(c(64), c(128), 3, 1, 1))
            self.model_class = nn.Sequential(nn.Conv2d(c(256), 529, 1))
            self.model_out = nn.Sequential(nn.Conv2d(c(128), 2, 1), nn.Tanh())

        def forward(self, L, ab=None, mask=None):
            # As the authors' port: no hints = zero ab and mask; ab / 110 and the raw 0/1 mask otherwise.
            zeros = L * 0
            ab = torch.cat([zeros, zeros], dim=1) if ab is None else ab
            mask = zeros if mask is None else mask
            x = torch.cat([(L - 50.0) / 100.0, ab / 110.0, mask], dim=1)
            conv1 = self.model1(x)
            conv2 = self.model2(conv1[:, :, ::2, ::2])
            conv3 = self.model3(conv2[:, :, ::2, ::2])
            x = self.model4(conv3[:, :, ::2, ::2])
            x = self.model7(self.model6(self.model5(x)))
            conv8 = self.model8(self.model8up(x) + self.model3short8(conv3))
            x = self.model9(self.model9up(conv8) + self.model2short9(conv2))
            x = self.model10(self.model10up(x) + self.model1short10(conv1))
            return self.model_class(conv8), 110.0 * self.model_out(x)

    return SIGGRAPH17Torch().eval()


# The models of the lever table: their PyTorch port, the output the contenders are compared on, the printed name.
TORCH_PORTS = {"eccv16": torch_eccv16, "siggraph17": torch_siggraph17}
COMPARED_OUTPUT = {"eccv16": "logits", "siggraph17": "chroma"}
DISPLAY_NAMES = {"eccv16": "ECCV16", "siggraph17": "SIGGRAPH17"}


def _torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_device(torch) -> str:
    """PyTorch runs on the device JAX runs on: CUDA when JAX has a GPU and torch sees it, else the CPU."""
    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def _synchronized(torch, device: str, fn):
    """`fn` that waits for the GPU before returning, so wall time counts the work (JAX's block_until_ready does
    the same for the colorjax contenders)."""
    if device != "cuda":
        return fn

    def wrapped():
        out = fn()
        torch.cuda.synchronize()
        return out

    return wrapped


def inference_setting(quick: bool) -> tuple[float, int, int]:
    """(width, batch, size): batch 64 on an accelerator, 8 on a CPU, at the authors' 256x256 demo size."""
    if quick:
        return 0.25, 2, 64
    return (1.0, 8, 256) if jax.default_backend() == "cpu" else (1.0, 64, 256)


def _model_and_weights(name: str, width: float):
    """(ECCV16 or SIGGRAPH17 at `width`, its variables, the PyTorch port with the same weights or None without
    torch)."""
    model = get_model(name, width=width)
    template = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1))))
    torch = _torch_or_none()
    if torch is not None:
        torch.manual_seed(0)
        torch_model = TORCH_PORTS[name](torch, width)
        state = {k: v.numpy() for k, v in torch_model.state_dict().items()}
        variables = state_dict_to_variables(name, state, template, source="benchmark weights")
    else:  # random weights of the right shapes are all the speed comparison needs
        rng = np.random.default_rng(0)
        variables = jax.tree.map(lambda leaf: jnp.asarray(0.01 * rng.standard_normal(leaf.shape), leaf.dtype), template)
        torch_model = None
    return model, variables, torch_model


def _inference_rows(quick: bool) -> list[dict]:
    width, batch, size = inference_setting(quick)
    on_cpu = jax.default_backend() == "cpu"
    repeats = 3 if on_cpu else 20
    setting = {"width": width, "batch": batch, "size": size}
    L = np.random.default_rng(0).uniform(0, 100, (batch, size, size, 1)).astype(np.float32)
    model, variables, torch_model = _model_and_weights("eccv16", width)
    torch = _torch_or_none() if torch_model is not None else None
    L_jax = jnp.asarray(L)

    # colorjax contenders: (label, precision, model). The im2col-matmul first layer (CPU) and the space-to-batch
    # dilated blocks (accelerators) are the alternatives `ECCV16` chose between.
    variants = [
        ("colorjax jit", "float32", model),
        ("colorjax jit", "bfloat16", model.clone(dtype=jnp.bfloat16)),
    ]
    if on_cpu:
        variants.append(
            (
                "colorjax jit, first conv as a matmul",
                "float32",
                model.clone(first_conv_as_matmul=True),
            )
        )
    else:
        variants += [
            ("colorjax jit, dilated blocks as space-to-batch", precision, m)
            for precision, m in (
                ("float32", model.clone(dilation_as_space_to_batch=True)),
                ("bfloat16", model.clone(dilation_as_space_to_batch=True, dtype=jnp.bfloat16)),
            )
        ]
    applies = [jax.jit(m.apply) for _, _, m in variants]
    flops = lowered_flops(applies[0], variables, L_jax)
    contenders = [lambda a=a: a(variables, L_jax) for a in applies]
    labels = [(label, precision) for label, precision, _ in variants]
    if torch is not None:
        device = _torch_device(torch)
        torch_model = torch_model.to(device)
        L_torch = torch.from_numpy(L).permute(0, 3, 1, 2).contiguous().to(device)
        if device == "cuda":
            torch_model = torch_model.to(memory_format=torch.channels_last)
            L_torch = L_torch.contiguous(memory_format=torch.channels_last)

        def torch_forward(bf16: bool):
            with torch.inference_mode(), torch.autocast(device, torch.bfloat16, enabled=bf16):
                return torch_model(L_torch)

        for precision in ("float32", "bfloat16"):
            bf16 = precision == "bfloat16"
            contenders.append(_synchronized(torch, device, lambda bf16=bf16: torch_forward(bf16)))
            how = "autocast" if bf16 else "inference_mode"
            labels.append((f"pytorch {torch.__version__} eager {device}, {how}", precision))
    seconds = interleaved_median_seconds(contenders, repeats)
    rows = []
    for (label, precision), s in zip(labels, seconds, strict=True):
        row = {
            "benchmark": "eccv16_inference",
            "contender": label,
            "precision": precision,
            "images_per_s": batch / s,
            "ms_per_image": 1e3 * s / batch,
            "gflops_per_image": flops / batch / 1e9,
            **speed_columns(flops, s),
            **setting,
        }
        if on_cpu:
            row.update(machine_columns())
        rows.append(row)
    if torch is not None:
        _compare_with_pytorch(rows, seconds, "ms_per_image", f"ECCV16 inference, batch {batch} at {size}")
        logits_torch = torch_forward(False)[0].float().permute(0, 2, 3, 1).cpu().numpy()
        logits = np.asarray(applies[0](variables, L_jax)["logits"])
        rows[0]["max_logits_diff_vs_pytorch"] = float(np.abs(logits - logits_torch).max())
    return rows


def train_step_settings(quick: bool) -> list[tuple[float, int, int]]:
    """(width, batch, size) of the train-step rows: the paper's batch 40 and a large 256 on an accelerator."""
    if quick:
        return [(0.25, 2, 64)]
    if jax.default_backend() == "cpu":
        return [(1.0, 2, 176)]
    return [(1.0, 40, 176), (1.0, 256, 176)]


def _train_step_rows(quick: bool) -> list[dict]:
    rows = []
    for width, batch, size in train_step_settings(quick):
        steps, flops, labels = [], [], []
        for precision in ("float32", "bfloat16"):
            # The paper's recipe: rebalanced loss, Adam 3e-5 with L2 weight decay.
            config = repo_config("zhang_eccv16.py")
            config.model.width, config.batch_size, config.data.image_size = width, batch, size
            config.precision = precision
            one_step, step_flops = config_train_step(config)
            steps.append(one_step)
            flops.append(step_flops)
            labels.append(("colorjax trainer step, configs/zhang_eccv16.py", precision))
        torch = _torch_or_none()
        if torch is not None:
            device = _torch_device(torch)
            for precision in ("float32", "bfloat16"):
                steps.append(torch_train_step(torch, device, width, batch, size, precision))
                flops.append(flops[0])
                how = "Adam + soft-target CE" + (", autocast" if precision == "bfloat16" else "")
                labels.append((f"pytorch {torch.__version__} eager {device}, {how}", precision))
        seconds = interleaved_median_seconds(steps, 3 if jax.default_backend() == "cpu" else 10)
        setting_rows = []
        for (label, precision), s, step_flops in zip(labels, seconds, flops, strict=True):
            row = {
                "benchmark": "eccv16_train_step",
                "contender": label,
                "precision": precision,
                "images_per_s": batch / s,
                "ms_per_step": 1e3 * s,
                "gflops_per_image": step_flops / batch / 1e9,
                **speed_columns(step_flops, s),
                "width": width,
                "batch": batch,
                "size": size,
            }
            if jax.default_backend() == "cpu":
                row.update(machine_columns())
            setting_rows.append(row)
        if torch is not None:
            _compare_with_pytorch(setting_rows, seconds, "ms_per_step", f"ECCV16 train step, batch {batch} at {size}")
        rows += setting_rows
    return rows


def _compare_with_pytorch(rows: list[dict], seconds: list[float], key: str, what: str) -> None:
    """Ratio columns on the colorjax rows: against PyTorch at the same precision, and against PyTorch's fastest
    contender at any precision (the honest one on a CPU, printed as the headline with the CPU's ISA)."""
    same = {row["precision"]: s for row, s in zip(rows, seconds, strict=True) if row["contender"].startswith("pytorch")}
    for row, s in zip(rows, seconds, strict=True):
        if not row["contender"].startswith("pytorch") and row["precision"] in same:
            row["vs_pytorch_same_precision"] = same[row["precision"]] / s
    headline = versus_fastest(rows, key)
    where = f"; {rows[0]['cpu']}, threads {rows[0]['threads']}" if "cpu" in rows[0] else ""
    print(f"  {what}: {headline}{where}", flush=True)


def torch_train_step(torch, device: str, width: float, batch: int, size: int, precision: str):
    """One PyTorch training step of the same network and loss, as a callable: ECCV16 forward (autocast to bf16
    when asked; channels_last on CUDA), class-rebalanced cross-entropy against K = 5 soft-encoded targets at 1/4
    resolution, Adam 3e-5 with weight decay 1e-3, on random data. The speed contender of the trainer step."""
    torch.manual_seed(0)
    model = torch_eccv16(torch, width).train().to(device)
    memory_format = torch.channels_last if device == "cuda" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-5, betas=(0.9, 0.99), weight_decay=1e-3)
    centres = torch.from_numpy(np.array(quantize.ab_bin_centres(), np.float32)).to(device)
    rebalance = quantize.rebalance_weights(quantize.load_prior(), 0.5)
    rebalance = torch.from_numpy(np.asarray(rebalance, np.float32)).to(device)
    rng = np.random.default_rng(0)
    L = torch.from_numpy(rng.uniform(0, 100, (batch, 1, size, size)).astype(np.float32))
    ab = torch.from_numpy(rng.uniform(-60, 60, (batch, 2, size, size)).astype(np.float32))
    L = L.to(device).contiguous(memory_format=memory_format)
    ab = ab.to(device)
    bf16 = precision == "bfloat16"

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, torch.bfloat16, enabled=bf16):
            logits, _ = model(L)
        targets = ab[:, :, ::4, ::4].permute(0, 2, 3, 1).reshape(-1, 2)
        distances = torch.cdist(targets, centres) ** 2
        nearest, indices = torch.topk(distances, 5, dim=-1, largest=False)
        weights = torch.softmax(-(nearest - nearest[:, :1]) / (2 * 5.0**2), dim=-1)
        log_p = torch.log_softmax(logits.float().permute(0, 2, 3, 1).reshape(-1, 313), dim=-1)
        per_pixel = -(weights * log_p.gather(1, indices)).sum(-1) * rebalance[indices[:, 0]]
        per_pixel.mean().backward()
        optimizer.step()
        return per_pixel

    return _synchronized(torch, device, step)


def _soft_encode_rows(quick: bool) -> list[dict]:
    shape = (4, 44, 44, 2) if quick else (40, 44, 44, 2)
    ab = jax.random.uniform(jax.random.key(0), shape, minval=-60.0, maxval=60.0)
    logits = jax.random.normal(jax.random.key(1), (*shape[:-1], quantize.AB_NUM_BINS))
    pixels = int(np.prod(shape[:-1]))

    def sparse_cross_entropy(logits, ab):
        indices, weights = quantize.soft_encode_sparse(ab, k=5)
        log_probabilities = jax.nn.log_softmax(logits)
        return -jnp.sum(weights * jnp.take_along_axis(log_probabilities, indices, axis=-1))

    def dense_cross_entropy(logits, ab):
        return -jnp.sum(quantize.soft_encode(ab, k=5) * jax.nn.log_softmax(logits))

    sparse_gradient = jax.jit(jax.grad(sparse_cross_entropy))
    dense_gradient = jax.jit(jax.grad(dense_cross_entropy))
    contenders = {
        ("soft_encode", "sparse: K (index, weight) pairs (the loss's)"): lambda: quantize.soft_encode_sparse(ab, k=5),
        ("soft_encode", "dense: (..., 313) targets"): lambda: quantize.soft_encode(ab, k=5),
        ("cross_entropy_gradient", "sparse targets (the loss's)"): lambda: sparse_gradient(logits, ab),
        ("cross_entropy_gradient", "dense targets"): lambda: dense_gradient(logits, ab),
    }
    seconds = interleaved_median_seconds(list(contenders.values()), repeats=3 if quick else 5)
    rows = [
        {
            "benchmark": benchmark,
            "contender": contender,
            "megapixels_per_s": pixels / s / 1e6,
            "ms": 1e3 * s,
            "pixels": pixels,
            "k": 5,
        }
        for (benchmark, contender), s in zip(contenders, seconds, strict=True)
    ]
    for sparse, dense in ((rows[0], rows[1]), (rows[2], rows[3])):
        sparse["speedup_vs_dense"] = dense["ms"] / sparse["ms"]
    return rows


def lever_model(environ=os.environ) -> str:
    """The model of `zhang --levers`: `--model` (COLORJAX_BENCH_MODEL), eccv16 by default, or siggraph17."""
    name = environ.get("COLORJAX_BENCH_MODEL") or "eccv16"
    if name not in TORCH_PORTS:
        raise ValueError(f"zhang --levers times {' or '.join(TORCH_PORTS)}, not {name!r}.")
    return name


def _lever_variants(name: str, model, variables, batch: int) -> list[tuple]:
    """(label, precision, model, variables, batches) of the colorjax contenders: the default at `batch` and 1;
    ECCV16's own levers (its 1-channel first conv as an im2col matmul, blocks 1-6's BatchNorms folded; SIGGRAPH17's
    first conv takes 4 channels and its BatchNorms also feed the shortcuts, so neither applies as written); bfloat16,
    and bfloat16 with float32 accumulation; for ECCV16 the latter also with its convs as per-tap matmuls (all, or
    the 512-channel blocks 4-7), XLA:CPU's only route to native bf16 arithmetic (`eccv16.conv_as_tap_matmuls`)."""
    bf16 = jnp.bfloat16
    default = "colorjax default (first conv as a conv)" if name == "eccv16" else "colorjax default"
    variants = [(default, "float32", model, variables, (batch, 1))]
    if name == "eccv16":
        folded = fold_batch_norms(variables)
        variants += [
            (
                "colorjax, first conv as a matmul",
                "float32",
                model.clone(first_conv_as_matmul=True),
                variables,
                (batch, 1),
            ),
            ("colorjax, BatchNorms folded", "float32", model.clone(batch_norm_folded=True), folded, (batch,)),
            (
                "colorjax, BatchNorms folded, first conv as a matmul",
                "float32",
                model.clone(batch_norm_folded=True, first_conv_as_matmul=True),
                folded,
                (batch,),
            ),
        ]
    variants += [
        ("colorjax bf16", "bfloat16", model.clone(dtype=bf16), variables, (batch,)),
        (
            "colorjax bf16, fp32 accumulation",
            "bfloat16",
            model.clone(dtype=bf16, accumulation_dtype=jnp.float32),
            variables,
            (batch,),
        ),
    ]
    if name == "eccv16":
        mixed = model.clone(dtype=bf16, accumulation_dtype=jnp.float32)
        variants += [
            (
                f"colorjax bf16, fp32 accumulation, {which} as per-tap matmuls",
                "bfloat16",
                mixed.clone(matmul_blocks=blocks),
                variables,
                (batch,),
            )
            for which, blocks in (("all convs", (1, 2, 3, 4, 5, 6, 7, 8)), ("blocks 4-7", (4, 5, 6, 7)))
        ]
    return variants


def lever_rows(quick: bool, name: str = "eccv16") -> list[dict]:
    """Issue 25's CPU levers for ECCV16 or SIGGRAPH17 inference (module docstring), timed in turns in one process."""
    width, batch, size = inference_setting(quick)
    model, variables, torch_model = _model_and_weights(name, width)
    output = COMPARED_OUTPUT[name]
    variants = _lever_variants(name, model, variables, batch)
    inputs = {
        b: np.random.default_rng(b).uniform(0, 100, (b, size, size, 1)).astype(np.float32) for b in sorted({batch, 1})
    }
    contenders = []  # (label, precision, batch, fn, compares its output or not)
    for label, precision, m, v, batches in variants:
        apply = jax.jit(m.apply)
        for b in batches:
            L = jnp.asarray(inputs[b])
            contenders.append((label, precision, b, lambda apply=apply, v=v, L=L: apply(v, L), True))
    with tempfile.TemporaryDirectory() as folder:
        contenders += _onnx_contenders(model, variables, size, inputs, Path(folder))
        torch = _torch_or_none() if torch_model is not None else None
        if torch is not None:
            contenders += _torch_contenders(torch, torch_model, inputs)
        repeats = 3 if jax.default_backend() == "cpu" else 10
        once = _timed_once_when_slow(contenders)
        again = [i for i in range(len(contenders)) if i not in once]
        seconds = dict(zip(again, interleaved_median_seconds([contenders[i][3] for i in again], repeats), strict=True))
        seconds.update(once)
        reference = {c[2]: np.asarray(c[3]()[output]) for c in contenders if c[0] == variants[0][0]}
        rows = []
        for i, (label, precision, b, fn, compared) in enumerate(contenders):
            row = {
                "benchmark": f"{name}_cpu_levers",
                "contender": label,
                "precision": precision,
                "batch": b,
                "ms_per_image": 1e3 * seconds[i] / b,
                "turns": 1 if i in once else repeats,
                "width": width,
                "size": size,
            }
            if compared:
                ours = np.asarray(fn()[output], np.float32)
                row[f"max_{output}_diff_vs_default"] = float(np.abs(ours - reference[b]).max())
            row.update(machine_columns())
            rows.append(row)
    for b in sorted({batch, 1}, reverse=True):
        same_batch = [row for row in rows if row["batch"] == b]
        headline = versus_fastest(same_batch, "ms_per_image")
        if headline:
            print(f"  {DISPLAY_NAMES[name]} CPU levers, batch {b} at {size}: {headline}; {rows[0]['cpu']}", flush=True)
    return rows


# A PyTorch contender whose first call takes this many times PyTorch's fastest at the same batch cannot be its
# fastest: that call is its time, instead of warm-up plus every turn (PyTorch's bf16 autocast on a CPU without native
# bf16 is 7-20x its fp32, minutes a call at batch 8, README "Performance").
SLOW_PYTORCH_FACTOR = 3.0


def _timed_once_when_slow(contenders: list[tuple]) -> dict[int, float]:
    """{index: seconds of its first call} of the PyTorch contenders that `too_slow_to_repeat` leaves out of the
    turns; each PyTorch contender is called once here."""
    first = {}
    for i, (label, _, _, fn, _) in enumerate(contenders):
        if label.startswith("pytorch"):
            start = time.perf_counter()
            fn()
            first[i] = time.perf_counter() - start
    slow = too_slow_to_repeat({i: (contenders[i][2], s) for i, s in first.items()})
    return {i: first[i] for i in slow}


def too_slow_to_repeat(first_calls: dict, factor: float = SLOW_PYTORCH_FACTOR) -> set:
    """The keys of `first_calls` ({key: (batch, seconds of one call)}) at least `factor` times slower than the
    fastest at the same batch: they cannot be the fastest."""
    fastest: dict[int, float] = {}
    for batch, seconds in first_calls.values():
        fastest[batch] = min(seconds, fastest.get(batch, seconds))
    return {key for key, (batch, seconds) in first_calls.items() if seconds >= factor * fastest[batch]}


def _onnx_contenders(model, variables, size: int, inputs: dict, folder: Path) -> list[tuple]:
    """The ONNX export (as `colorize --runtime onnx` makes it: without XLA:CPU's fast paths) in onnxruntime's CPU
    provider, at every batch in `inputs`; none without jax2onnx / onnxruntime."""
    try:
        from colorjax.inference.export import export_onnx, forward_function, without_xla_cpu_fast_paths
        from colorjax.inference.onnx_runtime import OnnxModel

        plain = without_xla_cpu_fast_paths(model)
        label, _, _ = export_onnx(forward_function(plain, variables), size, folder / "model.onnx")
        session = OnnxModel(folder / "model.onnx")
    except Exception as error:  # an optional extra: the table goes on without it
        print(f"  no ONNX contender: {type(error).__name__}: {str(error).splitlines()[0]}", flush=True)
        return []
    return [
        (f"onnxruntime CPU (export polymorphic in {label})", "float32", b, lambda L=L: session(L), True)
        for b, L in inputs.items()
    ]


def _torch_contenders(torch, torch_model, inputs: dict) -> list[tuple]:
    """PyTorch eager `inference_mode` in float32 and bf16 autocast, NCHW and channels_last, at every batch."""
    contenders = []
    nets = {"NCHW": torch_model, "channels_last": copy.deepcopy(torch_model).to(memory_format=torch.channels_last)}
    for b, L in inputs.items():
        L_torch = torch.from_numpy(L).permute(0, 3, 1, 2).contiguous()
        for layout, net in nets.items():
            memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            x = L_torch.contiguous(memory_format=memory_format)
            for precision in ("float32", "bfloat16"):

                def forward(net=net, x=x, bf16=precision == "bfloat16"):
                    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                        return net(x)

                how = "autocast" if precision == "bfloat16" else "inference_mode"
                contenders.append(
                    (f"pytorch {torch.__version__} eager cpu, {how}, {layout}", precision, b, forward, False)
                )
    return contenders


def bench_zhang(quick: bool) -> list[dict]:
    if os.environ.get("COLORJAX_BENCH_LEVERS"):
        return lever_rows(quick, lever_model())
    return _soft_encode_rows(quick) + _inference_rows(quick) + _train_step_rows(quick)
