"""The CIFAR-10 colorization autoencoder of the VIT report: 32x32 gray in, 32x32 RGB out. Registry name
`cifar10_autoencoder`.

Layers, as FACTS.md (the Keras "colorization autoencoder" the report builds on), 3,431,811 parameters:
- input: the gray image in [0, 1] (the sRGB gray of the model input L, `colorjax.color.lightness_to_gray`); the
  report fed Rec.601 luma of the RGB image / 255, which colorjax's L-only input cannot reproduce exactly;
- encoder: Conv 64 s2, 128 s2, 256 s2 (3x3, "same", ReLU) -> 4x4x256, flatten, Dense 256 (the latent, linear);
- decoder: Dense 4096 (linear), reshape 4x4x256, ConvTranspose 256 s2, 128 s2, 64 s2 (3x3, "same", ReLU),
  ConvTranspose 3 (3x3, stride 1, sigmoid) -> 32x32x3 RGB in [0, 1].
All kernels are 3x3, as Keras' `kernel_size=3`; that is what gives the report's 3.43M parameters (4x4 transposed
kernels would give 4.18M). No BatchNorm or dropout: the report found both made the colours duller.

The dense layers fix the spatial size to 32x32 (any other input size is an error). Outputs: `rgb` (N,32,32,3) for
the "rgb_mse" loss and `chroma` (N,32,32,2), the ab of `rgb` in CIE Lab, for `colorize` and `evaluate` (which keep
the input's own L, so the prediction's lightness is discarded there). Float32 throughout.
"""

import flax.linen as nn
import jax

from colorjax.color import lightness_to_gray, rgb_to_lab

IMAGE_SIZE = 32


class Cifar10Autoencoder(nn.Module):
    """L (N,32,32,1) in [0,100] -> {"rgb": (N,32,32,3) in [0,1], "chroma": (N,32,32,2) Lab ab}."""

    latent_dim: int = 256

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
            x = nn.relu(nn.Conv(features, (3, 3), strides=2, padding="SAME")(x))
        encoded_shape = x.shape[1:]  # (4, 4, 256)
        latent = nn.Dense(self.latent_dim, name="latent")(x.reshape(x.shape[0], -1))

        x = nn.Dense(encoded_shape[0] * encoded_shape[1] * encoded_shape[2])(latent)
        x = x.reshape(x.shape[0], *encoded_shape)
        for features in (256, 128, 64):
            x = nn.relu(nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding="SAME")(x))
        rgb = nn.sigmoid(nn.ConvTranspose(3, (3, 3), padding="SAME", name="rgb_head")(x))
        chroma = rgb_to_lab(rgb)[..., 1:]
        return {"rgb": rgb, "chroma": chroma}
