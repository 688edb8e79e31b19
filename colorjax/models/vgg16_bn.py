"""VGG16 with BatchNorm (torchvision's `vgg16_bn`), its convolutional part, as the frozen feature extractor of
DDColor's perceptual loss (Kang et al. 2023; piddnad/DDColor basicsr/archs/vgg_arch.py `VGGFeatureExtractor` with
`vgg_type: vgg16_bn`).

Layers carry BasicSR's names in torchvision's `features` order (`conv1_1`, `bn1_1`, `relu1_1`, `conv1_2`, ...,
`pool5`), so `features.{i}` of a torchvision state dict is `LAYER_NAMES[i]` here. Like BasicSR's extractor, the
module builds only the layers up to the deepest one asked for and returns the activations of the named layers; the
extractor is frozen, so BatchNorm always uses its running statistics (torchvision's eps 1e-5), as the authors' does
in eval mode. `conv*_*` is the convolution's output before its BatchNorm: DDColor's loss reads `conv1_1` ...
`conv5_1`, so of the BatchNorms only those between them matter.

Input: RGB in [0, 1], NHWC; `normalize_imagenet` applies torchvision's mean and std (BasicSR's `use_input_norm`).

Weights: torchvision's `vgg16_bn-6c64b313.pth` (registry name `vgg16_bn`), read without torch by
`load_vgg16_bn_variables`, or any state dict in its layout through `vgg16_bn_variables`.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from colorjax.weights.formats import torch_conv_kernel
from colorjax.weights.pth import read_state_dict

# (features, number of 3x3 convs) of each block; every block ends with a 2x2 max pool (torchvision's cfg "D").
VGG16_BN_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
BATCHNORM_EPSILON = 1e-5  # torch.nn.BatchNorm2d's default, which torchvision's vgg16_bn uses
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, (_, convs) in enumerate(VGG16_BN_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            names += [f"conv{block}_{conv}", f"bn{block}_{conv}", f"relu{block}_{conv}"]
        names.append(f"pool{block}")
    return tuple(names)


LAYER_NAMES = _layer_names()  # LAYER_NAMES[i] is torchvision's features[i]


def _conv_features(name: str) -> int:
    return VGG16_BN_BLOCKS[int(name[len("conv")]) - 1][0]


def normalize_imagenet(rgb: jax.Array) -> jax.Array:
    """RGB in [0, 1] -> torchvision's ImageNet-normalised input."""
    return (rgb - jnp.asarray(IMAGENET_MEAN_RGB)) / jnp.asarray(IMAGENET_STD_RGB)


class VGG16BNFeatures(nn.Module):
    """torchvision's vgg16_bn `features` up to the deepest of `outputs`; returns {name: activation} for `outputs`.

    Input: ImageNet-normalised RGB (see `normalize_imagenet`), NHWC.
    """

    outputs: Sequence[str]

    @nn.compact
    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        unknown = [name for name in self.outputs if name not in LAYER_NAMES]
        if unknown:
            raise ValueError(f"VGG16-BN has no layer {unknown[0]!r}; its layers are {', '.join(LAYER_NAMES)}.")
        last = max(LAYER_NAMES.index(name) for name in self.outputs)
        features = {}
        for name in LAYER_NAMES[: last + 1]:
            if name.startswith("conv"):
                x = nn.Conv(_conv_features(name), (3, 3), padding=1, name=name)(x)
            elif name.startswith("bn"):
                x = nn.BatchNorm(use_running_average=True, epsilon=BATCHNORM_EPSILON, name=name)(x)
            elif name.startswith("relu"):
                x = nn.relu(x)
            else:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            if name in self.outputs:
                features[name] = x
        return features


def vgg16_bn_variables(state_dict: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict:
    """Flax variables of `VGG16BNFeatures(outputs)` from a torchvision vgg16_bn state dict (`features.{i}.*`;
    the classifier's keys are ignored)."""
    last = max(LAYER_NAMES.index(name) for name in outputs)
    params, batch_stats = {}, {}
    for index, name in enumerate(LAYER_NAMES[: last + 1]):
        key = f"features.{index}"
        if name.startswith("conv"):
            weight = np.asarray(state_dict[f"{key}.weight"], np.float32)
            params[name] = {"kernel": torch_conv_kernel(weight), "bias": np.asarray(state_dict[f"{key}.bias"])}
        elif name.startswith("bn"):
            params[name] = {
                "scale": np.asarray(state_dict[f"{key}.weight"], np.float32),
                "bias": np.asarray(state_dict[f"{key}.bias"], np.float32),
            }
            batch_stats[name] = {
                "mean": np.asarray(state_dict[f"{key}.running_mean"], np.float32),
                "var": np.asarray(state_dict[f"{key}.running_var"], np.float32),
            }
    return jax.tree.map(jnp.asarray, {"params": params, "batch_stats": batch_stats})


def load_vgg16_bn_variables(path: str | Path, outputs: Sequence[str]) -> dict:
    """`vgg16_bn_variables` of a torchvision file on disk (e.g. the registry's `vgg16_bn`), read without torch."""
    return vgg16_bn_variables(read_state_dict(path), outputs)
