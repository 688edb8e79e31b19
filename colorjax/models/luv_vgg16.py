"""The CIELUV binned classifier of Hwang & Zhou (Stanford CS231n 2016) and its regression baseline.

Pipeline: lightness L -> gray image replicated to 3 channels minus the ImageNet mean (`gray_to_vgg_input`) ->
VGG16 encoder (trainable, initialised from ImageNet weights) -> hypercolumn -> three 3x3 convs -> heads.

- Hypercolumn: the last conv output of every VGG16 block (`hypercolumn_layers`) resized to one common grid and
  concatenated (64 + 128 + 256 + 512 + 512 = 1472 channels at width 1), then BatchNorm, so that layers whose
  activations differ by orders of magnitude (block1 ~100s on Caffe-scaled input, block5 ~1) start on one scale.
- Common grid: 1/`hypercolumn_stride` of the input (default 4, the block3 grid, where Zhang et al. also predict).
  The report says only "upsampled to a common size"; a full-resolution hypercolumn (`hypercolumn_stride=1`) makes
  the first 3x3 conv alone cost ~3x VGG16's FLOPs, while the prediction is upsampled for display anyway.
- Three 3x3 convs (`head_features`, each conv -> BatchNorm -> ReLU; our choice of widths, not given in the report).
- head="classification" (the paper's model, loss "luv_classification"): two parallel 1x1 convs giving 50 class
  scores per pixel for U and for V (`u_logits`, `v_logits`, (N, H', W', 50)). Prediction: the argmax bin of each
  channel, un-binned to the bin's mean (`colorjax.quantize.bins_to_uv`), upsampled bilinearly to the input size.
- head="regression" (the paper's baseline, loss "l2" with chroma_scale=100): one 1x1 conv to 2 channels times
  `chroma_scale`, upsampled bilinearly.
  One registry name with a `head` field keeps both configs to the same model block plus one line, and shares one
  pretrained loader.

`width` scales every channel count (VGG16 and head) for CPU-sized runs; ImageNet weights need width 1.
`backbone_weights` (a Keras .h5 or torchvision .pth VGG16 file, see `colorjax.models.vgg16`) is read by the
pretrained loader `load_luv_vgg16_backbone` once, at the start of a fresh run; the model itself only uses its
suffix to pick the matching input preprocessing, so a checkpoint colours images without the file.
"""

import logging
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models.vgg16 import (
    BLOCK_OUTPUTS,
    VGG16,
    gray_to_vgg_input,
    load_vgg16_params,
    vgg16_preprocessing,
)
from colorjax.models.width import scaled_width
from colorjax.quantize import LUV_NUM_BINS, bins_to_uv
from colorjax.weights.formats import overwrite_params

HEADS = ("classification", "regression")


class LuvVGG16(nn.Module):
    """L (N, H, W, 1) in [0, 100] -> {"chroma": uv (N, H, W, 2), and "u_logits", "v_logits" when classifying}."""

    head: str = "classification"
    width: float = 1.0
    hypercolumn_layers: tuple[str, ...] = BLOCK_OUTPUTS
    hypercolumn_stride: int = 4
    head_features: tuple[int, ...] = (256, 128, 64)
    chroma_scale: float = 100.0  # regression head: u, v span about [-100, 100]
    backbone_weights: str | None = None

    @nn.compact
    def __call__(self, L: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        if self.head not in HEADS:
            raise ValueError(f"Unknown head {self.head!r}; config.model.head must be one of {HEADS}.")
        unknown = [name for name in self.hypercolumn_layers if name not in BLOCK_OUTPUTS]
        if unknown or not self.hypercolumn_layers:
            raise ValueError(
                f"hypercolumn_layers {tuple(self.hypercolumn_layers)} must be non-empty, from {BLOCK_OUTPUTS}."
            )
        if self.hypercolumn_stride < 1:
            raise ValueError(f"hypercolumn_stride must be >= 1, got {self.hypercolumn_stride}.")
        batch, height, width = L.shape[:3]
        grid = (height // self.hypercolumn_stride, width // self.hypercolumn_stride)
        if min(grid) < 1:
            raise ValueError(f"Input {height}x{width} is smaller than hypercolumn_stride {self.hypercolumn_stride}.")

        vgg_input = gray_to_vgg_input(L, vgg16_preprocessing(self.backbone_weights))
        features = VGG16(width=self.width, name="backbone")(vgg_input, train=train)
        # Bilinear resize; shrinking (block1, block2 at the default stride) is antialiased, i.e. area-like.
        hypercolumn = jnp.concatenate(
            [
                jax.image.resize(features[name], (batch, *grid, features[name].shape[-1]), method="bilinear")
                for name in self.hypercolumn_layers
            ],
            axis=-1,
        )
        x = _batch_norm(train, "hypercolumn_bn")(hypercolumn)
        for index, features_out in enumerate(self.head_features):
            x = nn.Conv(
                scaled_width(features_out, self.width),
                (3, 3),
                padding="SAME",
                use_bias=False,
                name=f"head_conv{index + 1}",
            )(x)
            x = nn.relu(_batch_norm(train, f"head_bn{index + 1}")(x))

        if self.head == "classification":
            u_logits = nn.Conv(LUV_NUM_BINS, (1, 1), name="u_classifier")(x).astype(jnp.float32)
            v_logits = nn.Conv(LUV_NUM_BINS, (1, 1), name="v_classifier")(x).astype(jnp.float32)
            bins = jnp.stack([jnp.argmax(u_logits, -1), jnp.argmax(v_logits, -1)], axis=-1)
            uv_grid = bins_to_uv(bins)
            outputs = {"u_logits": u_logits, "v_logits": v_logits}
        else:
            uv_grid = self.chroma_scale * nn.Conv(2, (1, 1), name="uv_regressor")(x)
            outputs = {}
        outputs["chroma"] = jax.image.resize(uv_grid, (batch, height, width, 2), method="bilinear").astype(jnp.float32)
        return outputs


def _batch_norm(train: bool, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


def load_luv_vgg16_backbone(variables: dict[str, Any], model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """SPECS["luv_vgg16"].load_pretrained: the VGG16 encoder's params from `model_kwargs["backbone_weights"]`.

    None or "" keeps the random initialisation (and logs that it does). The head stays randomly initialised.
    """
    weights_path = model_kwargs.get("backbone_weights")
    if not weights_path:
        logging.getLogger(__name__).warning(
            "luv_vgg16: config.model.backbone_weights is empty, so the VGG16 encoder starts from random "
            "weights instead of ImageNet (the paper's setting)."
        )
        return variables
    width = model_kwargs.get("width", 1.0)
    if width != 1.0:
        raise ValueError(
            f"luv_vgg16: ImageNet VGG16 weights need width=1.0, got width={width}; "
            "leave config.model.backbone_weights empty for narrower models."
        )
    loaded = load_vgg16_params(weights_path, include_top=False, config_field="config.model.backbone_weights")
    params = dict(variables["params"])
    params["backbone"] = overwrite_params(variables["params"]["backbone"], loaded, source=str(weights_path))
    return {**variables, "params": params}
