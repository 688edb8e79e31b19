"""Zhang, Isola & Efros (ECCV 2016) "Colorful Image Colorization": the 313-bin ab classifier.

Layout (the paper's Fig. 2 and the authors' PyTorch port, richzhang/colorization `colorizers/eccv16.py`): blocks
1-7 are 3x3 convs with bias, each followed by ReLU, and one BatchNorm after the block's last ReLU; blocks 1-3 end
with a stride-2 conv, blocks 5-6 are dilated by 2. Block 8 is a 4x4 stride-2 transposed conv back up to 1/4
resolution, two 3x3 convs and a 1x1 conv to 313 logits. Widths 64, 128, 256, 512, 512, 512, 512, 256, scaled by
`width` for small configs (1.0 = published).

Submodules are named after the PyTorch state-dict entries (`model3.4.weight` -> `model3_4/kernel`), so the
published weights map one to one (`colorjax.models.published`).

Outputs: `logits` (N, ceil(H/4), ceil(W/4), 313), the classifier's logits on the grid of every 4th input pixel
(where the loss takes its targets), and `chroma` (N, H, W, 2): the annealed mean at `temperature` (0.38 as in the
paper; 1.0 reproduces the PyTorch port, which returns the plain mean) upsampled x4 bilinearly (half-pixel centres,
PyTorch's align_corners=False). Any input size works: the strided convs give ceil(H/8) x 2 = 2 ceil(H/8) rows of
logits, which the network upsamples to 8 ceil(H/8) >= H rows of chroma; both are cropped at the bottom/right to the
input's own grid, so for H, W multiples of 8 nothing is cropped and the outputs equal the PyTorch port's.

Inference can run with blocks 1-6's BatchNorms folded into the next block's first conv (`fold_batch_norms`, a
load-time transform of the variables for `ECCV16(batch_norm_folded=True)`); the port orders each block conv, ReLU,
..., BatchNorm, so a BatchNorm cannot go into the conv before it (a ReLU lies between) but goes exactly into the conv
after it, whose zero padding becomes a per-channel padding value.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from colorjax.models.width import scaled_width
from colorjax.quantize import AB_NUM_BINS, ANNEALED_MEAN_TEMPERATURE, annealed_mean

# (block, output channels, strides of its convs, dilation) for blocks 1-7.
ENCODER_BLOCKS = (
    (1, 64, (1, 2), 1),
    (2, 128, (1, 2), 1),
    (3, 256, (1, 1, 2), 1),
    (4, 512, (1, 1, 1), 1),
    (5, 512, (1, 1, 1), 2),
    (6, 512, (1, 1, 1), 2),
    (7, 512, (1, 1, 1), 1),
)
DECODER_CHANNELS = 256


def conv_as_tap_matmuls(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
    preferred_element_type=None,
) -> jax.Array:
    """`jax.lax.conv_general_dilated` of an NHWC input and an HWIO kernel (what nn.Conv passes) as one matmul per
    kernel tap: the tap's strided, dilated window of the padded input, (N*H'*W', Cin), times its (Cin, Cout) slice of
    the kernel, summed over the taps in `preferred_element_type`.

    Why: XLA:CPU (jax 0.10.2) computes a bfloat16 convolution as a float32 one (it converts the operands first), while
    a bfloat16 dot with float32 accumulation goes to YNNPACK's native AVX512-BF16 kernel; this is the route to bf16
    arithmetic for the convs on such CPUs. Measured on AVX512-BF16 at batch 8 (python -m colorjax.bench bf16_dots and
    zhang --levers, README "Performance"): alone, faster than XLA's conv only at 512 channels; in ECCV16, all convs
    so 1.5-1.7x the bf16 convs, yet 0.3-0.5x PyTorch's bf16 autocast, so off by default (`ECCV16.matmul_blocks`)."""
    del precision  # the dots' default precision, as the conv's
    if lhs_dilation not in (None, (1, 1)) or feature_group_count != 1:
        raise ValueError("conv_as_tap_matmuls computes plain (not transposed, not grouped) convolutions.")
    n, height, width, channels = lhs.shape
    taps_h, taps_w, _, features = rhs.shape
    dh, dw = rhs_dilation or (1, 1)
    sh, sw = window_strides
    if isinstance(padding, str):
        window = ((taps_h - 1) * dh + 1, (taps_w - 1) * dw + 1)
        padding = jax.lax.padtype_to_pads((height, width), window, window_strides, padding)
    (top, bottom), (left, right) = padding
    x = jnp.pad(lhs, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h = (x.shape[1] - (taps_h - 1) * dh - 1) // sh + 1
    out_w = (x.shape[2] - (taps_w - 1) * dw - 1) // sw + 1
    out = None
    for i in range(taps_h):
        for j in range(taps_w):
            window = x[:, i * dh : i * dh + (out_h - 1) * sh + 1 : sh, j * dw : j * dw + (out_w - 1) * sw + 1 : sw]
            product = jnp.dot(
                window.reshape(n * out_h * out_w, channels), rhs[i, j], preferred_element_type=preferred_element_type
            )
            out = product if out is None else out + product
    return out.reshape(n, out_h, out_w, features)


def accumulating_in(accumulation_dtype: Any, as_matmuls: bool = False) -> dict:
    """nn.Conv's arguments for a conv that accumulates and returns `accumulation_dtype` (None: its `dtype`),
    computed as per-tap matmuls (`conv_as_tap_matmuls`) when `as_matmuls`."""
    if accumulation_dtype is None and not as_matmuls:
        return {}
    conv = conv_as_tap_matmuls if as_matmuls else jax.lax.conv_general_dilated
    return {"conv_general_dilated": functools.partial(conv, preferred_element_type=accumulation_dtype)}


def conv3x3(
    features: int,
    name: str,
    *,
    stride: int = 1,
    dilation: int = 1,
    dtype: Any,
    accumulation_dtype: Any = None,
    as_matmuls: bool = False,
) -> nn.Conv:
    """A 3x3 conv padded like PyTorch's `padding=dilation` (symmetric; Flax's "SAME" pads stride-2 convs unevenly);
    `as_matmuls`: computed as 9 per-tap matmuls (`conv_as_tap_matmuls`)."""
    return nn.Conv(
        features,
        (3, 3),
        strides=stride,
        padding=((dilation, dilation), (dilation, dilation)),
        kernel_dilation=dilation,
        dtype=dtype,
        name=name,
        **accumulating_in(accumulation_dtype, as_matmuls),
    )


def upconv4x4(features: int, name: str, *, dtype: Any, accumulation_dtype: Any = None) -> nn.ConvTranspose:
    """PyTorch's ConvTranspose2d(k=4, s=2, p=1): output exactly 2x the input.

    A transposed conv is a conv over the stride-dilated input padded by k - 1 - p = 2 on each side with the kernel
    flipped; `transpose_kernel=True` does the flip and the in/out swap, so the kernel is stored (4, 4, out, in) and
    a PyTorch weight (in, out, kh, kw) maps to it by a plain axis permutation.
    """
    return nn.ConvTranspose(
        features,
        (4, 4),
        strides=(2, 2),
        padding=((2, 2), (2, 2)),
        transpose_kernel=True,
        dtype=dtype,
        preferred_element_type=accumulation_dtype,
        name=name,
    )


class Conv3x3OneChannel(nn.Module):
    """A 3x3 conv (stride 1, padding 1) of a 1-channel input, computed as a matmul of the 9 shifted copies of the
    input (im2col) with the (9, features) kernel. Same parameters (`kernel` (3, 3, 1, features), `bias`), same
    initialisation and same result as `conv3x3(features, ...)`; written out because XLA:CPU's convolution of a
    single input channel is slow.
    """

    features: int
    dtype: Any
    accumulation_dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, 1, self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        n, h, w, _ = x.shape
        padded = jnp.pad(x[..., 0], ((0, 0), (1, 1), (1, 1)))
        patches = jnp.stack([padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=-1)
        kernel = kernel.reshape(9, self.features).astype(self.dtype)
        y = jnp.matmul(patches.astype(self.dtype), kernel, preferred_element_type=self.accumulation_dtype)
        return y + bias.astype(self.dtype)


class PaddedConv3x3(nn.Module):
    """A 3x3 conv (stride 1) whose input is padded by `dilation` with a per-channel value `pad_value` instead of
    zeros: the conv after a folded BatchNorm y = a x + b pads x with -b / a, the x that the BatchNorm maps to the
    zero its original conv padded y with (`fold_batch_norms`).

    Computed as the zero-padded conv plus, at the border pixels, what the padding taps add: sum over the taps (i, j)
    that fall outside the input of kernel[i, j] . pad_value, a (H, W, features) map built from the 3x3 tap sums
    (an explicit per-channel `jnp.pad` before a VALID conv made that layer 4-5x slower on XLA:CPU: measured with
    `bench zhang --levers`, README "Performance").
    """

    features: int
    dilation: int
    dtype: Any
    accumulation_dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, channels, self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        pad_value = self.param("pad_value", nn.initializers.zeros_init(), (channels,), jnp.float32)
        d = self.dilation
        y = jax.lax.conv_general_dilated(
            x,
            kernel.astype(self.dtype),
            window_strides=(1, 1),
            padding=((d, d), (d, d)),
            rhs_dilation=(d, d),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            preferred_element_type=self.accumulation_dtype,
        )
        taps = jnp.einsum("ijc,ijco->ijo", jnp.broadcast_to(pad_value, (3, 3, channels)), kernel)  # (3, 3, features)
        height, width = x.shape[1:3]
        inside_rows, inside_columns = (
            np.array([[0 <= p + (i - 1) * d < size for i in range(3)] for p in range(size)], np.float32)
            for size in (height, width)
        )
        border = taps.sum((0, 1)) - jnp.einsum("hi,wj,ijo->hwo", inside_rows, inside_columns, taps)
        return y + (bias + border).astype(y.dtype)


def fold_batch_norms(variables: dict, epsilon: float = 1e-5) -> dict:
    """ECCV16 variables -> the variables of `ECCV16(batch_norm_folded=True)`: inference only, same outputs up to
    float32 rounding.

    Block k's BatchNorm (k = 1..6) is y = a x + b per channel, a = scale / sqrt(var + eps), b = bias - mean a, and
    feeds block k+1's first conv W (3x3, stride 1, zero padding). W(pad0(a x + b)) = (W a)(pad_c(x)) + sum(W b)
    with c = -b / a, so that conv takes the kernel W a (a along its input channels), the bias + sum(W b) and the
    padding value c, and the BatchNorm goes. Block 7's feeds the transposed conv, whose bias term would depend on
    the output pixel's parity; it stays.
    """
    params = dict(variables["params"])
    stats = dict(variables["batch_stats"])
    for block, _, strides, _ in ENCODER_BLOCKS[:-1]:
        name = f"model{block}_{2 * len(strides)}"
        norm, moments = params.pop(name), stats.pop(name)
        a = norm["scale"] / jnp.sqrt(moments["var"] + epsilon)
        b = norm["bias"] - moments["mean"] * a
        if not bool(jnp.all(a != 0)):
            raise ValueError(f"{name} has a channel of BatchNorm scale 0, which cannot be folded into the next conv.")
        conv = params[f"model{block + 1}_0"]
        params[f"model{block + 1}_0"] = {
            "kernel": conv["kernel"] * a[:, None],
            "bias": conv["bias"] + jnp.einsum("hwio,i->o", conv["kernel"], b),
            "pad_value": -b / a,
        }
    return {"params": params, "batch_stats": stats}


def space_to_batch(x: jax.Array) -> jax.Array:
    """(N, H, W, C) -> (4N, H/2, W/2, C): the four interleaved sub-grids x[:, p::2, q::2] as separate images.

    A 3x3 conv dilated by 2 and padded by 2 equals a plain 3x3 conv padded by 1 on each sub-grid (TensorFlow's
    `atrous_conv2d` trick), and BatchNorm normalises over the same pixels either way, so blocks 5-6 run on the
    sub-grids and `batch_to_space` puts them back.
    """
    n, h, w, c = x.shape
    x = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(2, 4, 0, 1, 3, 5)
    return x.reshape(4 * n, h // 2, w // 2, c)


def batch_to_space(x: jax.Array) -> jax.Array:
    """The inverse of `space_to_batch`."""
    n4, h, w, c = x.shape
    n = n4 // 4
    x = x.reshape(2, 2, n, h, w, c).transpose(2, 3, 0, 4, 1, 5)
    return x.reshape(n, 2 * h, 2 * w, c)


def batch_norm(name: str, *, train: bool, dtype: Any) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, name=name)


def upsample4_bilinear(x: jax.Array) -> jax.Array:
    """x4 bilinear upsampling with half-pixel centres (PyTorch `Upsample(scale_factor=4, mode="bilinear")`)."""
    n, h, w, c = x.shape
    return jax.image.resize(x, (n, 4 * h, 4 * w, c), method="bilinear")


class ECCV16(nn.Module):
    """L (N,H,W,1) in [0,100] -> {"logits": (N,ceil(H/4),ceil(W/4),313), "chroma": (N,H,W,2) ab}."""

    width: float = 1.0
    temperature: float = ANNEALED_MEAN_TEMPERATURE
    dtype: Any = jnp.float32  # computation dtype (bfloat16 on accelerators); parameters stay float32

    # Speed only (same parameters, same outputs; tests/unit/test_eccv16_fast_paths.py): the 1-channel first conv as a
    # matmul made CPU inference ~1.35x faster with an older jaxlib; with jax 0.10.2 the plain conv is as fast or
    # faster on both ISA classes: at batch 1 in all 6 lever runs (1.01-1.24x), at batch 8 in 5 of 6 within 2% or
    # better (0.88-1.23x) (python -m colorjax.bench zhang --levers, README "Performance"), so the matmul is off. The
    # sub-grid form of the dilated blocks 5-6 gave nothing on CPU and is off until an accelerator run shows it helps
    # there (bench gpu).
    first_conv_as_matmul: bool = False
    dilation_as_space_to_batch: bool = False
    # Inference only: variables from `fold_batch_norms` (blocks 1-6's BatchNorms inside the next convs).
    batch_norm_folded: bool = False
    # The dtype the convs accumulate in and return (None: `dtype`): float32 with dtype bfloat16 is bf16 weights and
    # activations with fp32 accumulation (CPUs with native bf16 dot products, python -m colorjax.bench zhang --levers).
    accumulation_dtype: Any = None
    # Speed only: the blocks (1-8) whose 3x3 and 1x1 convs (not the transposed conv, nor the first or folded convs'
    # own forms) run as per-tap matmuls (`conv_as_tap_matmuls`), XLA:CPU's route to native bf16 dots with dtype
    # bfloat16 and float32 accumulation; `zhang --levers` contenders, none by default.
    matmul_blocks: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, L: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        height, width = L.shape[1:3]
        if train and self.batch_norm_folded:
            raise ValueError("ECCV16(batch_norm_folded=True) is for inference: train the unfolded model.")
        x = ((L - 50.0) / 100.0).astype(self.dtype)
        on_sub_grids = False
        for block, channels, strides, dilation in ENCODER_BLOCKS:
            features = scaled_width(channels, self.width)
            # Blocks 5-6 (dilation 2) run on the four sub-grids when the grid's sides are even.
            want_sub_grids = (
                dilation == 2
                and self.dilation_as_space_to_batch
                and (on_sub_grids or (x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0))
            )
            if want_sub_grids != on_sub_grids:
                x = space_to_batch(x) if want_sub_grids else batch_to_space(x)
                on_sub_grids = want_sub_grids
            for i, stride in enumerate(strides):
                name = f"model{block}_{2 * i}"
                if block == 1 and i == 0 and self.first_conv_as_matmul:
                    x = Conv3x3OneChannel(features, self.dtype, self.accumulation_dtype, name=name)(x)
                elif block > 1 and i == 0 and self.batch_norm_folded:
                    dilated = 1 if on_sub_grids else dilation
                    x = PaddedConv3x3(features, dilated, self.dtype, self.accumulation_dtype, name=name)(x)
                else:
                    x = conv3x3(
                        features,
                        name,
                        stride=stride,
                        dilation=1 if on_sub_grids else dilation,
                        dtype=self.dtype,
                        accumulation_dtype=self.accumulation_dtype,
                        as_matmuls=block in self.matmul_blocks,
                    )(x)
                x = nn.relu(x)
            if not (self.batch_norm_folded and block < len(ENCODER_BLOCKS)):
                x = batch_norm(f"model{block}_{2 * len(strides)}", train=train, dtype=self.dtype)(x)

        decoder_channels = scaled_width(DECODER_CHANNELS, self.width)
        accumulation = {"dtype": self.dtype, "accumulation_dtype": self.accumulation_dtype}
        x = nn.relu(upconv4x4(decoder_channels, "model8_0", **accumulation)(x))
        accumulation["as_matmuls"] = 8 in self.matmul_blocks
        x = nn.relu(conv3x3(decoder_channels, "model8_2", **accumulation)(x))
        x = nn.relu(conv3x3(decoder_channels, "model8_4", **accumulation)(x))
        logits = nn.Conv(
            AB_NUM_BINS,
            (1, 1),
            dtype=self.dtype,
            name="model8_6",
            **accumulating_in(self.accumulation_dtype, 8 in self.matmul_blocks),
        )(x)
        logits = logits.astype(jnp.promote_types(self.dtype, jnp.float32))

        chroma = upsample4_bilinear(annealed_mean(logits, self.temperature))
        quarter_height, quarter_width = -(-height // 4), -(-width // 4)
        return {
            "logits": logits[:, :quarter_height, :quarter_width],
            "chroma": chroma[:, :height, :width],
        }
