"""Any-resolution inference for the Iizuka model in bounded memory.

`colorize_large` runs the global path once on the whole image's `global_size` rescale (224 x 224: cheap at any
input size) and the local path at full resolution (edge-padded to a multiple of 8). When the local path would see
more than `max_pixels` pixels in one pass it either

- tiles it ("tile", the default): square tiles, each extended by a margin of context wider than the local path's
  receptive reach (`LOCAL_RECEPTIVE_REACH`), each fused with the SAME global features of the whole image; only each
  tile's core is kept. The local path is fully convolutional and BatchNorm is a per-channel affine map at inference,
  so a core pixel sees exactly the input it would see untiled: tiles meet without seams (on CPU the tiled chroma
  equals the untiled one bit for bit, max difference 0.0; tests/unit/test_iizuka.py allows 1e-3 ab units for other
  convolution algorithms). Cores are sized evenly so the extra work is only the margins (a 4096^2 image under the
  default budget: 9 tiles of 1512^2, 1.23x the pixels); or
- downscales it ("downscale"): the local path runs on the largest multiple-of-8 resize within the budget and the
  chroma is upsampled bilinearly to the input's size (faster, softer colour edges).

What happened is returned in `info` (and logged), so the caller can say so.
"""

import logging
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from colorjax.models.iizuka import LOCAL_MULTIPLE, LOCAL_RECEPTIVE_REACH, round_up
from colorjax.models.jit import jitted_apply

log = logging.getLogger(__name__)

# 2048 x 2048 pixels per local-path pass. At full width on CPU (colorjax/bench/iizuka.py) a 2048^2 image untiled
# peaked at 1.7 GiB RSS, and a 4096^2 image tiled under this budget at 1.5 GiB (183 s on 2 busy cores).
DEFAULT_MAX_PIXELS = 2048 * 2048
# Context kept around each tile's core: the receptive reach rounded up to the stride-8 grid (tiles must start on it).
DEFAULT_TILE_MARGIN = round_up(LOCAL_RECEPTIVE_REACH + 1, LOCAL_MULTIPLE)


def _axis_tiles(length: int, max_tile: int, margin: int) -> tuple[int, list[tuple[int, int, int]]]:
    """Tiling of one axis: (tile length, [(tile start, core start, core end), ...]).

    The axis is cut into the fewest cores that fit `max_tile` with `margin` on both sides, made equal (multiples
    of 8), so the overlap is only the margins. Tiles are shifted inwards at the ends, so every tile has the same
    length (one compilation) and lies inside [0, length); a core then has more context on its inner side and
    the true image border on its outer side, exactly as in the untiled image.
    """
    if length <= max_tile:
        return length, [(0, 0, length)]
    max_core = max_tile - 2 * margin
    core = round_up(math.ceil(length / math.ceil(length / max_core)), LOCAL_MULTIPLE)
    tile = core + 2 * margin
    spans = []
    for core_start in range(0, length, core):
        tile_start = min(max(core_start - margin, 0), length - tile)
        spans.append((tile_start, core_start, min(core_start + core, length)))
    return tile, spans


def colorize_large(
    model: nn.Module,
    variables: dict[str, Any],
    L: jax.Array | np.ndarray,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    strategy: str = "tile",
    tile_margin: int = DEFAULT_TILE_MARGIN,
    global_L: jax.Array | np.ndarray | None = None,
    global_features: jax.Array | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Colorizes L (N, H, W, 1) in [0, 100] at any size with at most `max_pixels` pixels per local-path pass.

    `max_pixels` counts the whole batch (N * padded H * padded W). `strategy` is "tile" or "downscale" (used only
    past the budget). `global_L` (a reference image, any size) or `global_features` (from `encode_global`) replace
    L's own global features: the paper's style transfer; the class logits are then those of the reference.

    Returns (outputs, info): outputs holds numpy "chroma" (N, H, W, 2), "global_features" and, when the model has
    a classifier and its global path ran, "class_logits"; info holds "mode" ("full", "tiled" or "downscaled"),
    "local_size" (the (h, w) the local path saw, before its multiple-of-8 padding), "num_tiles", "tile_size",
    "tile_margin" and a one-line "message".
    """
    if strategy not in ("tile", "downscale"):
        raise ValueError(f"strategy must be 'tile' or 'downscale', got {strategy!r}.")
    L = jnp.asarray(L, jnp.float32)
    if L.ndim != 4 or L.shape[-1] != 1:
        raise ValueError(f"colorize_large expects L of shape (N, H, W, 1); got {L.shape}.")
    if global_L is not None and global_features is not None:
        raise ValueError("Pass either global_L or global_features, not both.")
    n, height, width = L.shape[:3]

    outputs: dict[str, np.ndarray] = {}
    if global_features is None:
        source = L if global_L is None else jnp.asarray(global_L, jnp.float32)
        encoded = jitted_apply(model, "encode_global")(variables, source)
        global_features = encoded["global_features"]
        outputs.update({k: np.asarray(v) for k, v in encoded.items()})
    else:
        outputs["global_features"] = np.asarray(global_features)
    colorize_local = jitted_apply(model, "local_colorize")

    def local(v, tile, g):
        return colorize_local(v, tile, g)["chroma"]

    padded_h, padded_w = round_up(height, LOCAL_MULTIPLE), round_up(width, LOCAL_MULTIPLE)
    info: dict[str, Any] = {
        "mode": "full",
        "local_size": (height, width),
        "num_tiles": 1,
        "tile_size": None,
        "tile_margin": None,
    }
    if n * padded_h * padded_w <= max_pixels:
        chroma = np.asarray(local(variables, L, global_features))
        info["message"] = f"local path at full resolution {height}x{width}"
    elif strategy == "downscale":
        scale = math.sqrt(max_pixels / (n * padded_h * padded_w))
        small_h = max(LOCAL_MULTIPLE, int(height * scale) // LOCAL_MULTIPLE * LOCAL_MULTIPLE)
        small_w = max(LOCAL_MULTIPLE, int(width * scale) // LOCAL_MULTIPLE * LOCAL_MULTIPLE)
        small = jax.image.resize(L, (n, small_h, small_w, 1), method="bilinear", antialias=True)
        small_chroma = local(variables, small, global_features)
        chroma = np.asarray(jax.image.resize(small_chroma, (n, height, width, 2), method="bilinear"))
        info.update(mode="downscaled", local_size=(small_h, small_w))
        info["message"] = (
            f"{height}x{width} is past the budget of {max_pixels} pixels: local path downscaled to "
            f"{small_h}x{small_w}, chroma upsampled back"
        )
    else:
        chroma, tiles_info = _colorize_tiled(local, variables, L, global_features, max_pixels, tile_margin)
        info.update(tiles_info)
    log.info("Iizuka colorize: %s", info["message"])
    outputs["chroma"] = chroma
    return outputs, info


def _colorize_tiled(local, variables, L, global_features, max_pixels, margin):
    n, height, width = L.shape[:3]
    if margin % LOCAL_MULTIPLE or margin <= LOCAL_RECEPTIVE_REACH:
        raise ValueError(
            f"tile_margin must be a multiple of {LOCAL_MULTIPLE} above the receptive reach "
            f"{LOCAL_RECEPTIVE_REACH} (got {margin}); the default is {DEFAULT_TILE_MARGIN}."
        )
    tile = int(math.sqrt(max_pixels / n)) // LOCAL_MULTIPLE * LOCAL_MULTIPLE
    if tile < 2 * margin + LOCAL_MULTIPLE:
        raise ValueError(
            f"max_pixels={max_pixels} allows tiles of {tile}x{tile} for a batch of {n}, too small for a "
            f"context margin of {margin} on each side; raise max_pixels to at least "
            f"{n * (2 * margin + LOCAL_MULTIPLE) ** 2} or use strategy='downscale'."
        )
    # Pad once, as the model would: tiles then start on the stride-8 grid and border tiles see the same edge padding.
    padded = np.asarray(
        jnp.pad(
            L,
            (
                (0, 0),
                (0, round_up(height, LOCAL_MULTIPLE) - height),
                (0, round_up(width, LOCAL_MULTIPLE) - width),
                (0, 0),
            ),
            mode="edge",
        )
    )
    tile_h, rows = _axis_tiles(padded.shape[1], tile, margin)
    tile_w, cols = _axis_tiles(padded.shape[2], tile, margin)
    chroma = np.empty((n, padded.shape[1], padded.shape[2], 2), np.float32)
    for row_start, core_top, core_bottom in rows:
        for col_start, core_left, core_right in cols:
            window = padded[:, row_start : row_start + tile_h, col_start : col_start + tile_w]
            tile_chroma = np.asarray(local(variables, window, global_features))
            chroma[:, core_top:core_bottom, core_left:core_right] = tile_chroma[
                :,
                core_top - row_start : core_bottom - row_start,
                core_left - col_start : core_right - col_start,
            ]
    num_tiles = len(rows) * len(cols)
    info = {
        "mode": "tiled",
        "num_tiles": num_tiles,
        "tile_size": (tile_h, tile_w),
        "tile_margin": margin,
        "message": (
            f"{height}x{width} is past the budget of {max_pixels} pixels: local path tiled at full resolution, "
            f"{num_tiles} tiles of {tile_h}x{tile_w} with a {margin}-pixel context margin"
        ),
    }
    return chroma[:, :height, :width], info
