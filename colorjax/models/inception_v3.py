"""InceptionV3 (Szegedy et al. 2016) in Flax Linen, layer for layer as torchvision's `inception_v3`: the FID network
of the colorization papers (CT2's `segm/metrics.py`, DDColor's `basicsr/metrics/custom_fid.py`).

Its job in colorjax is the 2048-d pool features ("pool3") behind the paired FID the field reports, so it stops at the
global average pool: no auxiliary classifier, no dropout, no `fc` (the importer drops those entries).

Structure (torchvision names, which are also the Flax module names, so the import is by name): stem
`Conv2d_1a_3x3` (3x3/2) `Conv2d_2a_3x3` `Conv2d_2b_3x3` (pad 1), 3x3/2 max pool, `Conv2d_3b_1x1`, `Conv2d_4a_3x3`,
3x3/2 max pool; `Mixed_5b..5d` (InceptionA, pool features 32, 64, 64); `Mixed_6a` (InceptionB); `Mixed_6b..6e`
(InceptionC, 7x7 channels 128, 160, 160, 192); `Mixed_7a` (InceptionD); `Mixed_7b`, `Mixed_7c` (InceptionE);
global average pool -> (N, 2048).

As torchvision (and unlike pytorch-fid's `FIDInception*` blocks, which port TensorFlow's graph): every conv is
`BasicConv2d` = bias-free conv, BatchNorm(eps=0.001), ReLU, with torchvision's explicit paddings; the 3x3/1 average
pools count the zero padding (`count_include_pad=True`); the 3x3/2 max pools are unpadded (floor mode = VALID).

`fid_features` is the reference pipeline around the network: the image as 8-bit levels (the references read saved
PNGs), resized to 299 x 299 bilinearly with half-pixel centres and no antialiasing (`F.interpolate(...,
mode='bilinear')`, align_corners False), then CT2's normalisation, kept as written because every published FID used
it: the [0, 1] image x becomes x * std / 0.5 + (mean - 0.5) / 0.5 per channel (ImageNet mean and std), the
*inverse* direction of torchvision's `transform_input`. (DDColor's in-training validation feeds its [0, 1] output
where CT2 feeds [-1, 1], which shifts the input once more; its paper's table follows CT2's scripts, which this is.)

Precision: the convs ask for `Precision.HIGHEST`, so a GPU computes them in float32 rather than XLA's default
TF32 there, and the features (and an FID) do not depend on the accelerator; on a CPU it changes nothing. (Not yet
measured on a GPU: no device was lent to this work.)

Weights: torchvision's ImageNet file (`inception_v3_google-1a9a5a14.pth`, the one CT2 and DDColor load, or the
current `inception_v3_google-0cc3c7bd.pth`), read by `colorjax.weights.pth` without torch; `colorjax.weights`
knows both by name.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from colorjax.weights.pth import read_state_dict

INPUT_SIZE = 299
FEATURE_DIM = 2048
BN_EPSILON = 1e-3  # torchvision's BasicConv2d: nn.BatchNorm2d(out_channels, eps=0.001).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# State-dict entries the features never use: the classifier, the auxiliary classifier and BN step counters.
_UNUSED_PREFIXES = ("fc.", "AuxLogits.")
_IGNORED_SUFFIX = ".num_batches_tracked"


class InceptionImportError(ValueError):
    """A state dict that does not fit `InceptionV3`; the message is one line naming the entry."""


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class BasicConv2d(nn.Module):
    """torchvision's `BasicConv2d`: bias-free conv (explicit padding), BatchNorm(eps=1e-3), ReLU."""

    features: int
    kernel_size: int | tuple[int, int]
    strides: int = 1
    padding: int | tuple[int, int] = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        pad_h, pad_w = _pair(self.padding)
        x = nn.Conv(
            self.features,
            _pair(self.kernel_size),
            strides=_pair(self.strides),
            padding=((pad_h, pad_h), (pad_w, pad_w)),
            use_bias=False,
            precision=jax.lax.Precision.HIGHEST,  # full float32 on GPUs too (module docstring)
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name="bn")(x)
        return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
    """`F.avg_pool2d(x, 3, stride=1, padding=1)`: the zero padding counts in the mean."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=True)


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
    """35x35: 64 | 48->64 (5x5) | 64->96->96 | avg pool->`pool_features`."""

    pool_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        branch1x1 = BasicConv2d(64, 1, name="branch1x1")(x)
        branch5x5 = BasicConv2d(48, 1, name="branch5x5_1")(x)
        branch5x5 = BasicConv2d(64, 5, padding=2, name="branch5x5_2")(branch5x5)
        branch3x3dbl = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
        branch3x3dbl = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
        branch3x3dbl = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_3")(branch3x3dbl)
        branch_pool = BasicConv2d(self.pool_features, 1, name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
    """35x35 -> 17x17: 384 (3x3/2) | 64->96->96 (3x3/2) | max pool."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        branch3x3 = BasicConv2d(384, 3, strides=2, name="branch3x3")(x)
        branch3x3dbl = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
        branch3x3dbl = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
        branch3x3dbl = BasicConv2d(96, 3, strides=2, name="branch3x3dbl_3")(branch3x3dbl)
        return jnp.concatenate([branch3x3, branch3x3dbl, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
    """17x17: 192 | c7->c7 (1x7)->192 (7x1) | c7->(7x1)->(1x7)->(7x1)->192 (1x7) | avg pool->192."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c7 = self.channels_7x7
        branch1x1 = BasicConv2d(192, 1, name="branch1x1")(x)
        branch7x7 = BasicConv2d(c7, 1, name="branch7x7_1")(x)
        branch7x7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(branch7x7)
        branch7x7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(branch7x7)
        dbl = BasicConv2d(c7, 1, name="branch7x7dbl_1")(x)
        dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(dbl)
        dbl = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(dbl)
        dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(dbl)
        dbl = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(dbl)
        branch_pool = BasicConv2d(192, 1, name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([branch1x1, branch7x7, dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
    """17x17 -> 8x8: 192->320 (3x3/2) | 192->(1x7)->(7x1)->192 (3x3/2) | max pool."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        branch3x3 = BasicConv2d(192, 1, name="branch3x3_1")(x)
        branch3x3 = BasicConv2d(320, 3, strides=2, name="branch3x3_2")(branch3x3)
        branch7x7x3 = BasicConv2d(192, 1, name="branch7x7x3_1")(x)
        branch7x7x3 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(branch7x7x3)
        branch7x7x3 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(branch7x7x3)
        branch7x7x3 = BasicConv2d(192, 3, strides=2, name="branch7x7x3_4")(branch7x7x3)
        return jnp.concatenate([branch3x3, branch7x7x3, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
    """8x8: 320 | 384->[384 (1x3), 384 (3x1)] | 448->384->[384 (1x3), 384 (3x1)] | avg pool->192."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        branch1x1 = BasicConv2d(320, 1, name="branch1x1")(x)
        branch3x3 = BasicConv2d(384, 1, name="branch3x3_1")(x)
        branch3x3 = jnp.concatenate(
            [
                BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(branch3x3),
                BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(branch3x3),
            ],
            axis=-1,
        )
        dbl = BasicConv2d(448, 1, name="branch3x3dbl_1")(x)
        dbl = BasicConv2d(384, 3, padding=1, name="branch3x3dbl_2")(dbl)
        dbl = jnp.concatenate(
            [
                BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(dbl),
                BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(dbl),
            ],
            axis=-1,
        )
        branch_pool = BasicConv2d(192, 1, name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([branch1x1, branch3x3, dbl, branch_pool], axis=-1)


class InceptionV3(nn.Module):
    """torchvision's `Inception3` up to its global average pool: (N, H, W, 3) normalised RGB -> (N, 2048).

    Any H, W >= 75 runs (the pool makes it size-agnostic); the FID pipeline feeds 299 x 299 (`fid_features`).
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = BasicConv2d(32, 3, strides=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv2d(32, 3, name="Conv2d_2a_3x3")(x)
        x = BasicConv2d(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3_s2(x)
        x = BasicConv2d(80, 1, name="Conv2d_3b_1x1")(x)
        x = BasicConv2d(192, 3, name="Conv2d_4a_3x3")(x)
        x = _max_pool_3x3_s2(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        x = InceptionC(128, name="Mixed_6b")(x)
        x = InceptionC(160, name="Mixed_6c")(x)
        x = InceptionC(160, name="Mixed_6d")(x)
        x = InceptionC(192, name="Mixed_6e")(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(name="Mixed_7b")(x)
        x = InceptionE(name="Mixed_7c")(x)
        return jnp.mean(x, axis=(1, 2))


def fid_input(rgb: jax.Array) -> jax.Array:
    """The reference preprocessing: sRGB (N, H, W, 3) in [0, 1] -> 8-bit levels / 255 -> 299 x 299 bilinear (half
    pixel centres, no antialiasing) -> CT2's per-channel x * std / 0.5 + (mean - 0.5) / 0.5 (module docstring)."""
    from colorjax import color

    levels = color.rgb_to_uint8(jnp.asarray(rgb)).astype(jnp.float32) / 255.0
    # Resizing in [0, 1] equals the references' resizing in [-1, 1]: bilinear interpolation is affine-equivariant.
    x = jax.image.resize(levels, (levels.shape[0], INPUT_SIZE, INPUT_SIZE, 3), "bilinear", antialias=False)
    mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
    std = jnp.asarray(IMAGENET_STD, jnp.float32)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


def fid_features(variables: Any, rgb: jax.Array) -> jax.Array:
    """Pool features (N, 2048) of sRGB images (N, H, W, 3) in [0, 1], through the reference pipeline."""
    return InceptionV3().apply(variables, fid_input(rgb))


# ----------------------------------------------------------------------------------------------------------------
# Import of torchvision's state dict.


def _torch_key(flax_path: tuple[str, ...]) -> str:
    """`("params", "Mixed_5b", "branch1x1", "conv", "kernel")` -> `Mixed_5b.branch1x1.conv.weight`."""
    *modules, leaf = flax_path[1:]
    name = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}[leaf]
    return ".".join([*modules, name])


def variables_from_state_dict(state_dict: dict[str, np.ndarray]) -> dict[str, Any]:
    """Flax variables of `InceptionV3` from torchvision's `inception_v3` state dict (conv weights (out, in, kh, kw)
    -> kernels (kh, kw, in, out); BN weight, bias, running mean, var -> scale, bias, batch_stats mean, var).

    `fc.*`, `AuxLogits.*` and `num_batches_tracked` are dropped; any other missing or extra entry, or a shape that
    does not fit, is one InceptionImportError line naming it."""
    template = jax.eval_shape(InceptionV3().init, jax.random.key(0), jnp.zeros((1, 75, 75, 3), jnp.float32))
    wanted = {path: leaf.shape for path, leaf in traverse_util.flatten_dict(template).items()}
    used: set[str] = set()
    flat = {}
    for path, shape in wanted.items():
        key = _torch_key(path)
        if key not in state_dict:
            raise InceptionImportError(f"The state dict has no {key!r}; is it torchvision's inception_v3?")
        value = np.asarray(state_dict[key], np.float32)
        if path[-1] == "kernel":
            value = np.transpose(value, (2, 3, 1, 0))
        if value.shape != tuple(shape):
            raise InceptionImportError(f"{key} has shape {value.shape} where InceptionV3 needs {tuple(shape)}.")
        flat[path] = jnp.asarray(value)
        used.add(key)
    extra = [
        k
        for k in state_dict
        if k not in used and not k.startswith(_UNUSED_PREFIXES) and not k.endswith(_IGNORED_SUFFIX)
    ]
    if extra:
        raise InceptionImportError(
            f"The state dict has {len(extra)} entries InceptionV3 does not know, e.g. {extra[0]!r}."
        )
    return traverse_util.unflatten_dict(flat)


def load_inception_v3(path: str | Path) -> dict[str, Any]:
    """Flax variables of `InceptionV3` from a torchvision `inception_v3` .pth file (read without torch)."""
    return variables_from_state_dict(read_state_dict(path))
