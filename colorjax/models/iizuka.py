"""Iizuka, Simo-Serra, Ishikawa 2016, "Let there be Color!": the low/mid/global feature fusion network.

Two paths share ONE low-level network (one set of parameters; gradients flow back from both):

- local path: the input at its own size, edge-padded at the bottom/right to a multiple of 8 -> low-level (H/8) ->
  mid-level (256 ch);
- global path: the input rescaled (bilinear, antialiased) to `global_size` x `global_size` (224 in the paper) ->
  low-level -> four convs -> FC 1024 -> FC 512 -> FC 256: one global feature vector per image, which the fusion layer
  tiles over the local H/8 x W/8 grid. The FC 512 output also feeds the scene classifier (FC 256 -> FC classes).

The colorization network upsamples (nearest) to H/2 and ends in a 3x3 conv with a sigmoid: `ab_unit`, ab scaled to
[0, 1] (what the loss compares). `chroma` decodes it as the released code does, ab = 2 * ab_range * sigmoid - ab_range
(ab_range = 100), and upsamples bilinearly to the input's size; the padding is cropped away, so `chroma` is exactly
(N, H, W, 2) for any H, W. Edge padding (rather than resizing to a multiple of 8) keeps every pixel where it was, so
a tile of a large image sees exactly what the whole image would (see `colorjax.models.iizuka_inference`).

Every conv is 3x3 with padding 1 on each side (PyTorch/Torch style, so stride-2 outputs sit on even input pixels)
and is followed by BatchNorm + ReLU, except the output conv; the 1x1 fusion conv too. The FC layers have ReLU and,
by default, no BatchNorm (the paper normalises after the convolutional layers; `fc_batch_norm=True` adds it, as some
re-implementations do). Input normalisation is L / 100 (the released model takes L in [0, 1]).

Parameters: 42.36M with 205 classes at width 1 (paper: 42.35M; the global FC 25088 -> 1024 alone is 25.7M).

Global-feature transfer (the paper's style transfer): pass `global_L` (another image, any size; its rescale feeds the
global path) or `global_features` (a vector from `encode_global`, e.g. of a reference photo) to `__call__`.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models.width import scaled_width

LOCAL_MULTIPLE = 8  # the low-level network downsamples by 8: the local input is padded to a multiple of it
# How far (in input pixels) the local path's output at one pixel can depend on the input: measured by perturbing
# single input pixels at all 64 phases of the stride-8 grid, an input pixel changes outputs from 58 pixels before it
# to 65 after (6 low-level + 2 mid-level convs at strides 2..8, the colorization convs, the nearest and bilinear
# upsamplings, and the grid's phase). Tiled inference keeps at least this much context around every tile's core.
LOCAL_RECEPTIVE_REACH = 65


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class ConvBNReLU(nn.Module):
    """3x3 conv with padding 1 on each side, then BatchNorm and ReLU (the bias is BatchNorm's)."""

    features: int
    stride: int = 1
    kernel_size: int = 3
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        pad = self.kernel_size // 2
        x = nn.Conv(
            self.features,
            (self.kernel_size, self.kernel_size),
            strides=self.stride,
            padding=((pad, pad), (pad, pad)),
            use_bias=False,
            dtype=self.dtype,
        )(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(x)
        return nn.relu(x)


class DenseReLU(nn.Module):
    """Fully-connected layer, optional BatchNorm, ReLU."""

    features: int
    batch_norm: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = nn.Dense(self.features, use_bias=not self.batch_norm, dtype=self.dtype)(x)
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(x)
        return nn.relu(x)


class LowLevelFeatures(nn.Module):
    """64 s2, 128, 128 s2, 256, 256 s2, 512: (N, H, W, 1) -> (N, H/8, W/8, 512)."""

    width: float = 1.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        for channels, stride in ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1)):
            x = ConvBNReLU(scaled_width(channels, self.width), stride, dtype=self.dtype)(x, train=train)
        return x


class MidLevelFeatures(nn.Module):
    """512, 256 at H/8."""

    width: float = 1.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        for channels in (512, 256):
            x = ConvBNReLU(scaled_width(channels, self.width), dtype=self.dtype)(x, train=train)
        return x


class GlobalFeatures(nn.Module):
    """512 s2, 512, 512 s2, 512, FC 1024, FC 512, FC 256 on the low-level map of the global rescale.

    Returns (global features FC 256, the FC 512 output the classifier reads).
    """

    width: float = 1.0
    fc_batch_norm: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> tuple[jax.Array, jax.Array]:
        for stride in (2, 1, 2, 1):
            x = ConvBNReLU(scaled_width(512, self.width), stride, dtype=self.dtype)(x, train=train)
        x = x.reshape(x.shape[0], -1)
        x = DenseReLU(scaled_width(1024, self.width), self.fc_batch_norm, self.dtype)(x, train=train)
        mid = DenseReLU(scaled_width(512, self.width), self.fc_batch_norm, self.dtype)(x, train=train)
        features = DenseReLU(scaled_width(256, self.width), self.fc_batch_norm, self.dtype)(mid, train=train)
        return features, mid


class ClassificationHead(nn.Module):
    """FC 256, FC num_classes (logits) on the global network's FC 512 output."""

    num_classes: int
    width: float = 1.0
    fc_batch_norm: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = DenseReLU(scaled_width(256, self.width), self.fc_batch_norm, self.dtype)(x, train=train)
        return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)


class FusionAndColorization(nn.Module):
    """Fusion (concat mid 256 + tiled global 256 -> 1x1 conv 256) and the colorization network.

    128, up x2 (nearest), 64, 64, up x2, 32, output 3x3 conv 2 + sigmoid: (N, H/8, W/8) -> (N, H/2, W/2, 2) in [0, 1].
    """

    width: float = 1.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, mid: jax.Array, global_features: jax.Array, *, train: bool) -> jax.Array:
        n, h, w, _ = mid.shape
        tiled = jnp.broadcast_to(
            global_features[:, None, None, :].astype(mid.dtype),
            (n, h, w, global_features.shape[-1]),
        )
        x = jnp.concatenate([mid, tiled], axis=-1)
        x = ConvBNReLU(scaled_width(256, self.width), kernel_size=1, dtype=self.dtype, name="fusion")(x, train=train)
        x = ConvBNReLU(scaled_width(128, self.width), dtype=self.dtype)(x, train=train)
        x = upsample_nearest_2x(x)
        x = ConvBNReLU(scaled_width(64, self.width), dtype=self.dtype)(x, train=train)
        x = ConvBNReLU(scaled_width(64, self.width), dtype=self.dtype)(x, train=train)
        x = upsample_nearest_2x(x)
        x = ConvBNReLU(scaled_width(32, self.width), dtype=self.dtype)(x, train=train)
        x = nn.Conv(2, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype, name="output")(x)
        return nn.sigmoid(x.astype(jnp.float32))


def upsample_nearest_2x(x: jax.Array) -> jax.Array:
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def pad_to_multiple(L: jax.Array, multiple: int = LOCAL_MULTIPLE) -> jax.Array:
    """Edge-pads (N, H, W, C) at the bottom and right so H and W are multiples of `multiple`."""
    height, width = L.shape[1:3]
    pad_h, pad_w = round_up(height, multiple) - height, round_up(width, multiple) - width
    if pad_h == 0 and pad_w == 0:
        return L
    return jnp.pad(L, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


class Iizuka(nn.Module):
    """Joint global/local priors colorization with scene classification: L (N,H,W,1) in [0,100] -> outputs.

    Outputs of `__call__`:
      chroma (N, H, W, 2)        ab in Lab units (within +-ab_range) at the input's resolution;
      ab_unit (N, ceil(H/2), ceil(W/2), 2)  the sigmoid map, ab scaled to [0, 1]: what the loss compares;
      global_features (N, 256w)  the fused global vector (reusable via `global_features=`);
      class_logits (N, num_classes)  scene logits of the global image, when num_classes > 0 and the global path ran.

    Attributes: `num_classes` (205 Places classes in the paper; 0 removes the head), `width` (channel multiplier
    for CPU-sized configs), `global_size` (side of the global path's square rescale, a multiple of 32),
    `fc_batch_norm` (BatchNorm on the FC layers), `ab_range` (decoding: ab = ab_range * (2 * sigmoid - 1); 100 in
    the released code; a decoding knob, no parameters), `dtype` (computation dtype; outputs are float32).
    """

    num_classes: int = 205
    width: float = 1.0
    global_size: int = 224
    fc_batch_norm: bool = False
    ab_range: float = 100.0
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        if self.global_size <= 0 or self.global_size % 32:
            raise ValueError(
                f"Iizuka global_size must be a positive multiple of 32 (got {self.global_size}); "
                "the global path downsamples by 32 before its FC layers (the paper uses 224)."
            )
        if self.num_classes < 0:
            raise ValueError(f"Iizuka num_classes must be >= 0 (got {self.num_classes}).")
        self.low_level = LowLevelFeatures(self.width, self.dtype)
        self.mid_level = MidLevelFeatures(self.width, self.dtype)
        self.global_net = GlobalFeatures(self.width, self.fc_batch_norm, self.dtype)
        self.colorization = FusionAndColorization(self.width, self.dtype)
        if self.num_classes > 0:
            self.classifier = ClassificationHead(self.num_classes, self.width, self.fc_batch_norm, self.dtype)

    def _normalize(self, L: jax.Array) -> jax.Array:
        if L.ndim != 4 or L.shape[-1] != 1:
            raise ValueError(f"Iizuka expects L of shape (N, H, W, 1) in [0, 100]; got shape {L.shape}.")
        return (L.astype(jnp.float32) / 100.0).astype(self.dtype)

    def _rescale_global(self, L: jax.Array) -> jax.Array:
        size = (L.shape[0], self.global_size, self.global_size, 1)
        if L.shape == size:
            return L
        return jax.image.resize(L, size, method="bilinear", antialias=True)

    def _global_from_low_level(self, low: jax.Array, *, train: bool) -> dict[str, jax.Array]:
        features, mid = self.global_net(low, train=train)
        outputs = {"global_features": features.astype(jnp.float32)}
        if self.num_classes > 0:
            outputs["class_logits"] = self.classifier(mid, train=train)
        return outputs

    def encode_global(self, L: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        """The global path alone: {"global_features": (N, 256w), "class_logits": (N, classes)} of L's rescale.

        Use as `model.apply(variables, L_ref, method="encode_global")`.
        """
        low = self.low_level(self._rescale_global(self._normalize(L)), train=train)
        return self._global_from_low_level(low, train=train)

    def local_colorize(self, L: jax.Array, global_features: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        """The local path fused with given global features (N or 1 rows): {"chroma", "ab_unit"} at L's size."""
        x = self._normalize(L)
        return self._decode(self.low_level(pad_to_multiple(x), train=train), L, global_features, train)

    def _decode(self, low: jax.Array, L: jax.Array, global_features: jax.Array, train: bool) -> dict[str, jax.Array]:
        n, height, width = L.shape[:3]
        if global_features.ndim != 2 or global_features.shape[0] not in (1, n):
            raise ValueError(f"global_features must have shape (1 or {n}, features); got {global_features.shape}.")
        global_features = jnp.broadcast_to(global_features, (n, global_features.shape[1]))
        mid = self.mid_level(low, train=train)
        ab_unit_padded = self.colorization(mid, global_features, train=train)
        padded_h, padded_w = ab_unit_padded.shape[1] * 2, ab_unit_padded.shape[2] * 2
        ab_padded = self.ab_range * (2.0 * ab_unit_padded - 1.0)
        # Upsample first, then crop: cropping first would shift the bilinear sample positions.
        chroma = jax.image.resize(ab_padded, (n, padded_h, padded_w, 2), method="bilinear")
        return {
            "chroma": chroma[:, :height, :width].astype(jnp.float32),
            "ab_unit": ab_unit_padded[:, : math.ceil(height / 2), : math.ceil(width / 2)],
        }

    def __call__(
        self,
        L: jax.Array,
        *,
        train: bool = False,
        global_L: jax.Array | None = None,
        global_features: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Colorizes L. `global_L` (any size) or `global_features` replace L's own global path (style transfer)."""
        if global_L is not None and global_features is not None:
            raise ValueError("Pass either global_L or global_features to Iizuka, not both.")
        x = self._normalize(L)
        low_local = self.low_level(pad_to_multiple(x), train=train)
        outputs: dict[str, jax.Array] = {}
        if global_features is None:
            if global_L is None and x.shape[1:3] == (self.global_size, self.global_size):
                # Input already at the global size: both paths see the same image, so run the shared low-level
                # network once (gradients still reach it through both paths).
                global_outputs = self._global_from_low_level(low_local, train=train)
            else:
                source = x if global_L is None else self._normalize(global_L)
                low_global = self.low_level(self._rescale_global(source), train=train)
                global_outputs = self._global_from_low_level(low_global, train=train)
            outputs.update(global_outputs)
            global_features = global_outputs["global_features"]
        else:
            outputs["global_features"] = jnp.asarray(global_features, jnp.float32)
        outputs.update(self._decode(low_local, L, global_features, train))
        return outputs
