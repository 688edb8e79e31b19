"""Colour quantization: the output spaces of the classification models.

- CIELUV, Hwang & Zhou (CS231n 2016): U and V in [-100, 100] each cut into 50 bins of width 4 (indices 0..49).
"""

import jax
import jax.numpy as jnp

LUV_NUM_BINS = 50
LUV_RANGE = (-100.0, 100.0)
LUV_BIN_WIDTH = (LUV_RANGE[1] - LUV_RANGE[0]) / LUV_NUM_BINS


def uv_to_bins(uv: jax.Array) -> jax.Array:
    """Bin index (0..49) of each of u and v; values outside [-100, 100] fall in the end bins. Shape kept, int32."""
    index = jnp.floor((uv - LUV_RANGE[0]) / LUV_BIN_WIDTH)
    return jnp.clip(index, 0, LUV_NUM_BINS - 1).astype(jnp.int32)


def bins_to_uv(bins: jax.Array) -> jax.Array:
    """Value of each bin index: the bin's mean (its centre, for values spread evenly within the bin)."""
    return LUV_RANGE[0] + (bins.astype(jnp.float32) + 0.5) * LUV_BIN_WIDTH
