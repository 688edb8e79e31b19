"""The gray image a model input `L` stands for: CIE lightness -> the sRGB gray of the same lightness.

Models that consume gray *pictures* rather than lightness (ImageNet classifiers fed a gray photo replicated to three
channels, the CIFAR-10 autoencoder trained on gray images in [0, 1]) use this to turn the model input L in [0, 100]
back into pixel values. It is exactly `skimage.color.lab2rgb` of (L, 0, 0) under D65: a neutral colour has
X/Xn = Y/Yn = Z/Zn, so all three sRGB channels equal the sRGB companding of the relative luminance Y.
"""

import jax
import jax.numpy as jnp

_CIE_KAPPA = 24389.0 / 27.0  # 903.3, the slope of the CIE L*(Y) curve below the cube-root knee.


def lightness_to_gray_rgb(L: jax.Array) -> jax.Array:
    """CIE L* in [0, 100] (any shape) -> sRGB gray value in [0, 1] (same shape), float32."""
    L = jnp.clip(jnp.asarray(L, jnp.float32), 0.0, 100.0)
    f = (L + 16.0) / 116.0
    # Inverse of L* = 116 f(Y) - 16: cube above the knee at L = 8, linear below it.
    luminance = jnp.where(L > 8.0, f**3, L / _CIE_KAPPA)
    # sRGB companding (IEC 61966-2-1); the max() keeps the unused branch finite for tiny Y.
    encoded = 1.055 * jnp.power(jnp.maximum(luminance, 0.0031308), 1.0 / 2.4) - 0.055
    gray = jnp.where(luminance <= 0.0031308, 12.92 * luminance, encoded)
    return jnp.clip(gray, 0.0, 1.0)
