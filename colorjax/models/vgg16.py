"""VGG16 (Simonyan & Zisserman 2015) in Flax Linen, with its ImageNet weights imported from Keras or torchvision.

The network follows the Keras application layer for layer, under the same names (`block1_conv1` ... `block5_conv3`,
2x2 max pools, optional top `fc1`, `fc2`, `predictions`), so a Keras file maps onto it by name. It is used as a
trainable encoder (the CIELUV classifier, `colorjax.models.luv_vgg16`) and as a frozen ImageNet embedder (Deep
Koalarization).

Input preprocessing follows the origin of the weights, because each set was trained on differently normalised
images (gray input makes the channel order irrelevant, but not the per-channel mean and scale):

- "caffe" (Keras files, converted from the original Caffe VGG16): BGR in [0, 255] minus the ImageNet mean pixel
  (B, G, R) = (103.939, 116.779, 123.68), no scaling; what `keras.applications.vgg16.preprocess_input` does.
- "torch" (torchvision `vgg16-397923af.pth`): RGB in [0, 1] minus mean (0.485, 0.456, 0.406), divided by std
  (0.229, 0.224, 0.225).

`gray_to_vgg_input(L, preprocessing)` turns CIE lightness into that input: the gray sRGB value whose lightness is
L (`colorjax.color.lightness_to_gray`, the inverse of rgb2lab on a gray pixel), replicated to 3 channels and
normalised as above.
`vgg16_preprocessing(path)` picks the convention from a weights file's name (.pth/.pt -> "torch", else "caffe").

Weights: `load_vgg16_params(path, include_top=...)` reads any of
- https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5
  (with the top, 138.36M parameters) or `..._notop.h5` (convolutions only, 14.71M), in the legacy Keras layout or
  re-saved by Keras 3 (`.h5`, `.weights.h5`, `.keras`);
- https://download.pytorch.org/models/vgg16-397923af.pth (torchvision; read without torch by `colorjax.pth`).
"""

import math
from pathlib import Path
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from colorjax.color import lightness_to_gray
from colorjax.models.width import scaled_width
from colorjax.weights.formats import (
    read_keras_h5,
    require_file,
    torch_conv_kernel,
    torch_linear_kernel,
)
from colorjax.weights.pth import read_state_dict

# (features, number of 3x3 convs) of each block; every block ends with a 2x2 max pool.
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
# The last conv of each block, post-ReLU: the feature maps at strides 1, 2, 4, 8, 16.
BLOCK_OUTPUTS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
FC_FEATURES = 4096
TOP_LAYERS = ("fc1", "fc2", "predictions")

Preprocessing = Literal["caffe", "torch"]
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)

KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
KERAS_TOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
KERAS_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
TORCHVISION_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
TORCH_SUFFIXES = (".pth", ".pt")


def conv_layer_names() -> list[str]:
    """The 13 conv layers in network order: block1_conv1, block1_conv2, block2_conv1, ..., block5_conv3."""
    return [
        f"block{block}_conv{conv}"
        for block, (_, num_convs) in enumerate(VGG16_BLOCKS, start=1)
        for conv in range(1, num_convs + 1)
    ]


class VGG16(nn.Module):
    """VGG16: preprocessed image (N, H, W, 3) -> {layer name: activation}.

    Returns every block's last conv output (post-ReLU; `BLOCK_OUTPUTS`) and `block5_pool`; with the top also `fc1`,
    `fc2` (post-ReLU) and `logits` (pre-softmax). Like Keras, the top flattens `block5_pool` in (H, W, C) order, so
    the ImageNet top weights need 224x224 input (7x7x512 = 25088 features). Odd sizes are floored by each pool.
    `width` scales every layer's channels (1.0 is VGG16; smaller values are for CPU-sized runs).
    `train` is accepted for the model contract; VGG16 has no dropout (Keras layout) or BatchNorm, so it is ignored.
    """

    include_top: bool = False
    num_classes: int = 1000
    width: float = 1.0

    @nn.compact
    def __call__(self, rgb_preprocessed: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        del train
        x = rgb_preprocessed
        outputs = {}
        for block, (features, num_convs) in enumerate(VGG16_BLOCKS, start=1):
            for conv in range(1, num_convs + 1):
                x = nn.Conv(
                    scaled_width(features, self.width),
                    (3, 3),
                    padding="SAME",
                    name=f"block{block}_conv{conv}",
                )(x)
                x = nn.relu(x)
            outputs[f"block{block}_conv{num_convs}"] = x
            x = nn.max_pool(x, (2, 2), strides=(2, 2))  # VALID padding floors odd sizes, as Keras does
        outputs["block5_pool"] = x
        if self.include_top:
            x = x.reshape(x.shape[0], -1)
            fc_features = scaled_width(FC_FEATURES, self.width)
            outputs["fc1"] = x = nn.relu(nn.Dense(fc_features, name="fc1")(x))
            outputs["fc2"] = x = nn.relu(nn.Dense(fc_features, name="fc2")(x))
            outputs["logits"] = nn.Dense(self.num_classes, name="predictions")(x)
        return outputs


def gray_to_vgg_input(L: jax.Array, preprocessing: Preprocessing = "caffe") -> jax.Array:
    """Lightness (N, H, W, 1) in [0, 100] -> the 3-channel VGG16 input under the weights' convention (module doc)."""
    gray = lightness_to_gray(L.astype(jnp.float32))
    if preprocessing == "caffe":
        return 255.0 * gray - jnp.asarray(CAFFE_MEAN_BGR, jnp.float32)
    if preprocessing == "torch":
        mean = jnp.asarray(TORCH_MEAN_RGB, jnp.float32)
        return (gray - mean) / jnp.asarray(TORCH_STD_RGB, jnp.float32)
    raise ValueError(f"Unknown VGG16 preprocessing {preprocessing!r}; use 'caffe' (Keras) or 'torch'.")


def vgg16_preprocessing(weights_path: str | Path | None) -> Preprocessing:
    """The input convention of a weights file: "torch" for torchvision .pth/.pt, else "caffe" (Keras; and None)."""
    if weights_path is not None and Path(weights_path).suffix.lower() in TORCH_SUFFIXES:
        return "torch"
    return "caffe"


def vgg16_download_url(weights_path: str | Path, include_top: bool) -> str:
    """Where to download the file a config names (by its suffix, and whether the top is needed)."""
    path = Path(weights_path)
    if path.suffix.lower() in TORCH_SUFFIXES:
        return TORCHVISION_URL
    if include_top or path.name == KERAS_TOP_FILE:
        return KERAS_URL + KERAS_TOP_FILE
    return KERAS_URL + KERAS_NOTOP_FILE


def load_vgg16_params(
    weights_path: str | Path,
    *,
    include_top: bool = False,
    config_field: str = "the VGG16 weights path in the config",
) -> dict[str, dict[str, np.ndarray]]:
    """Reads a Keras (.h5/.weights.h5/.keras) or torchvision (.pth/.pt) VGG16 file into `VGG16` params.

    Returns {layer: {"kernel", "bias"}} for the 13 convs, plus fc1/fc2/predictions when `include_top`. A file with
    a top loads into a model without one (the fc layers are dropped), not the other way round.
    """
    path = require_file(weights_path, vgg16_download_url(weights_path, include_top), config_field)
    if path.suffix.lower() in TORCH_SUFFIXES:
        return vgg16_params_from_torchvision(read_state_dict(path), include_top, source=str(path))
    return vgg16_params_from_keras(read_keras_h5(path), include_top, source=str(path))


def vgg16_params_from_keras(
    layers: dict[str, list[np.ndarray]], include_top: bool, source: str = "the Keras file"
) -> dict[str, dict[str, np.ndarray]]:
    """{Keras layer name: [kernel, bias]} -> VGG16 params. Keras kernels are already (kh, kw, in, out) / (in, out)."""
    wanted = conv_layer_names() + (list(TOP_LAYERS) if include_top else [])
    params = {}
    for name in wanted:
        if name not in layers:
            hint = f" (it has no top: use {KERAS_TOP_FILE})" if name in TOP_LAYERS else ""
            found = ", ".join(list(layers)[:6]) or "none"
            raise ValueError(
                f"{source} has no VGG16 layer {name!r}{hint}; layers found: {found}{', ...' if len(layers) > 6 else ''}."
            )
        weights = layers[name]
        if len(weights) != 2:
            raise ValueError(f"{source}: layer {name!r} has {len(weights)} arrays, expected kernel and bias.")
        params[name] = {"kernel": _float32(weights[0]), "bias": _float32(weights[1])}
    return params


def _torchvision_conv_indices() -> list[int]:
    """Indices of the convs in torchvision's `features` Sequential: conv, ReLU per conv and a pool per block."""
    indices, position = [], 0
    for _, num_convs in VGG16_BLOCKS:
        for _ in range(num_convs):
            indices.append(position)
            position += 2
        position += 1
    return indices  # [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


# torchvision's classifier: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear.
TORCHVISION_TOP_INDICES = {"fc1": 0, "fc2": 3, "predictions": 6}


def vgg16_params_from_torchvision(
    state_dict: dict[str, np.ndarray], include_top: bool, source: str = "the state_dict"
) -> dict[str, dict[str, np.ndarray]]:
    """torchvision `vgg16` state_dict (`features.N.*`, `classifier.N.*`) -> VGG16 params."""

    def get(key: str) -> np.ndarray:
        if key not in state_dict:
            found = ", ".join(list(state_dict)[:4]) or "none"
            raise ValueError(f"{source} is not a torchvision VGG16 state_dict: no {key!r} (keys: {found}, ...).")
        return state_dict[key]

    params = {}
    for name, index in zip(conv_layer_names(), _torchvision_conv_indices(), strict=True):
        params[name] = {
            "kernel": _float32(torch_conv_kernel(get(f"features.{index}.weight"))),
            "bias": _float32(get(f"features.{index}.bias")),
        }
    if include_top:
        for name, index in TORCHVISION_TOP_INDICES.items():
            kernel = torch_linear_kernel(get(f"classifier.{index}.weight"))
            if name == "fc1":
                kernel = _channels_first_to_last_rows(kernel, source)
            params[name] = {
                "kernel": _float32(kernel),
                "bias": _float32(get(f"classifier.{index}.bias")),
            }
    return params


def _channels_first_to_last_rows(kernel: np.ndarray, source: str) -> np.ndarray:
    """Reorders fc1's input rows from PyTorch's (C, H, W) flatten to the (H, W, C) flatten of an NHWC tensor."""
    channels = scaled_width(VGG16_BLOCKS[-1][0], 1.0)
    side = math.isqrt(kernel.shape[0] // channels)
    if side * side * channels != kernel.shape[0]:
        raise ValueError(f"{source}: fc1 takes {kernel.shape[0]} inputs, not a square grid of {channels} maps.")
    out_features = kernel.shape[1]
    kernel = kernel.reshape(channels, side, side, out_features)
    return kernel.transpose(1, 2, 0, 3).reshape(-1, out_features)


def _float32(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)
