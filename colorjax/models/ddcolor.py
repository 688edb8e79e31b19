"""Kang, Yang, Ouyang, Ren, Li & Xie (ICCV 2023) "DDColor: Towards Photo-Realistic Image Colorization via Dual Decoders".

A Flax port of the authors' PyTorch network (github piddnad/DDColor, Apache-2.0: `ddcolor/model.py` and
`basicsr/archs/ddcolor_arch_utils/{convnext,unet,transformer_utils,position_encoding}.py`), equal to it on their
published weights (`colorjax.models.ddcolor_import` reads them; tests/integration/test_ddcolor.py compares block by block).

- Input: the grey photo as RGB in [0, 1], normalised with the ImageNet mean/std (the checkpoint's `mean`/`std`
  buffers, `IMAGENET_MEAN`/`IMAGENET_STD`). The colorjax contract feeds L in [0, 100]; the module turns it into that
  grey RGB as the authors' pipeline does, with OpenCV's float Lab -> RGB of (L, 0, 0)
  (`colorjax.color.lab_to_rgb_opencv`; `ddcolor/pipeline.py` calls `cv2.cvtColor(..., COLOR_LAB2RGB)`).
- Encoder (`ConvNeXt`, convnext.py): stem conv 4x4 stride 4 + LayerNorm, then per stage a downsampling
  (LayerNorm + conv 2x2 stride 2, stages 1-3) and ConvNeXt blocks (depthwise 7x7 -> LayerNorm -> Linear 4x ->
  exact erf GELU (`nn.GELU()`) -> Linear -> layer scale `gamma` -> residual). All its LayerNorms use eps 1e-6.
  Each stage's output goes through its own LayerNorm (`norm0`..`norm3`, read by forward hooks) to give the
  features at 1/4, 1/8, 1/16, 1/32; the main path continues un-normed. The authors' final `norm` (and, in the
  published files, a `head_cls` classifier) sit in the checkpoint but never reach the colours: they are not here.
- Pixel decoder (`UnetBlockWide` x 3 and `CustomPixelShuffle_ICNR`, unet.py): 1/32 -> 1/16 -> 1/8 -> 1/4 with
  widths nf, nf, nf / 2, then x4 to full resolution with nf / 2 channels (the pixel embedding). Each upsampling
  is a 1x1 conv -> (BatchNorm) -> ReLU -> PixelShuffle (PyTorch's channel order, `pixel_shuffle`) -> replication
  pad left/top 1 -> 2x2 average pool stride 1 (the "blur"). The convs are spectral-normalised in PyTorch; their
  eval-mode weight `weight_orig / sigma` is folded into the Flax kernel at import.
- Colour decoder (`MultiScaleColorDecoder`, model.py): learnable colour queries (`query_feat`) and their
  positional embeddings (`query_embed`), `dec_layers` layers cycling over the three decoder scales (1/16, 1/8,
  1/4), each cross-attention to that scale's 1x1-projected features (+ a level embedding; sine positions
  normalised to 2 pi, added to the keys only) **before** self-attention, then an FFN (ReLU); post-norm
  LayerNorms (eps 1e-5); positions are added to queries and keys, never to values. Then LayerNorm -> 3-layer MLP
  -> colour embeddings.
- Fusion: the colour embeddings dotted with the pixel embedding (einsum) give `num_queries` maps, concatenated
  with the normalised input and mixed by a (spectral-normalised) 1x1 conv into ab in CIE Lab units (no tanh).

Submodules are named after the PyTorch state-dict entries (`decoder.layers.0.shuf.conv.0` ->
`decoder/layers_0/shuf/conv_0`; the encoder is the authors' `encoder.arch`). `size="large"` (ConvNeXt-L, 227.9M
parameters in PyTorch) and `size="tiny"` (ConvNeXt-T, 55.0M) are the published networks; every width is a field,
so a small variant runs on a CPU in tests. 100 queries, hidden 256, 8 heads, FFN 2048 and 9 layers are the
published decoder (the authors' class default of 256 queries matches no published file).

Input size: the authors' network needs H, W multiples of 32 (their pipeline resizes every photo to 512 x 512);
other sizes are padded at the bottom/right by edge replication to the next multiple and the output cropped back,
so `chroma` is always (N, H, W, 2) and equals the authors' network at multiples of 32.

Speed (colorjax/bench/ddcolor.py; the same numbers up to float rounding, tests/test_ddcolor.py): on a CPU the
7 x 7 depthwise convs are 49 fused multiply-adds (`DepthwiseConv`; XLA:CPU's grouped convolution is 20-30x slower);
the colour embeddings are mixed into the pixel embedding before its last x4 upsampling, and the fusion conv's
colour-map half into the embeddings before that (`fold_fusion`: the upsampling, padding and pooling at full
resolution move 2 channels, not 256, and the 1/4-resolution product makes 2 channels, not 100); the attention
weights are keys-major. Together 1.3-1.6x on DDColor-T (2 shared cores).

Training note: the Flax kernels hold the folded spectral-normalised weights; fine-tuning trains them as plain
convs (the authors' training re-estimates sigma by power iteration at every step).
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from colorjax.color import lab_to_rgb_opencv
from colorjax.models.eccv16 import batch_norm

# The `mean` / `std` buffers of the authors' DDColor (ImageNet's channel statistics).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The published encoders (`ddcolor/model.py` ImageEncoder: convnext-l and convnext-t).
SIZES: dict[str, dict[str, tuple[int, ...]]] = {
    "large": {"depths": (3, 3, 27, 3), "dims": (192, 384, 768, 1536)},
    "tiny": {"depths": (3, 3, 9, 3), "dims": (96, 192, 384, 768)},
}
INPUT_MULTIPLE = 32  # the encoder's total stride
# The authors' pipeline around the network (`ColorizationPipeline.process`, piddnad/DDColor ddcolor/pipeline.py,
# the same steps as modelscope's ddcolor_image_colorization_pipeline.py) as colorjax `config.inference` settings
# (`colorjax.inference.Colorizer` runs them; `runs.published_config` and configs/ddcolor.py apply them): the colour
# photo resized to 512 x 512 whatever its aspect (`cv2.resize`, bilinear, no antialiasing), L in OpenCV's float32
# Lab throughout, the predicted ab brought to the photo's size by `F.interpolate`'s default nearest neighbour.
AUTHORS_INFERENCE = {
    "resolution": 512,
    "square": True,
    "color_conversion": "opencv",
    "input_resize": "color_bilinear",
    "chroma_upsampling": "nearest",
}
NUM_SCALES = 3  # decoder scales the colour decoder cycles over (1/16, 1/8, 1/4)
CONVNEXT_EPS = 1e-6  # convnext.py's LayerNorms
TRANSFORMER_EPS = 1e-5  # torch.nn.LayerNorm's default, in transformer_utils.py and the decoder norm
LAYER_SCALE_INIT = 1e-6  # ConvNeXt's layer_scale_init_value
SINE_TEMPERATURE = 10000.0  # position_encoding.py


def gelu_exact(x: jax.Array) -> jax.Array:
    """PyTorch's `nn.GELU()`: x * Phi(x) with the error function (Flax's `nn.gelu` defaults to the tanh form)."""
    return jax.nn.gelu(x, approximate=False)


def layer_norm(epsilon: float, name: str, dtype: Any) -> nn.LayerNorm:
    """A LayerNorm over the last (channel) axis with PyTorch's two-pass variance (mean of squared deviations).

    On NHWC arrays it is also the authors' `LayerNorm(data_format="channels_first")` of NCHW arrays.
    """
    return nn.LayerNorm(epsilon=epsilon, use_fast_variance=False, dtype=dtype, name=name)


def pixel_shuffle(x: jax.Array, scale: int) -> jax.Array:
    """PyTorch's `nn.PixelShuffle(scale)` on NHWC: input channel c * scale^2 + i * scale + j becomes row i,
    column j of output channel c's scale x scale cell (TensorFlow's depth_to_space orders them (i * scale + j) * C
    + c instead, which would scramble the published weights)."""
    n, h, w, c = x.shape
    channels = c // (scale * scale)
    x = x.reshape(n, h, w, channels, scale, scale)
    x = x.transpose(0, 1, 4, 2, 5, 3)
    return x.reshape(n, h * scale, w * scale, channels)


def blur(x: jax.Array) -> jax.Array:
    """`CustomPixelShuffle_ICNR`'s blur: ReplicationPad2d((1, 0, 1, 0)) then AvgPool2d(2, stride=1), size kept."""
    # The first row and column repeated: what `jnp.pad(mode="edge")` computes, which lowers to Concats with empty
    # operands for the unpadded sides, and jax2onnx writes those with shapes onnxruntime rejects.
    x = jnp.concatenate([x[:, :1], x], axis=1)
    x = jnp.concatenate([x[:, :, :1], x], axis=2)
    return nn.avg_pool(x, (2, 2), strides=(1, 1), padding="VALID")


def sine_positions(height: int, width: int, num_feats: int) -> np.ndarray:
    """`PositionEmbeddingSine(num_feats, normalize=True)` of an unmasked (height, width) map, as (height * width,
    2 * num_feats) rows in row-major pixel order: y features then x features, each sin/cos interleaved, positions
    (k + 1) / (n + 1e-6) * 2 pi."""
    eps = 1e-6
    y = np.arange(1, height + 1, dtype=np.float32) / np.float32(height + eps) * np.float32(2 * math.pi)
    x = np.arange(1, width + 1, dtype=np.float32) / np.float32(width + eps) * np.float32(2 * math.pi)
    dim_t = np.arange(num_feats, dtype=np.float32)
    dim_t = np.float32(SINE_TEMPERATURE) ** (2 * (dim_t // 2) / np.float32(num_feats))

    def encode(positions: np.ndarray) -> np.ndarray:
        angles = positions[:, None] / dim_t
        return np.stack([np.sin(angles[:, 0::2]), np.cos(angles[:, 1::2])], axis=-1).reshape(len(positions), -1)

    pos_y = np.broadcast_to(encode(y)[:, None, :], (height, width, num_feats))
    pos_x = np.broadcast_to(encode(x)[None, :, :], (height, width, num_feats))
    return np.concatenate([pos_y, pos_x], axis=-1).reshape(height * width, 2 * num_feats).astype(np.float32)


# ----------------------------------------------------------------------------------------------------- encoder


class DepthwiseConv(nn.Module):
    """A depthwise k x k convolution, stride 1, zero padding k // 2, with `nn.Conv`'s parameters (`kernel` (k, k, 1,
    features), `bias`), so it reads the same weights.

    `as_shifts`: computed as k^2 shifted multiply-adds of the padded input, which XLA fuses into one loop (in the
    promoted float32 for bfloat16 inputs, so 49 terms do not round 49 times). XLA:CPU's grouped convolution is
    20-30x slower for DDColor's 7 x 7 (1 x 128 x 128 x 96, 2 cores: 102 ms against 3.8 ms; batch 8: 1454 against
    157 ms; colorjax/bench/ddcolor.py). None (the default): shifts on a CPU, the convolution elsewhere (GPUs have
    depthwise kernels of their own; not measured there)."""

    features: int
    kernel_size: int = 7
    as_shifts: bool | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, pad = self.kernel_size, self.kernel_size // 2
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, 1, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        as_shifts = jax.default_backend() == "cpu" if self.as_shifts is None else self.as_shifts
        if not as_shifts:
            y = jax.lax.conv_general_dilated(
                x.astype(self.dtype),
                kernel.astype(self.dtype),
                (1, 1),
                ((pad, pad), (pad, pad)),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                feature_group_count=self.features,
            )
            return y + bias.astype(self.dtype)
        compute = jnp.promote_types(self.dtype, jnp.float32)
        height, width = x.shape[1:3]
        padded = jnp.pad(x.astype(compute), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        weights = kernel.astype(compute)[:, :, 0, :]
        y = bias.astype(compute)
        for i in range(k):
            for j in range(k):
                y = y + padded[:, i : i + height, j : j + width, :] * weights[i, j]
        return y.astype(self.dtype)


class ConvNeXtBlock(nn.Module):
    """convnext.py `Block`: x + gamma * Linear(GELU(Linear(LN(dwconv7x7(x))))) (drop path is off at inference)."""

    dim: int
    dtype: Any = jnp.float32
    depthwise_as_shifts: bool | None = None  # `DepthwiseConv.as_shifts`

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        # Depthwise: Flax kernel (7, 7, 1, dim) <- PyTorch weight (dim, 1, 7, 7), the usual conv permutation.
        y = DepthwiseConv(self.dim, 7, as_shifts=self.depthwise_as_shifts, dtype=self.dtype, name="dwconv")(x)
        y = layer_norm(CONVNEXT_EPS, "norm", self.dtype)(y)
        y = gelu_exact(nn.Dense(4 * self.dim, dtype=self.dtype, name="pwconv1")(y))
        y = nn.Dense(self.dim, dtype=self.dtype, name="pwconv2")(y)
        gamma = self.param("gamma", nn.initializers.constant(LAYER_SCALE_INIT), (self.dim,))
        return x + gamma.astype(y.dtype) * y


class ConvNeXt(nn.Module):
    """convnext.py `ConvNeXt` as DDColor's encoder: the four stage outputs, each through its own LayerNorm
    (`norm0`..`norm3`, at strides 4, 8, 16, 32)."""

    depths: tuple[int, ...]
    dims: tuple[int, ...]
    dtype: Any = jnp.float32
    depthwise_as_shifts: bool | None = None  # `DepthwiseConv.as_shifts`

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, ...]:
        features = []
        for stage, (depth, dim) in enumerate(zip(self.depths, self.dims, strict=True)):
            if stage == 0:
                x = nn.Conv(dim, (4, 4), strides=4, padding="VALID", dtype=self.dtype, name="downsample_layers_0_0")(x)
                x = layer_norm(CONVNEXT_EPS, "downsample_layers_0_1", self.dtype)(x)
            else:
                x = layer_norm(CONVNEXT_EPS, f"downsample_layers_{stage}_0", self.dtype)(x)
                conv = nn.Conv(
                    dim, (2, 2), strides=2, padding="VALID", dtype=self.dtype, name=f"downsample_layers_{stage}_1"
                )
                x = conv(x)
            for block in range(depth):
                x = ConvNeXtBlock(
                    dim, dtype=self.dtype, depthwise_as_shifts=self.depthwise_as_shifts, name=f"stages_{stage}_{block}"
                )(x)
            features.append(layer_norm(CONVNEXT_EPS, f"norm{stage}", self.dtype)(x))
        return tuple(features)


# ----------------------------------------------------------------------------------------------- pixel decoder


class PixelShuffleUpsample(nn.Module):
    """unet.py `CustomPixelShuffle_ICNR` (blur on): 1x1 conv to features * scale^2 (+ BatchNorm where `batch_norm`,
    the U-Net blocks' `extra_bn=True`, which also drops the conv's bias) -> ReLU -> PixelShuffle -> blur."""

    features: int
    scale: int = 2
    batch_norm: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, mix: jax.Array | None = None) -> jax.Array:
        """The upsampled features (N, H * scale, W * scale, features); with `mix` (N, Q, features), their mix
        einsum("nqc,nhwc->nhwq") instead, computed before the shuffle and the blur: both move each channel's pixels
        alike and linearly, so they commute with mixing channels, and at full resolution only Q channels are
        shuffled, padded and pooled instead of `features` (DDColor: 100 instead of 256)."""
        channels = self.features * self.scale * self.scale
        x = nn.Conv(channels, (1, 1), use_bias=not self.batch_norm, dtype=self.dtype, name="conv_0")(x)
        if self.batch_norm:
            x = batch_norm("conv_1", train=train, dtype=self.dtype)(x)
        x = nn.relu(x)
        if mix is not None:  # channel c * scale^2 + s (PyTorch's order) -> query q * scale^2 + s
            n, h, w, _ = x.shape
            x = x.reshape(n, h, w, self.features, self.scale * self.scale)
            x = jnp.einsum("nqc,nhwcs->nhwqs", mix.astype(x.dtype), x).reshape(n, h, w, -1)
        return blur(pixel_shuffle(x, self.scale))


class UnetBlockWide(nn.Module):
    """unet.py `UnetBlockWide`: upsample x2 (`shuf`), BatchNorm the encoder skip (`bn`), ReLU(concat), then 3x3 conv
    (no bias) -> ReLU -> BatchNorm (`conv.0`, `conv.2`)."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, up_in: jax.Array, skip: jax.Array, *, train: bool = False) -> jax.Array:
        up = PixelShuffleUpsample(self.features, scale=2, dtype=self.dtype, name="shuf")(up_in, train=train)
        skip = batch_norm("bn", train=train, dtype=self.dtype)(skip)
        x = nn.relu(jnp.concatenate([up, skip], axis=-1))
        x = nn.Conv(self.features, (3, 3), padding=1, use_bias=False, dtype=self.dtype, name="conv_0")(x)
        return batch_norm("conv_2", train=train, dtype=self.dtype)(nn.relu(x))


# ---------------------------------------------------------------------------------------------- colour decoder


class MultiheadAttention(nn.Module):
    """`torch.nn.MultiheadAttention` (batch first here): q, k, v projections (PyTorch packs them in one
    `in_proj_weight` of rows [q; k; v]), softmax(q k^T / sqrt(head_dim)) v per head, then `out_proj`.

    The attention weights are laid out keys-major (N, heads, keys, queries): the colour decoder's 100 queries
    attend to up to (S/4)^2 keys (16,384 at 512), and in that layout XLA:CPU feeds them to the second product
    without transposing the (N, 8, 16384, 100) array first (DDColor-T at 512 x 512: 10% faster end to end)."""

    embed_dim: int
    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, query: jax.Array, key: jax.Array, value: jax.Array) -> jax.Array:
        head_dim = self.embed_dim // self.num_heads

        def project(x: jax.Array, name: str) -> jax.Array:
            x = nn.Dense(self.embed_dim, dtype=self.dtype, name=name)(x)
            return x.reshape(*x.shape[:-1], self.num_heads, head_dim)

        q = project(query, "q_proj") * (head_dim**-0.5)
        k, v = project(key, "k_proj"), project(value, "v_proj")
        logits = jnp.einsum("nqhd,nkhd->nhkq", q, k).astype(jnp.float32)
        weights = jax.nn.softmax(logits, axis=2).astype(v.dtype)
        out = jnp.einsum("nhkq,nkhd->nqhd", weights, v).reshape(*query.shape[:-1], self.embed_dim)
        return nn.Dense(self.embed_dim, dtype=self.dtype, name="out_proj")(out)


class CrossAttentionLayer(nn.Module):
    """transformer_utils.py `CrossAttentionLayer` (post-norm): LN(tgt + attn(tgt + query_pos, memory + pos, memory))."""

    d_model: int
    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tgt: jax.Array, memory: jax.Array, pos: jax.Array, query_pos: jax.Array) -> jax.Array:
        attention = MultiheadAttention(self.d_model, self.num_heads, dtype=self.dtype, name="multihead_attn")
        tgt = tgt + attention(tgt + query_pos, memory + pos, memory)
        return layer_norm(TRANSFORMER_EPS, "norm", self.dtype)(tgt)


class SelfAttentionLayer(nn.Module):
    """transformer_utils.py `SelfAttentionLayer` (post-norm): LN(tgt + attn(tgt + query_pos, tgt + query_pos, tgt))."""

    d_model: int
    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tgt: jax.Array, query_pos: jax.Array) -> jax.Array:
        q = k = tgt + query_pos
        tgt = tgt + MultiheadAttention(self.d_model, self.num_heads, dtype=self.dtype, name="self_attn")(q, k, tgt)
        return layer_norm(TRANSFORMER_EPS, "norm", self.dtype)(tgt)


class FFNLayer(nn.Module):
    """transformer_utils.py `FFNLayer` (post-norm, ReLU): LN(tgt + linear2(relu(linear1(tgt))))."""

    d_model: int
    dim_feedforward: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tgt: jax.Array) -> jax.Array:
        x = nn.relu(nn.Dense(self.dim_feedforward, dtype=self.dtype, name="linear1")(tgt))
        tgt = tgt + nn.Dense(self.d_model, dtype=self.dtype, name="linear2")(x)
        return layer_norm(TRANSFORMER_EPS, "norm", self.dtype)(tgt)


class MLP(nn.Module):
    """transformer_utils.py `MLP`: Linear layers with ReLU between them."""

    features: tuple[int, ...]
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, features in enumerate(self.features):
            x = nn.Dense(features, dtype=self.dtype, name=f"layers_{i}")(x)
            if i < len(self.features) - 1:
                x = nn.relu(x)
        return x


class MultiScaleColorDecoder(nn.Module):
    """model.py `MultiScaleColorDecoder`: colour queries attending to the three decoder scales in turn ->
    colour embeddings -> (N, H, W, num_queries) maps, the einsum of the embeddings with the pixel embedding."""

    hidden_dim: int = 256
    num_queries: int = 100
    num_heads: int = 8
    dim_feedforward: int = 2048
    dec_layers: int = 9
    color_embed_dim: int = 256
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, feature_pyramid: tuple[jax.Array, ...], img_features: jax.Array | None = None) -> jax.Array:
        """The colour maps (N, H, W, num_queries) of the pixel embedding `img_features`; without it, the colour
        embeddings (N, num_queries, color_embed_dim) themselves (`Decoder` mixes them in before upsampling)."""
        batch = feature_pyramid[0].shape[0]
        level_embed = nn.Embed(NUM_SCALES, self.hidden_dim, name="level_embed")(jnp.arange(NUM_SCALES)).astype(
            self.dtype
        )
        sources, positions = [], []
        for level, feature in enumerate(feature_pyramid):
            _, height, width, _ = feature.shape
            projected = nn.Conv(self.hidden_dim, (1, 1), dtype=self.dtype, name=f"input_proj_{level}")(feature)
            sources.append(projected.reshape(batch, height * width, self.hidden_dim) + level_embed[level])
            positions.append(jnp.asarray(sine_positions(height, width, self.hidden_dim // 2), self.dtype)[None])

        queries = jnp.arange(self.num_queries)
        query_pos = nn.Embed(self.num_queries, self.hidden_dim, name="query_embed")(queries)[None].astype(self.dtype)
        output = jnp.broadcast_to(
            nn.Embed(self.num_queries, self.hidden_dim, name="query_feat")(queries)[None],
            (batch, self.num_queries, self.hidden_dim),
        ).astype(self.dtype)
        for i in range(self.dec_layers):
            level = i % NUM_SCALES
            output = CrossAttentionLayer(
                self.hidden_dim, self.num_heads, dtype=self.dtype, name=f"transformer_cross_attention_layers_{i}"
            )(output, sources[level], positions[level], query_pos)
            output = SelfAttentionLayer(
                self.hidden_dim, self.num_heads, dtype=self.dtype, name=f"transformer_self_attention_layers_{i}"
            )(output, query_pos)
            output = FFNLayer(
                self.hidden_dim, self.dim_feedforward, dtype=self.dtype, name=f"transformer_ffn_layers_{i}"
            )(output)
        output = layer_norm(TRANSFORMER_EPS, "decoder_norm", self.dtype)(output)
        features = (self.hidden_dim, self.hidden_dim, self.color_embed_dim)
        color_embed = MLP(features, dtype=self.dtype, name="color_embed")(output)
        if img_features is None:
            return color_embed
        return jnp.einsum("bqc,bhwc->bhwq", color_embed, img_features)


class Decoder(nn.Module):
    """model.py `DuelDecoder`: the pixel decoder (`layers`, `last_shuf`) and the colour decoder."""

    nf: int = 512
    num_queries: int = 100
    hidden_dim: int = 256
    num_heads: int = 8
    dim_feedforward: int = 2048
    dec_layers: int = 9
    dtype: Any = jnp.float32

    def setup(self):
        # in `make_layers`: widths nf, nf and nf // 2 (the last block halves it), then x4 at nf // 2.
        self.layers = [UnetBlockWide(width, dtype=self.dtype) for width in (self.nf, self.nf, self.nf // 2)]
        self.last_shuf = PixelShuffleUpsample(self.nf // 2, scale=4, batch_norm=False, dtype=self.dtype)
        self.color_decoder = MultiScaleColorDecoder(
            hidden_dim=self.hidden_dim,
            num_queries=self.num_queries,
            num_heads=self.num_heads,
            dim_feedforward=self.dim_feedforward,
            dec_layers=self.dec_layers,
            color_embed_dim=self.nf // 2,
            dtype=self.dtype,
        )

    def pixel_decoder(self, features: tuple[jax.Array, ...], *, train: bool = False) -> tuple[jax.Array, ...]:
        """The encoder's normed features (1/4 .. 1/32) -> (out0 1/16, out1 1/8, out2 1/4, pixel embedding 1/1)."""
        x = features[-1]
        outputs = []
        for block, skip in zip(self.layers, features[-2::-1], strict=True):
            x = block(x, skip, train=train)
            outputs.append(x)
        return (*outputs, self.last_shuf(x, train=train))

    def __call__(
        self, features: tuple[jax.Array, ...], *, train: bool = False, mix: jax.Array | None = None
    ) -> jax.Array:
        """The colour maps (N, H, W, num_queries): the authors' einsum of the colour embeddings with the pixel
        embedding, computed before the last x4 upsampling (`PixelShuffleUpsample(mix=...)`). With `mix`
        (num_queries, O), a 1x1 conv's weights over the maps, the mixed maps (N, H, W, O) instead, also before the
        upsampling: the colour embeddings are mixed first (O x C), so the full-resolution work is O channels."""
        x = features[-1]
        outputs = []
        for block, skip in zip(self.layers, features[-2::-1], strict=True):
            x = block(x, skip, train=train)
            outputs.append(x)
        color_embed = self.color_decoder(tuple(outputs))
        if mix is not None:
            color_embed = jnp.einsum("nqc,qo->noc", color_embed, mix.astype(color_embed.dtype))
        return self.last_shuf(x, train=train, mix=color_embed)


class FusionConv(nn.Module):
    """model.py `refine_net`: custom_conv_layer(num_queries + 3, 2, ks=1, use_activ=False, Spectral), with bias: a 1x1
    conv with `nn.Conv`'s parameters (`kernel` (1, 1, in_features, features), `bias`), declared in `setup` so that
    `DDColor` can also read its kernel and split it (colour maps | input)."""

    features: int
    in_features: int
    dtype: Any = jnp.float32

    def setup(self):
        self.kernel = self.param("kernel", nn.initializers.lecun_normal(), (1, 1, self.in_features, self.features))
        self.bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        return x @ self.kernel[0, 0].astype(self.dtype) + self.bias.astype(self.dtype)


# ------------------------------------------------------------------------------------------------------ DDColor


class DDColor(nn.Module):
    """L (N,H,W,1) in [0,100] -> {"chroma": (N,H,W,2) ab}; `colorize_rgb` is the authors' network itself
    (grey RGB in [0, 1], NHWC -> ab). Defaults are the published large network (`build_ddcolor(size=...)` picks one)."""

    depths: tuple[int, ...] = SIZES["large"]["depths"]
    dims: tuple[int, ...] = SIZES["large"]["dims"]
    nf: int = 512
    num_queries: int = 100
    hidden_dim: int = 256
    num_heads: int = 8
    dim_feedforward: int = 2048
    dec_layers: int = 9
    dtype: Any = jnp.float32
    depthwise_as_shifts: bool | None = None  # the encoder's 7 x 7 depthwise convs (`DepthwiseConv.as_shifts`)
    # The fusion conv's colour-map half applied to the colour embeddings, before the x4 upsampling (`colorize_rgb`);
    # False: the authors' order of operations (the same numbers up to float rounding; the FLOP count of theirs).
    fold_fusion: bool = True

    def setup(self):
        self.encoder = ConvNeXt(
            tuple(self.depths), tuple(self.dims), dtype=self.dtype, depthwise_as_shifts=self.depthwise_as_shifts
        )
        self.decoder = Decoder(
            nf=self.nf,
            num_queries=self.num_queries,
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
            dim_feedforward=self.dim_feedforward,
            dec_layers=self.dec_layers,
            dtype=self.dtype,
        )
        self.refine_net = FusionConv(2, self.num_queries + 3, dtype=self.dtype)

    def normalize(self, rgb: jax.Array) -> jax.Array:
        """DDColor.normalize: (rgb - mean) / std with the ImageNet statistics."""
        return (rgb - jnp.asarray(IMAGENET_MEAN, rgb.dtype)) / jnp.asarray(IMAGENET_STD, rgb.dtype)

    def colorize_rgb(self, rgb: jax.Array, *, train: bool = False) -> jax.Array:
        """The authors' `DDColor.forward` on NHWC: grey RGB in [0, 1] (N,H,W,3), H and W multiples of 32 -> ab
        (N,H,W,2) in the compute dtype."""
        x = self.normalize(rgb.astype(self.dtype))
        features = self.encoder(x)
        if not self.fold_fusion:
            color_maps = self.decoder(features, train=train)
            return self.refine_net(jnp.concatenate([color_maps, x], axis=-1))
        # refine_net(concat(maps, x)) = maps @ K_maps + x @ K_x + b, and maps @ K_maps is computed by the decoder
        # before its upsampling (`Decoder(mix=...)`): 2 full-resolution channels instead of num_queries + 3.
        kernel = self.refine_net.kernel[0, 0].astype(self.dtype)
        mixed = self.decoder(features, train=train, mix=kernel[: self.num_queries])
        return mixed + x @ kernel[self.num_queries :] + self.refine_net.bias.astype(self.dtype)

    def __call__(self, L: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        batch, height, width = L.shape[:3]
        if not (isinstance(height, int) and isinstance(width, int)):
            # Symbolic sizes (a shape-polymorphic export) stop here, not after minutes of symbolic shape algebra:
            # the colour decoder's sine positions are computed for concrete sizes.
            raise TypeError("DDColor needs a concrete height and width (its positional encodings are fixed per size).")
        pad_height, pad_width = -height % INPUT_MULTIPLE, -width % INPUT_MULTIPLE
        if pad_height or pad_width:  # (a pad of nothing would still lower to Concats with empty operands: `blur`)
            L = jnp.pad(L, ((0, 0), (0, pad_height), (0, pad_width), (0, 0)), mode="edge")
        # The authors' input: OpenCV's Lab -> RGB of (L, 0, 0) (`ddcolor/pipeline.py`).
        gray_lab = jnp.concatenate([L, jnp.zeros((*L.shape[:3], 2), L.dtype)], axis=-1)
        ab = self.colorize_rgb(lab_to_rgb_opencv(gray_lab), train=train)
        return {"chroma": ab.astype(jnp.promote_types(self.dtype, jnp.float32))[:, :height, :width]}


def build_ddcolor(size: str = "large", encoder_init: str | None = None, **fields: Any) -> DDColor:
    """The registry's `ddcolor`: the published `size` ("large": ConvNeXt-L, "tiny": ConvNeXt-T) with any field
    overridden (e.g. depths=(1, 1, 1, 1), dims=(8, 16, 32, 64), nf=32, num_queries=4, hidden_dim=16, num_heads=2,
    dim_feedforward=32, dec_layers=3 for a CPU-sized test network). `encoder_init` (config.model.encoder_init: the
    ImageNet-22k ConvNeXt a fresh run's encoder starts from) is read by `convnext_import.load_ddcolor_encoder` when
    a run starts, never by the network."""
    del encoder_init
    if size not in SIZES:
        raise ValueError(f"DDColor size must be one of {', '.join(SIZES)}, not {size!r}.")
    fields = {**SIZES[size], **fields}
    # Tuples, also when a run's JSON config gives lists: Linen modules must hash (`models.jit.jitted_apply`).
    fields.update({key: tuple(fields[key]) for key in ("depths", "dims")})
    return DDColor(**fields)


# The DDColor fields that fix its parameter shapes (the importer reads them from a file) and the head count.
WIDTH_FIELDS = ("depths", "dims", "nf", "num_queries", "hidden_dim", "num_heads", "dim_feedforward", "dec_layers")


def widths(module: DDColor) -> dict[str, Any]:
    """The `build_ddcolor` kwargs that rebuild `module`'s network (what a run stores as its model kwargs)."""
    return {field: getattr(module, field) for field in WIDTH_FIELDS}
