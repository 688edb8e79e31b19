"""PRIVATE STAND-IN for `colorjax.color` until that module lands from its own branch. Delete this file at merge.

Only `rgb_to_lab` and `lab_to_rgb` in JAX, following `skimage.color` (sRGB, D65, 2-degree observer), so that the
CIFAR-10 autoencoder and the "rgb_mse" loss can be built and tested before then. Callers import it only when
`from colorjax.color import ...` fails.
"""

import jax
import jax.numpy as jnp

_XYZ_FROM_RGB = jnp.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE_D65 = jnp.array([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb: jax.Array) -> jax.Array:
    """(..., 3) sRGB in [0, 1] -> (..., 3) CIE Lab."""
    rgb = jnp.asarray(rgb, jnp.float32)
    linear = jnp.where(
        rgb > 0.04045, ((jnp.maximum(rgb, 0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92
    )
    xyz = linear @ _XYZ_FROM_RGB.T / _WHITE_D65
    f = jnp.where(xyz > 0.008856, jnp.cbrt(jnp.maximum(xyz, 0.008856)), 7.787 * xyz + 16.0 / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return jnp.stack([L, a, b], axis=-1)


def lab_to_rgb(lab: jax.Array) -> jax.Array:
    """(..., 3) CIE Lab -> (..., 3) sRGB clipped to [0, 1]."""
    lab = jnp.asarray(lab, jnp.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = jnp.maximum(fy - lab[..., 2] / 200.0, 0.0)
    f = jnp.stack([fx, fy, fz], axis=-1)
    xyz = jnp.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787) * _WHITE_D65
    linear = xyz @ jnp.linalg.inv(_XYZ_FROM_RGB).T
    encoded = 1.055 * jnp.maximum(linear, 0.0031308) ** (1.0 / 2.4) - 0.055
    return jnp.clip(jnp.where(linear > 0.0031308, encoded, 12.92 * linear), 0.0, 1.0)
