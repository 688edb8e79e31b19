"""The CIFAR-10 colorization autoencoder of the VIT report: 32x32 gray in, 32x32 RGB out. Registry name
`cifar10_autoencoder`.

Layers, as the Keras "colorization autoencoder" the report builds on (Atienza, "Advanced Deep Learning with Keras",
2018, ch. 3; code: PacktPublishing/Advanced-Deep-Learning-with-Keras,
`chapter3-autoencoders/colorization-autoencoder-cifar10-3.4.1.py`), 3,431,811 parameters:
- input: the gray image in [0, 1] (the sRGB gray of the model input L, `colorjax.color.lightness_to_gray`); the
  report fed Rec.601 luma of the RGB image / 255, which colorjax's L-only input cannot reproduce exactly;
- encoder: Conv 64 s2, 128 s2, 256 s2 (3x3, "same", ReLU) -> 4x4x256, flatten, Dense 256 (the latent, linear);
- decoder: Dense 4096 (linear), reshape 4x4x256, ConvTranspose 256 s2, 128 s2, 64 s2 (3x3, "same", ReLU),
  ConvTranspose 3 (3x3, stride 1, sigmoid) -> 32x32x3 RGB in [0, 1].
All kernels are 3x3, as Keras' `kernel_size=3`; that is what gives the report's 3.43M parameters (4x4 transposed
kernels would give 4.18M). No BatchNorm or dropout: the report found both made the colours duller. `width` scales
the six conv widths and the decoder's dense layer (1.0 is the report's network; CPU-sized configs use less).

The strided transposed convolutions are `ConvTranspose2x`, the same parameters and outputs as
`nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding="SAME")` computed in a form whose gradient XLA:CPU runs
fast (see its docstring).

The dense layers fix the spatial size to 32x32 (any other input size is an error). Outputs: `rgb` (N,32,32,3) for
the "rgb_mse" loss and `chroma` (N,32,32,2), the ab of `rgb` in CIE Lab, for `colorize` and `evaluate` (which keep
the input's own L, so the prediction's lightness is discarded there). Float32 throughout.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorjax.color import lightness_to_gray, rgb_to_lab
from colorjax.models.width import scaled_width

IMAGE_SIZE = 32


class ConvTranspose2x(nn.Module):
    """`nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding="SAME")`: same parameters, same outputs, 2x size.

    Computed as a stride-1 "SAME" 3x3 convolution of the input spread onto the odd pixels of a grid twice its size
    (zeros elsewhere), which is what a transposed convolution is. Why not `nn.ConvTranspose`: XLA:CPU computes the
    kernel gradient of a strided transposed convolution through a slow generic path, 17x slower than this form
    (19 s against 1.1 s for 8x8x256 -> 16x16x256 at batch 32, measured on 2 CPU cores), which made CPU training of
    this model crawl at about one image per second. On GPUs both forms are fast.
    """

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        n, h, w, c = x.shape
        # Row i of x lands on row 2i + 1: a 3x3 window then sees the neighbours a transposed conv sums.
        spread = jnp.stack([jnp.zeros_like(x), x], axis=2).reshape(n, 2 * h, w, c)
        spread = jnp.stack([jnp.zeros_like(spread), spread], axis=3).reshape(n, 2 * h, 2 * w, c)
        y = jax.lax.conv_general_dilated(spread, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return y + bias


class Cifar10Autoencoder(nn.Module):
    """L (N,32,32,1) in [0,100] -> {"rgb": (N,32,32,3) in [0,1], "chroma": (N,32,32,2) Lab ab}."""

    latent_dim: int = 256
    width: float = 1.0

    @nn.compact
    def __call__(self, L: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
        del train  # No BatchNorm or dropout (see the module docstring).
        if L.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
            raise ValueError(
                f"cifar10_autoencoder takes (N, 32, 32, 1) inputs (its dense layers fix the size), "
                f"got {L.shape}; set the data pipeline's image size to 32."
            )
        x = lightness_to_gray(L)
        for features in (64, 128, 256):
            x = nn.relu(nn.Conv(scaled_width(features, self.width), (3, 3), strides=2, padding="SAME")(x))
        encoded_shape = x.shape[1:]  # (4, 4, 256)
        latent = nn.Dense(self.latent_dim, name="latent")(x.reshape(x.shape[0], -1))

        x = nn.Dense(encoded_shape[0] * encoded_shape[1] * encoded_shape[2])(latent)
        x = x.reshape(x.shape[0], *encoded_shape)
        for features in (256, 128, 64):
            x = nn.relu(ConvTranspose2x(scaled_width(features, self.width))(x))
        rgb = nn.sigmoid(nn.ConvTranspose(3, (3, 3), padding="SAME", name="rgb_head")(x))
        chroma = rgb_to_lab(rgb)[..., 1:]
        return {"rgb": rgb, "chroma": chroma}
