"""Zhang et al. ECCV16 speed: colorjax vs the same network in PyTorch, the train step, and soft-encoding.

Rows:
- `eccv16_inference`: full-width ECCV16, batch 8 at 256x256 (the authors' demo size), colorjax `jit(apply)` vs
  PyTorch eager under `torch.inference_mode()` with the same weights and the same number of CPU threads; both
  return logits and decoded ab. Skipped for PyTorch where torch is not installed.
- `eccv16_train_step`: the trainer's step (`train.make_train_step`) of `configs/zhang_eccv16.py` (rebalanced loss,
  Adam 3e-5 with weight decay) at width 1.0 on 176x176 crops (the paper's training size), batch 2 on a CPU; with
  XLA's FLOP count, so an accelerator's time for the 18M training images (450k x 40) can be estimated.
- `soft_encode`, `cross_entropy_gradient`: the loss's soft targets for a batch-40 176x176 target grid (40 x 44 x 44
  pixels) as K (index, weight) pairs, as the loss uses them, vs dense (..., 313) rows; alone and with the
  cross-entropy gradient.
`quick=True` shrinks widths, batches and sizes to finish in seconds.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import quantize
from colorjax.bench.timing import interleaved_median_seconds, median_seconds
from colorjax.bench.train_step import config_train_step, repo_config
from colorjax.models import get_model
from colorjax.models.width import scaled_width
from colorjax.published_weights import state_dict_to_variables


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


def _inference_rows(quick: bool) -> list[dict]:
    width, batch, size = (0.25, 2, 64) if quick else (1.0, 8, 256)
    repeats = 3
    setting = {"width": width, "batch": batch, "size": size}
    L = np.random.default_rng(0).uniform(0, 100, (batch, size, size, 1)).astype(np.float32)
    model = get_model("eccv16", width=width)
    template = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1))))
    try:
        import torch
    except ImportError:
        torch = None

    if torch is not None:
        torch.manual_seed(0)
        torch_model = torch_eccv16(torch, width)
        state = {k: v.numpy() for k, v in torch_model.state_dict().items()}
        variables = state_dict_to_variables("eccv16", state, template, source="benchmark weights")
    else:  # random weights of the right shapes are all the speed comparison needs
        rng = np.random.default_rng(0)
        variables = jax.tree.map(
            lambda leaf: jnp.asarray(0.01 * rng.standard_normal(leaf.shape), leaf.dtype), template
        )

    apply = jax.jit(model.apply)
    L_jax = jnp.asarray(L)
    flops = apply.lower(variables, L_jax).compile().cost_analysis().get("flops", float("nan"))
    contenders = [lambda: apply(variables, L_jax)]
    if torch is not None:
        L_torch = torch.from_numpy(L).permute(0, 3, 1, 2).contiguous()

        def torch_forward():
            with torch.inference_mode():
                return torch_model(L_torch)

        contenders.append(torch_forward)
    seconds = interleaved_median_seconds(contenders, repeats)
    rows = [
        {
            "benchmark": "eccv16_inference",
            "contender": "colorjax jit (float32)",
            "images_per_s": batch / seconds[0],
            "ms_per_image": 1e3 * seconds[0] / batch,
            "gflops_per_image": flops / batch / 1e9,
            "achieved_gflops_per_s": flops / seconds[0] / 1e9,
            "cpu_threads": os.cpu_count(),
            **setting,
        }
    ]
    if torch is not None:
        logits_torch = torch_forward()[0].permute(0, 2, 3, 1).numpy()
        agreement = float(
            np.abs(np.asarray(apply(variables, L_jax)["logits"]) - logits_torch).max()
        )
        rows.append(
            {
                "benchmark": "eccv16_inference",
                "contender": f"pytorch {torch.__version__} eager, inference_mode",
                "images_per_s": batch / seconds[1],
                "ms_per_image": 1e3 * seconds[1] / batch,
                "cpu_threads": torch.get_num_threads(),
                **setting,
            }
        )
        rows[0]["speedup_vs_pytorch"] = seconds[1] / seconds[0]
        rows[0]["max_logits_diff_vs_pytorch"] = agreement
    return rows


def _train_step_rows(quick: bool) -> list[dict]:
    width, batch, size = (0.25, 2, 64) if quick else (1.0, 2, 176)
    # The paper's recipe: rebalanced loss, Adam 3e-5 with L2 weight decay.
    config = repo_config("zhang_eccv16.py")
    config.model.width, config.batch_size, config.data.image_size = width, batch, size
    one_step, flops = config_train_step(config)
    seconds = median_seconds(one_step, repeats=3)
    return [
        {
            "benchmark": "eccv16_train_step",
            "contender": "colorjax trainer step, configs/zhang_eccv16.py (float32)",
            "images_per_s": batch / seconds,
            "seconds_per_step": seconds,
            "gflops_per_image": flops / batch / 1e9,
            "achieved_gflops_per_s": flops / seconds / 1e9,
            "width": width,
            "batch": batch,
            "size": size,
        }
    ]


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
        ("soft_encode", "sparse: K (index, weight) pairs (the loss's)"): lambda: (
            quantize.soft_encode_sparse(ab, k=5)
        ),
        ("soft_encode", "dense: (..., 313) targets"): lambda: quantize.soft_encode(ab, k=5),
        ("cross_entropy_gradient", "sparse targets (the loss's)"): lambda: sparse_gradient(
            logits, ab
        ),
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


def bench_zhang(quick: bool) -> list[dict]:
    return _soft_encode_rows(quick) + _inference_rows(quick) + _train_step_rows(quick)
