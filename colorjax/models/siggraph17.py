"""Zhang, Zhu, Isola, Geng, Lin, Yu & Efros (SIGGRAPH 2017) "Real-Time User-Guided Image Colorization".

The user-guided U-Net of the authors' PyTorch port (`colorizers/siggraph17.py`). Its input is (L - 50) / 100, the
user's ab hints / 110 and the 0/1 hint mask, concatenated; without hints both are zeros (the automatic mode). The
authors' interactive tool (junyanz/interactive-deep-colorization, `ColorizeImageTorch` with `maskcent` 0) feeds its
SIGGRAPH17 network the same uncentred {0, 1} mask; only their later retraining code
(richzhang/colorization-pytorch) centres it at 0.5. Encoder blocks 1-7 are as in ECCV16 except that downsampling
takes every other pixel after blocks 1-3 (no strided convs); blocks 8-10 go back up with 4x4 transposed convs, each
added to a 3x3 conv of the matching encoder block (shortcuts 3->8, 2->9, 1->10); block 10 ends in LeakyReLU(0.2)
and a 1x1 conv + tanh gives ab / 110 at full resolution. A 1x1 conv on block 8 gives the 529-way classification
head of the paper (`class_logits`, a 23x23 grid of ab bins, unused by the regression). Widths scale by `width` (1.0
= published, 34.2M parameters).

Submodules are named after the PyTorch state-dict entries (`model8up.0.weight` -> `model8up_0/kernel`).

Input size: the three subsamplings and transposed convs need H, W multiples of 8; other sizes are padded at the
bottom/right to the next multiple of 8 (L by edge replication, the hints by zeros: no hint in the padding) and the
outputs cropped back, so `chroma` is always (N, H, W, 2) and equals the PyTorch port's for multiples of 8.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.models.eccv16 import accumulating_in, batch_norm, conv3x3, upconv4x4
from colorjax.models.width import scaled_width

# (block, output channels, number of convs, dilation) for blocks 1-7.
ENCODER_BLOCKS = (
    (1, 64, 2, 1),
    (2, 128, 2, 1),
    (3, 256, 3, 1),
    (4, 512, 3, 1),
    (5, 512, 3, 2),
    (6, 512, 3, 2),
    (7, 512, 3, 1),
)
NUM_HINT_CLASSES = 529
AB_SCALE = 110.0


class SIGGRAPH17(nn.Module):
    """L (N,H,W,1) in [0,100] -> {"chroma": (N,H,W,2) ab, "class_logits": (N,H'/4,W'/4,529)}.

    `hints = (ab, mask)` are the user's colour points at L's size: ab (N,H,W,2) in ab units (zero where no hint)
    and mask (N,H,W,1), 1 where a hint is given and 0 elsewhere (`colorjax.hints` makes both). None (the automatic
    mode) feeds zeros, as the authors' port does.
    """

    width: float = 1.0
    dtype: Any = jnp.float32
    # The dtype the convs accumulate in and return (None: `dtype`), as `ECCV16.accumulation_dtype`: float32 with
    # dtype bfloat16 is bf16 weights and activations with fp32 accumulation (python -m colorjax.bench zhang --levers
    # --model siggraph17).
    accumulation_dtype: Any = None

    @nn.compact
    def __call__(
        self,
        L: jax.Array,
        *,
        train: bool = False,
        hints: tuple[jax.Array, jax.Array] | None = None,
    ) -> dict[str, jax.Array]:
        batch, height, width = L.shape[:3]
        if hints is None:
            ab_hints = jnp.zeros((batch, height, width, 2), L.dtype)
            hint_mask = jnp.zeros((batch, height, width, 1), L.dtype)
        else:
            ab_hints, hint_mask = hints
            expected = ((batch, height, width, 2), (batch, height, width, 1))
            if (ab_hints.shape, hint_mask.shape) != expected:
                raise ValueError(
                    f"hints must be (ab {expected[0]}, mask {expected[1]}) for L of shape {L.shape}; got "
                    f"{ab_hints.shape} and {hint_mask.shape}."
                )
        pad_height, pad_width = -height % 8, -width % 8
        padding = ((0, 0), (0, pad_height), (0, pad_width), (0, 0))
        x = jnp.concatenate([(L - 50.0) / 100.0, ab_hints / AB_SCALE, hint_mask], axis=-1)
        if not (isinstance(pad_height, int) and isinstance(pad_width, int) and pad_height == pad_width == 0):
            # Only where there is padding to do: jax2onnx 0.17 turns an edge padding by zero rows into a Concat
            # that onnxruntime rejects, so a multiple of 8 (the ONNX export's fixed size) skips it.
            x = jnp.concatenate(
                [jnp.pad(x[..., :1], padding, mode="edge"), jnp.pad(x[..., 1:], padding)],
                axis=-1,
            )
        x = x.astype(self.dtype)

        def conv(channels: int, name: str, dilation: int = 1) -> nn.Conv:
            return conv3x3(
                scaled_width(channels, self.width),
                name,
                dilation=dilation,
                dtype=self.dtype,
                accumulation_dtype=self.accumulation_dtype,
            )

        encoder_outputs = {}
        for block, channels, num_convs, dilation in ENCODER_BLOCKS:
            if block in (2, 3, 4):
                x = x[:, ::2, ::2]  # the port subsamples by slicing, not by strided convs
            for i in range(num_convs):
                x = nn.relu(conv(channels, f"model{block}_{2 * i}", dilation)(x))
            x = batch_norm(f"model{block}_{2 * num_convs}", train=train, dtype=self.dtype)(x)
            encoder_outputs[block] = x

        def up(channels: int, name: str) -> nn.ConvTranspose:
            return upconv4x4(
                scaled_width(channels, self.width), name, dtype=self.dtype, accumulation_dtype=self.accumulation_dtype
            )

        x = up(256, "model8up_0")(x) + conv(256, "model3short8_0")(encoder_outputs[3])
        x = nn.relu(conv(256, "model8_1")(nn.relu(x)))
        x = nn.relu(conv(256, "model8_3")(x))
        block8 = batch_norm("model8_5", train=train, dtype=self.dtype)(x)

        x = up(128, "model9up_0")(block8) + conv(128, "model2short9_0")(encoder_outputs[2])
        x = nn.relu(conv(128, "model9_1")(nn.relu(x)))
        x = batch_norm("model9_3", train=train, dtype=self.dtype)(x)

        x = up(128, "model10up_0")(x) + conv(128, "model1short10_0")(encoder_outputs[1])
        x = nn.leaky_relu(conv(128, "model10_1")(nn.relu(x)), negative_slope=0.2)

        accumulating = accumulating_in(self.accumulation_dtype)
        ab = nn.Conv(2, (1, 1), dtype=self.dtype, name="model_out_0", **accumulating)(x)
        output_dtype = jnp.promote_types(self.dtype, jnp.float32)
        chroma = AB_SCALE * jnp.tanh(ab.astype(output_dtype))
        class_logits = nn.Conv(NUM_HINT_CLASSES, (1, 1), dtype=self.dtype, name="model_class_0", **accumulating)(block8)
        return {
            "chroma": chroma[:, :height, :width],
            "class_logits": class_logits.astype(output_dtype)[:, : -(-height // 4), : -(-width // 4)],
        }
