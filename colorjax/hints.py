"""Colour hints for the user-guided SIGGRAPH17 model (Zhang et al. 2017): from a file, a reference photo, or drawn.

A hint is a square patch of the photo whose colour the user fixes: its centre pixel (x, y) in the photo's own
pixel coordinates (x to the right, y down, from 0), an odd side `size` (default 1) and a colour, given either as
`"color": "#rrggbb"` (its CIE Lab chroma is used; its lightness is the photo's own) or as `"ab": [a, b]` in CIE
Lab units within the model's range, +-110. A hints file is a JSON list of such points:

    [{"x": 120, "y": 40, "color": "#3a7bd5"}, {"x": 30, "y": 200, "ab": [20, 60], "size": 5}]

The Python API takes the same list of dicts (or `Hint` objects). `hint_maps` turns hints into what the model reads
at its working resolution: an ab map (zero where no hint) and a 0/1 mask, the photo's coordinates scaled to the
working size; a hint covers at least one working pixel, later hints paint over earlier ones. Bad input raises
`HintError`, one line that names the file (or "hints") and the point.

Random hints, as the authors draw them (`util.add_color_patches_rand_gt` in richzhang/colorization-pytorch, the
paper's section 3.3): each patch's side P is uniform in a range (1..9 in the paper), its top-left corner is drawn
from a 2-D Gaussian centred on the image, mean (H - P + 1) / 2 and standard deviation (H - P + 1) / 4 per axis,
clipped into the image, and the hint is the patch's MEAN ab of the true photo. `simulate_hints` (pure JAX, for the
training step) draws the number of points per example from the geometric distribution of the authors' loop
(another point while a uniform draw is below 1 - p; p = 1/8, so 1/8 of the examples get no hint at all and the mean
is 7), capped at `max_points`. `hints_from_reference` draws a given number of points the same way from a colour
reference photo, as the authors' evaluation does (`test_sweep.py`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import ColorjaxError, color

MAX_AB = 110.0  # The SIGGRAPH17 network's ab range (its output is 110 tanh(.)); hints beyond it are errors.
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_KEYS = ("x", "y", "color", "ab", "size")
_EXAMPLE = '[{"x": 10, "y": 20, "color": "#ff8800"}]'


class HintError(ColorjaxError, ValueError):
    """A hint the user can fix (bad JSON, a point outside the photo, a bad colour): printed as one line."""


@dataclasses.dataclass(frozen=True)
class Hint:
    """One colour point: centre (x, y) in the photo's pixels, Lab chroma (a, b), odd patch side `size`."""

    x: int
    y: int
    ab: tuple[float, float]
    size: int = 1


class HintMaps(NamedTuple):
    """What the model reads (`model.apply(..., hints=(ab, mask))`): ab (..., H, W, 2), mask (..., H, W, 1)."""

    ab: Any
    mask: Any


# ------------------------------------------------------------------------------------------ user hints


def read_hints(path: str | Path) -> list[Hint]:
    """The points of a hints JSON file (see the module docstring); HintError names the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise HintError(f"Hints file {path} not found.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise HintError(f"Cannot read hints file {path}: {e}") from None
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise HintError(
            f"Hints file {path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); it must "
            f"hold a list of points like {_EXAMPLE}."
        ) from None
    return parse_hints(items, source=f"hints file {path}")


def parse_hints(items: Any, *, source: str = "hints") -> list[Hint]:
    """A list of point dicts (the JSON file's content) or `Hint`s -> validated `Hint`s, in order."""
    if isinstance(items, dict) or not isinstance(items, Sequence) or isinstance(items, str):
        raise HintError(f"The {source} must be a list of points like {_EXAMPLE}, got {_json_type(items)}.")
    return [_parse_point(item, i, source) for i, item in enumerate(items)]


def _parse_point(item: Any, index: int, source: str) -> Hint:
    where = f"{source}, point {index}"
    if isinstance(item, Hint):
        return item
    if not isinstance(item, dict):
        raise HintError(f"{_capital(where)} must be an object like {_EXAMPLE[1:-1]}, got {_json_type(item)}.")
    unknown = sorted(set(item) - set(_KEYS))
    if unknown:
        raise HintError(
            f"{_capital(where)} has unknown key(s) {', '.join(map(repr, unknown))}; a point has x, y, "
            "color or ab, and optionally size."
        )
    for key in ("x", "y"):
        if key not in item:
            raise HintError(f"{_capital(where)} has no {key!r} (its pixel coordinate, an integer).")
        if not _is_int(item[key]):
            raise HintError(f"{_capital(where)}: {key!r} must be an integer pixel coordinate, got {item[key]!r}.")
    size = item.get("size", 1)
    if not _is_int(size) or size < 1 or size % 2 == 0:
        raise HintError(
            f"{_capital(where)}: 'size' must be an odd positive integer (the patch's side, centred on "
            f"x, y), got {size!r}."
        )
    if ("color" in item) == ("ab" in item):
        raise HintError(
            f"{_capital(where)} needs exactly one of 'color' (\"#rrggbb\") and 'ab' ([a, b]), got "
            f"{'both' if 'color' in item else 'neither'}."
        )
    if "color" in item:
        ab = _hex_to_ab(item["color"], where)
    else:
        ab = item["ab"]
        if not isinstance(ab, list | tuple) or len(ab) != 2 or not all(_is_number(v) and math.isfinite(v) for v in ab):
            raise HintError(f"{_capital(where)}: 'ab' must be two numbers [a, b], got {ab!r}.")
        if max(abs(v) for v in ab) > MAX_AB:
            raise HintError(
                f"{_capital(where)}: 'ab' {list(ab)} lies outside the model's range, |a|, |b| <= {MAX_AB:g}."
            )
    return Hint(int(item["x"]), int(item["y"]), (float(ab[0]), float(ab[1])), int(size))


def _hex_to_ab(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, str) or not _HEX_COLOR.fullmatch(value):
        raise HintError(f'{_capital(where)}: \'color\' must be a hex colour "#rrggbb" (e.g. "#3a7bd5"), got {value!r}.')
    rgb = np.array([int(value[i : i + 2], 16) for i in (1, 3, 5)], np.float32) / 255.0
    a, b = np.asarray(color.rgb_to_lab(rgb))[1:]
    return float(a), float(b)


def hint_maps(
    hints: Iterable[Hint | dict],
    photo_size: tuple[int, int],
    working_size: tuple[int, int] | None = None,
    *,
    source: str = "hints",
) -> HintMaps:
    """Hints in a (height, width) photo's pixels -> float32 ab (h, w, 2) and mask (h, w, 1) at the working size
    (default: the photo's). A patch's rows y - size//2 .. y + size//2 (clipped to the photo) map to the working
    rows they overlap, at least one; later hints paint over earlier ones."""
    height, width = photo_size
    work_height, work_width = working_size or photo_size
    ab = np.zeros((work_height, work_width, 2), np.float32)
    mask = np.zeros((work_height, work_width, 1), np.float32)
    for hint in check_inside(hints, photo_size, source=source):
        rows = _working_span(hint.y, hint.size, height, work_height)
        cols = _working_span(hint.x, hint.size, width, work_width)
        ab[rows, cols] = hint.ab
        mask[rows, cols] = 1.0
    return HintMaps(ab, mask)


def check_inside(hints: Iterable[Hint | dict], photo_size: tuple[int, int], *, source: str = "hints") -> list[Hint]:
    """The hints, parsed, after checking every centre lies inside a (height, width) photo (HintError if not)."""
    height, width = photo_size
    points = parse_hints(list(hints), source=source)
    for index, hint in enumerate(points):
        if not (0 <= hint.x < width and 0 <= hint.y < height):
            raise HintError(
                f"{_capital(source)}, point {index} at x={hint.x}, y={hint.y} lies outside the "
                f"{width}x{height} photo (x in 0..{width - 1}, y in 0..{height - 1})."
            )
    return points


def _working_span(centre: int, size: int, extent: int, work_extent: int) -> slice:
    """The working-resolution pixels that the photo pixels centre +- size//2 (clipped) overlap."""
    first = max(centre - size // 2, 0)
    last = min(centre + size // 2, extent - 1)
    scale = work_extent / extent
    start = min(math.floor(first * scale), work_extent - 1)
    stop = max(math.ceil((last + 1) * scale), start + 1)
    return slice(start, min(stop, work_extent))


# ------------------------------------------------------------------------------------------ random hints


class Patches(NamedTuple):
    """K random square patches per example: int32 (N, K) top, left, size, and bool (N, K) valid."""

    top: jax.Array
    left: jax.Array
    size: jax.Array
    valid: jax.Array


def sample_patches(
    rng: jax.Array,
    batch: int,
    height: int,
    width: int,
    *,
    max_points: int,
    patch_sizes: tuple[int, int],
    geometric_p: float | None,
) -> Patches:
    """Patches as the authors draw them (module docstring): sides uniform in `patch_sizes` (inclusive), top-left
    corners from the centred Gaussian. With `geometric_p` the first K of each row are valid, K geometric (capped at
    `max_points`); without it all `max_points` are."""
    size_key, row_key, col_key, count_key = jax.random.split(rng, 4)
    shape = (batch, max_points)
    low, high = patch_sizes
    size = jax.random.randint(size_key, shape, low, high + 1)
    size = jnp.minimum(size, min(height, width))

    def corner(key, extent):
        span = (extent - size + 1).astype(jnp.float32)
        draw = span / 2 + span / 4 * jax.random.normal(key, shape)
        return jnp.floor(jnp.clip(draw, 0, (extent - size).astype(jnp.float32))).astype(jnp.int32)

    if geometric_p is None:
        valid = jnp.ones(shape, bool)
    else:
        # The authors' loop adds a point while rand() < 1 - p: P(K = k) = (1 - p)^k p, k >= 0.
        uniform = jax.random.uniform(count_key, (batch,), minval=jnp.finfo(jnp.float32).tiny)
        count = jnp.floor(jnp.log(uniform) / jnp.log1p(-geometric_p))
        valid = jnp.arange(max_points)[None, :] < jnp.minimum(count, max_points)[:, None]
    return Patches(corner(row_key, height), corner(col_key, width), size.astype(jnp.int32), valid)


def patch_means(chroma: jax.Array, patches: Patches) -> jax.Array:
    """The mean chroma (N, K, 2) of every patch of (N, H, W, 2) `chroma`, from a summed-area table."""
    table = jnp.cumsum(jnp.cumsum(chroma.astype(jnp.float32), axis=1), axis=2)
    table = jnp.pad(table, ((0, 0), (1, 0), (1, 0), (0, 0)))
    n = jnp.arange(chroma.shape[0])[:, None]
    top, left, size = patches.top, patches.left, patches.size
    bottom, right = top + size, left + size
    total = table[n, bottom, right] - table[n, top, right] - table[n, bottom, left] + table[n, top, left]
    return total / (size * size)[..., None].astype(jnp.float32)


def paint_patches(patches: Patches, values: jax.Array, height: int, width: int) -> HintMaps:
    """Valid patches painted in order (later over earlier, as the authors' loop): ab (N, H, W, 2) holding each
    patch's `values` (N, K, 2), zero elsewhere, and the 0/1 mask (N, H, W, 1)."""
    batch, max_points = patches.top.shape
    rows, cols = jnp.arange(height), jnp.arange(width)

    def paint(k, maps):
        ab, mask = maps
        top, left, size = patches.top[:, k], patches.left[:, k], patches.size[:, k]
        in_rows = (rows >= top[:, None]) & (rows < (top + size)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + size)[:, None])
        inside = in_rows[:, :, None] & in_cols[:, None, :] & patches.valid[:, k, None, None]
        ab = jnp.where(inside[..., None], values[:, k, None, None, :], ab)
        return ab, jnp.where(inside[..., None], 1.0, mask)

    initial = (jnp.zeros((batch, height, width, 2)), jnp.zeros((batch, height, width, 1)))
    return HintMaps(*jax.lax.fori_loop(0, max_points, paint, initial))


def simulate_hints(
    rng: jax.Array,
    chroma: jax.Array,
    *,
    geometric_p: float,
    max_points: int,
    patch_sizes: tuple[int, int],
) -> HintMaps:
    """Training hints revealed from the true chroma (N, H, W, 2), as in the paper (module docstring): pure JAX,
    jit-able inside the training step. The trainer passes `config.hints` (p = 1/8, sides 1..9 as published)."""
    batch, height, width = chroma.shape[:3]
    patches = sample_patches(
        rng,
        batch,
        height,
        width,
        max_points=max_points,
        patch_sizes=patch_sizes,
        geometric_p=geometric_p,
    )
    return paint_patches(patches, patch_means(chroma, patches), height, width)


def hints_from_reference(
    reference_rgb: np.ndarray,
    num_hints: int,
    rng: jax.Array,
    *,
    photo_size: tuple[int, int] | None = None,
    size: int = 5,
) -> list[Hint]:
    """`num_hints` points sampled from a colour reference photo (uint8 (H, W, 3)) as the authors' evaluation does
    (centred Gaussian, each point's colour the mean ab of its size x size patch), in the coordinates of a photo of
    `photo_size` (default: the reference's own; a reference of another size is resized to it first)."""
    if size < 1 or size % 2 == 0:
        raise HintError(f"The hint size must be an odd positive integer, got {size}.")
    if num_hints < 0:
        raise HintError(f"The number of hints must be >= 0, got {num_hints}.")
    reference = jnp.asarray(reference_rgb, jnp.float32) / 255.0
    if reference.ndim != 3 or reference.shape[-1] != 3:
        raise HintError(f"The reference photo must be (H, W, 3) RGB, got shape {reference.shape}.")
    height, width = photo_size or reference.shape[:2]
    if (height, width) != reference.shape[:2]:
        reference = jax.image.resize(reference, (height, width, 3), "linear", antialias=True)
    if num_hints == 0:
        return []
    chroma = color.rgb_to_lab(jnp.clip(reference, 0.0, 1.0))[None, ..., 1:]
    smaller_side = min(height, width)
    side = size if size <= smaller_side else (smaller_side - 1) | 1  # the largest odd side that fits
    patches = sample_patches(rng, 1, height, width, max_points=num_hints, patch_sizes=(side, side), geometric_p=None)
    means = np.asarray(patch_means(chroma, patches))[0]
    half = side // 2
    return [
        Hint(int(left) + half, int(top) + half, (float(a), float(b)), side)
        for top, left, (a, b) in zip(np.asarray(patches.top[0]), np.asarray(patches.left[0]), means, strict=True)
    ]


# ------------------------------------------------------------------------------------------ helpers


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
    }
    return names.get(type(value), "a number" if _is_number(value) else type(value).__name__)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
