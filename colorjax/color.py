"""sRGB <-> CIE Lab and sRGB <-> CIE Luv (D65 white, 2-degree observer), in JAX and in TensorFlow ops.

The models, losses and metrics use the JAX functions (`rgb_to_lab`, `lab_to_rgb`, `rgb_to_luv`, `luv_to_rgb`,
`chroma_to_rgb`; `lightness_to_gray` for models fed gray pictures and `gray_picture` for the gray shown to
people; `rgb_to_uint8` for 8-bit output); the tf.data pipeline uses their `tf_` twins, which are graph-mode safe
inside `Dataset.map`. Both backends run the same formulas: each formula below is written once against a small
table of array operations (`_ArrayOps`), filled with `jax.numpy` or with TensorFlow ops. TensorFlow is imported
only when a `tf_` function is first called, so JAX users never pay for it.

Conventions (those of `skimage.color` rgb2lab / lab2rgb / rgb2luv / luv2rgb, so that numbers agree with the
papers' Python code):

- RGB is sRGB in [0, 1], channels last: arrays of shape (..., 3). Computation is float32 (float64 in JAX when
  x64 is enabled and the input is float64).
- sRGB companding (IEC 61966-2-1): linear = c / 12.92 for c <= 0.04045, else ((c + 0.055) / 1.055) ** 2.4; the
  inverse switches at 0.0031308 and clips the result to [0, 1] as skimage does.
- RGB -> XYZ: skimage's `xyz_from_rgb` matrix (the sRGB specification's primaries, 6 decimals), and its exact
  inverse for XYZ -> RGB. Reference white: skimage's D65 2-degree tristimulus values (0.95047, 1.0, 1.08883).
- Lab: f(t) = cbrt(t) for t > 0.008856, else 7.787 t + 16/116; L = 116 f(Y) - 16 in [0, 100],
  a = 500 (f(X) - f(Y)), b = 200 (f(Y) - f(Z)). The inverse cubes f above 0.2068966, and, like skimage, sets a
  negative f(Z) (a very large b) to 0 before inverting.
- Luv: L = 116 cbrt(Y) - 16 for Y > 0.008856, else 903.3 Y (inverse threshold L = 7.999625);
  u = 13 L (u' - u'_n), v = 13 L (v' - v'_n) with u' = 4X / (X + 15Y + 3Z + eps), v' = 9Y / (same), and the
  inverse divides by 13 L + eps. eps is the machine epsilon of the computing dtype (skimage uses the input's), which
  is how black (X = Y = Z = 0, L = 0) maps to u = v = 0 and back to black without a division by zero.

Out-of-gamut input to the inverse functions (any chroma a model may predict, L = 0, negative XYZ) always gives a
finite RGB in [0, 1]: Lab/Luv values are first clipped to +-1e4 (two orders of magnitude beyond any real colour)
so float32 never overflows, and the one Luv denominator skimage leaves unguarded (v' = 0) is kept away from zero.
Neither guard changes any colour that an sRGB image can produce. Every branch of every formula is fed a value safe
for it, so JAX gradients are finite too (no NaN leaking from the branch `where` did not pick).
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# sRGB companding (IEC 61966-2-1), as in skimage.color.rgb2xyz / xyz2rgb.
SRGB_ENCODED_THRESHOLD = 0.04045
SRGB_LINEAR_THRESHOLD = 0.0031308
SRGB_LINEAR_SLOPE = 12.92
SRGB_OFFSET = 0.055
SRGB_GAMMA = 2.4

# skimage.color.colorconv.xyz_from_rgb ("From sRGB specification") and its inverse.
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)

# skimage.color.xyz_tristimulus_values(illuminant="D65", observer="2").
D65_WHITE = (0.95047, 1.0, 1.08883)

# CIE Lab/Luv with skimage's (rounded) constants: epsilon = 0.008856, 7.787 = kappa / 116, kappa = 903.3.
CIE_EPSILON = 0.008856
LAB_LINEAR_SLOPE = 7.787
LAB_LINEAR_OFFSET = 16.0 / 116.0
LAB_INVERSE_THRESHOLD = 0.2068966  # f(CIE_EPSILON)
LUV_KAPPA = 903.3
LUV_INVERSE_THRESHOLD = 7.999625  # L at Y = CIE_EPSILON

_WHITE_DENOMINATOR = D65_WHITE[0] + 15.0 * D65_WHITE[1] + 3.0 * D65_WHITE[2]
LUV_WHITE_U = 4.0 * D65_WHITE[0] / _WHITE_DENOMINATOR  # u'_n
LUV_WHITE_V = 9.0 * D65_WHITE[1] / _WHITE_DENOMINATOR  # v'_n

# Inverse inputs are clipped to this magnitude so float32 stays finite for any prediction (see module docstring).
_MAX_COLOUR_VALUE = 1e4
# Smallest |v'| the Luv inverse divides by; sRGB colours have v' >= 0.15, the spectral locus v' >= 0.016.
_MIN_V_PRIME = 1e-6

COLOR_SPACES = ("lab", "luv")


class _ArrayOps(NamedTuple):
    """The few array operations the formulas need beyond arithmetic and `[..., i]` indexing."""

    where: Callable[[Any, Any, Any], Any]
    maximum: Callable[[Any, Any], Any]
    clip: Callable[[Any, float, float], Any]
    power: Callable[[Any, float], Any]
    cbrt: Callable[[Any], Any]
    abs: Callable[[Any], Any]
    stack: Callable[[Sequence[Any]], Any]  # along a new last axis


def _cube_root(x):
    """x ** (1/3) for x > 0: exp(log(x) / 3), then one Newton step on c**3 = x, which brings the estimate back to
    within float32 rounding of the true root (the same distance from skimage's float64 as `jnp.cbrt`)."""
    c = jnp.exp(jnp.log(x) * (1.0 / 3.0))
    return c - (c * c * c - x) / (3.0 * c * c)


# Powers and cube roots are taken only of positive values (each formula clamps first), where x**p == exp(p log x).
# XLA:CPU vectorises exp and log but calls the C library's powf and cbrtf for every element: on a 20-megapixel
# photo (jax 0.10.2, 2 threads) the lightness took 0.65 CPU-s with `jnp.cbrt` and `jnp.power`, 0.10 this way, and
# the Lab -> uint8 RGB recombination 0.62 -> 0.47; the levels rounded from the sRGB curve are no further from
# float64's (137 of 20 million off by one, against 149 with `jnp.power`).
_JAX_OPS = _ArrayOps(
    where=jnp.where,
    maximum=jnp.maximum,
    clip=jnp.clip,
    power=lambda x, p: jnp.exp(jnp.log(x) * p),
    cbrt=_cube_root,
    abs=jnp.abs,
    stack=lambda arrays: jnp.stack(arrays, axis=-1),
)


def _tf_ops(tf) -> _ArrayOps:
    return _ArrayOps(
        where=tf.where,
        maximum=tf.maximum,
        clip=tf.clip_by_value,
        # Powers and cube roots are only ever taken of positive values (each formula clamps first), where
        # x**p == exp(p log x); TensorFlow vectorises exp and log but runs tf.pow element by element (4-5x slower).
        power=lambda x, p: tf.exp(p * tf.math.log(x)),
        cbrt=lambda x: tf.exp(tf.math.log(x) * (1.0 / 3.0)),
        abs=tf.abs,
        stack=lambda tensors: tf.stack(tensors, axis=-1),
    )


# ---------------------------------------------------------------------------------------------------------------
# The formulas, written once for both backends. Channels travel as a tuple of three arrays of shape (...).
# Each `where` branch gets an input clamped into that branch's domain (`maximum(t, threshold)`): the value `where`
# keeps is unchanged, and the branch it drops can produce no NaN or inf to poison gradients.
# ---------------------------------------------------------------------------------------------------------------


def _mix(matrix: np.ndarray, channels):
    """`matrix @ channels` per pixel, as weighted sums (elementwise work that XLA and TF fuse)."""
    return tuple(sum(float(m) * c for m, c in zip(row, channels, strict=True)) for row in matrix)


def _srgb_to_linear(ops: _ArrayOps, c):
    curved = ops.power((ops.maximum(c, SRGB_ENCODED_THRESHOLD) + SRGB_OFFSET) / (1.0 + SRGB_OFFSET), SRGB_GAMMA)
    return ops.where(c > SRGB_ENCODED_THRESHOLD, curved, c / SRGB_LINEAR_SLOPE)


def _linear_to_srgb(ops: _ArrayOps, c):
    curved = (1.0 + SRGB_OFFSET) * ops.power(ops.maximum(c, SRGB_LINEAR_THRESHOLD), 1.0 / SRGB_GAMMA) - SRGB_OFFSET
    return ops.clip(ops.where(c > SRGB_LINEAR_THRESHOLD, curved, c * SRGB_LINEAR_SLOPE), 0.0, 1.0)


def _rgb_to_xyz(ops: _ArrayOps, rgb):
    return _mix(XYZ_FROM_RGB, tuple(_srgb_to_linear(ops, rgb[..., i]) for i in range(3)))


def _xyz_to_rgb_planes(ops: _ArrayOps, xyz):
    return tuple(_linear_to_srgb(ops, c) for c in _mix(RGB_FROM_XYZ, xyz))


def _lab_f(ops: _ArrayOps, t):
    cube_root = ops.cbrt(ops.maximum(t, CIE_EPSILON))
    return ops.where(t > CIE_EPSILON, cube_root, LAB_LINEAR_SLOPE * t + LAB_LINEAR_OFFSET)


def _lab_f_inverse(ops: _ArrayOps, f):
    clamped = ops.maximum(f, LAB_INVERSE_THRESHOLD)
    cube = clamped * clamped * clamped
    return ops.where(f > LAB_INVERSE_THRESHOLD, cube, (f - LAB_LINEAR_OFFSET) / LAB_LINEAR_SLOPE)


def _lightness(ops: _ArrayOps, y):
    """Luv's L* of relative luminance y. (Lab's 116 f(y) - 16 is the same curve with 116 * 7.787 = 903.29 for 903.3.)"""
    return ops.where(y > CIE_EPSILON, 116.0 * ops.cbrt(ops.maximum(y, CIE_EPSILON)) - 16.0, LUV_KAPPA * y)


def _rgb_to_lab(ops: _ArrayOps, rgb):
    fx, fy, fz = (_lab_f(ops, c / w) for c, w in zip(_rgb_to_xyz(ops, rgb), D65_WHITE, strict=True))
    return ops.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)])


def _channels(array):
    return tuple(array[..., i] for i in range(3))


def _lab_to_rgb_planes(ops: _ArrayOps, lightness, a, b):
    lightness, a, b = (ops.clip(c, -_MAX_COLOUR_VALUE, _MAX_COLOUR_VALUE) for c in (lightness, a, b))
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = ops.maximum(fy - b / 200.0, 0.0)  # skimage clips a negative f(Z) to 0
    xyz = tuple(_lab_f_inverse(ops, f) * w for f, w in zip((fx, fy, fz), D65_WHITE, strict=True))
    return _xyz_to_rgb_planes(ops, xyz)


def _lab_to_rgb(ops: _ArrayOps, lab):
    return ops.stack(_lab_to_rgb_planes(ops, *_channels(lab)))


def _nonzero(ops: _ArrayOps, d, smallest):
    """`d` with magnitudes below `smallest` replaced by `smallest`: a safe denominator."""
    return ops.where(ops.abs(d) < smallest, smallest, d)


def _rgb_to_luv(ops: _ArrayOps, rgb, eps: float):
    x, y, z = _rgb_to_xyz(ops, rgb)
    lightness = _lightness(ops, y / D65_WHITE[1])
    # eps is skimage's: it makes black 0 / eps = 0. The guard only matters for out-of-range RGB whose sum cancels.
    denominator = _nonzero(ops, x + 15.0 * y + 3.0 * z + eps, eps)
    u = 13.0 * lightness * (4.0 * x / denominator - LUV_WHITE_U)
    v = 13.0 * lightness * (9.0 * y / denominator - LUV_WHITE_V)
    return ops.stack([lightness, u, v])


def _luv_to_rgb(ops: _ArrayOps, luv, eps: float):
    return ops.stack(_luv_to_rgb_planes(ops, *_channels(luv), eps))


def _luv_to_rgb_planes(ops: _ArrayOps, lightness, u, v, eps: float):
    lightness, u, v = (ops.clip(c, -_MAX_COLOUR_VALUE, _MAX_COLOUR_VALUE) for c in (lightness, u, v))
    root = (ops.maximum(lightness, LUV_INVERSE_THRESHOLD) + 16.0) / 116.0
    cube = root * root * root
    y = D65_WHITE[1] * ops.where(lightness > LUV_INVERSE_THRESHOLD, cube, lightness / LUV_KAPPA)
    # skimage divides by 13 L + eps (black: u = v = 0 -> u', v' of the white point, then y = 0 -> black).
    scaled_lightness = _nonzero(ops, 13.0 * lightness + eps, eps)
    u_prime = LUV_WHITE_U + u / scaled_lightness
    v_prime = _nonzero(ops, LUV_WHITE_V + v / scaled_lightness, _MIN_V_PRIME)
    c = 3.0 * y * (5.0 * v_prime - 3.0)
    z = ((u_prime - 4.0) * c - 15.0 * u_prime * v_prime * y) / (12.0 * v_prime)
    x = -(c / v_prime + 3.0 * z)
    return _xyz_to_rgb_planes(ops, (x, y, z))


def _lightness_to_gray(ops: _ArrayOps, lightness):
    """The sRGB level of the neutral colour (L, 0, 0): its relative luminance Y through the sRGB curve.

    A neutral colour has X/Xn = Y/Yn = Z/Zn, so `lab_to_rgb` gives R = G = B = the sRGB companding of Y.
    """
    luminance = _lab_f_inverse(ops, (ops.clip(lightness, 0.0, 100.0) + 16.0) / 116.0)
    return _linear_to_srgb(ops, luminance)


# ---------------------------------------------------------------------------------------------------------------
# JAX
# ---------------------------------------------------------------------------------------------------------------


def _as_float_array(x, channels: int, name: str, what: str) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(
            f"{name} expects floating-point {what}, got dtype {x.dtype}; "
            "convert 8-bit images with x.astype(float32) / 255 first."
        )
    if x.ndim == 0 or x.shape[-1] != channels:
        raise ValueError(f"{name} expects {what} of shape (..., {channels}) with channels last, got shape {x.shape}.")
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _eps(x: jax.Array) -> float:
    return float(jnp.finfo(x.dtype).eps)


@jax.jit
def rgb_to_lab(rgb: jax.Array) -> jax.Array:
    """sRGB in [0, 1], shape (..., 3) -> CIE Lab (L in [0, 100]), as `skimage.color.rgb2lab`."""
    return _rgb_to_lab(_JAX_OPS, _as_float_array(rgb, 3, "rgb_to_lab", "sRGB"))


@jax.jit
def lab_to_rgb(lab: jax.Array) -> jax.Array:
    """CIE Lab, shape (..., 3) -> sRGB clipped to [0, 1], as `skimage.color.lab2rgb` (finite for any input)."""
    return _lab_to_rgb(_JAX_OPS, _as_float_array(lab, 3, "lab_to_rgb", "Lab"))


@jax.jit
def rgb_to_luv(rgb: jax.Array) -> jax.Array:
    """sRGB in [0, 1], shape (..., 3) -> CIE Luv (L in [0, 100]), as `skimage.color.rgb2luv`."""
    rgb = _as_float_array(rgb, 3, "rgb_to_luv", "sRGB")
    return _rgb_to_luv(_JAX_OPS, rgb, _eps(rgb))


@jax.jit
def luv_to_rgb(luv: jax.Array) -> jax.Array:
    """CIE Luv, shape (..., 3) -> sRGB clipped to [0, 1], as `skimage.color.luv2rgb` (finite for any input)."""
    luv = _as_float_array(luv, 3, "luv_to_rgb", "Luv")
    return _luv_to_rgb(_JAX_OPS, luv, _eps(luv))


@jax.jit
def lightness_to_gray(lightness: jax.Array) -> jax.Array:
    """CIE L* in [0, 100], any shape -> the sRGB gray level in [0, 1] of the colour (L, 0, 0), same shape.

    The pixel value a gray photo holds where its lightness is L (`skimage.color.lab2rgb` of (L, 0, 0), one channel):
    models that consume gray pictures rather than lightness (an ImageNet classifier fed the gray photo replicated to
    three channels, the CIFAR-10 autoencoder's [0, 1] input) turn their input L back into pixels with it, and
    every gray panel shown to people is it in 8-bit levels (`gray_picture`). Float, not uint8, so that models can
    take gradients through it. Values outside [0, 100] (e.g. the overshoot of a resize) are clipped first.
    """
    lightness = jnp.asarray(lightness)
    dtype = lightness.dtype if jnp.issubdtype(lightness.dtype, jnp.floating) else jnp.float32
    return _lightness_to_gray(_JAX_OPS, lightness.astype(jnp.promote_types(dtype, jnp.float32)))


def gray_picture(lightness) -> np.ndarray:
    """CIE L* (..., 1) in [0, 100] -> the uint8 (..., 3) gray picture of it: `lightness_to_gray` in 8-bit levels.

    The one gray shown to people (colorize --side-by-side, the app's gray image, the hint sweep's and the
    evaluation grids' gray columns): the sRGB pixel of (L, 0, 0), i.e. `lab_to_rgb` with a = b = 0, which is what
    a gray photo of that lightness holds (L = 50 is level 119, not 128 = L / 100). NumPy out.
    """
    lightness = jnp.asarray(lightness)
    if lightness.ndim == 0 or lightness.shape[-1] != 1:
        raise ValueError(f"gray_picture expects lightness of shape (..., 1), got {lightness.shape}.")
    return np.repeat(np.asarray(rgb_to_uint8(lightness_to_gray(lightness))), 3, axis=-1)


def _check_color_space(color_space: str, name: str) -> None:
    if color_space not in COLOR_SPACES:
        raise ValueError(f"{name}: color_space must be 'lab' or 'luv', got {color_space!r}.")


def chroma_to_rgb(lightness: jax.Array, chroma: jax.Array, color_space: str) -> jax.Array:
    """L (..., 1) and chroma (..., 2) in `color_space` units ("lab": ab, "luv": uv) -> sRGB (..., 3) in [0, 1].

    Any chroma (a model's out-of-gamut prediction included) gives a finite colour clipped to [0, 1].
    """
    _check_color_space(color_space, "chroma_to_rgb")
    lightness = _as_float_array(lightness, 1, "chroma_to_rgb", "lightness")
    chroma = _as_float_array(chroma, 2, "chroma_to_rgb", "chroma")
    if lightness.shape[:-1] != chroma.shape[:-1]:
        raise ValueError(
            f"chroma_to_rgb: lightness {lightness.shape} and chroma {chroma.shape} must match except in the "
            "last axis (upsample the chroma to the lightness's resolution first)."
        )
    to_rgb = lab_to_rgb if color_space == "lab" else luv_to_rgb
    return to_rgb(jnp.concatenate([lightness, chroma], axis=-1))


@functools.partial(jax.jit, static_argnames=("color_space", "conversion"))
def chroma_planes_to_rgb_planes(
    lightness: jax.Array, chroma_0: jax.Array, chroma_1: jax.Array, color_space: str, conversion: str = "cie"
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`chroma_to_rgb` (or, with conversion="opencv", `lab_to_rgb_opencv`) of L and a chroma given as planes of one
    shape, to the (R, G, B) planes: for a program that goes on plane by plane. XLA:CPU then fuses the conversion
    into one loop; from a channels-last Lab array it wrote out four full-size float copies (a 20-megapixel photo's
    recombination, chroma upsampling included: 0.40-0.45 -> 0.27 CPU-s)."""
    _check_color_space(color_space, "chroma_planes_to_rgb_planes")
    planes = [jnp.asarray(c, jnp.float32) for c in (lightness, chroma_0, chroma_1)]
    if conversion == "opencv":
        if color_space != "lab":
            raise ValueError(f"OpenCV's conversion is Lab's; got color_space {color_space!r}.")
        return _cv_lab_to_rgb_planes(*planes)
    if color_space == "lab":
        return _lab_to_rgb_planes(_JAX_OPS, *planes)
    return _luv_to_rgb_planes(_JAX_OPS, *planes, _FLOAT32_EPS)


RGB_LEVELS = 255  # the largest 8-bit level


def rgb_to_uint8(rgb):
    """sRGB floats in [0, 1] -> uint8 levels round(clip(rgb, 0, 1) * 255), rounded half to even: what a PNG holds.

    The one float -> 8-bit conversion (saved pictures, the web and CLI outputs, the RGB metrics). NumPy in, NumPy
    out; a jax.Array (or a tracer inside jit) in, a jax.Array out. Computed in float32 for either, so both give the
    same levels.
    """
    xp = jnp if isinstance(rgb, jax.Array) else np
    rgb = xp.asarray(rgb, xp.float32)
    return xp.round(xp.clip(rgb, 0.0, 1.0) * RGB_LEVELS).astype(xp.uint8)


# ---------------------------------------------------------------------------------------------------------------
# TensorFlow (for tf.data). TensorFlow is imported on first use only.
# ---------------------------------------------------------------------------------------------------------------


def _import_tf():
    import tensorflow as tf

    return tf


def _as_float32_tensor(tf, x, channels: int, name: str, what: str):
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise ValueError(
            f"{name} expects floating-point {what}, got dtype {x.dtype.name}; "
            "use tf.image.convert_image_dtype(image, tf.float32) first."
        )
    last = x.shape[-1] if x.shape.rank else None
    if x.shape.rank == 0 or (last is not None and last != channels):
        raise ValueError(f"{name} expects {what} of shape (..., {channels}) with channels last, got shape {x.shape}.")
    return tf.cast(x, tf.float32)


_FLOAT32_EPS = float(np.finfo(np.float32).eps)


def tf_rgb_to_lab(rgb):
    """`rgb_to_lab` in TensorFlow ops: float32 sRGB (..., 3) in [0, 1] -> Lab; usable inside `Dataset.map`."""
    tf = _import_tf()
    return _rgb_to_lab(_tf_ops(tf), _as_float32_tensor(tf, rgb, 3, "tf_rgb_to_lab", "sRGB"))


def tf_lab_to_rgb(lab):
    """`lab_to_rgb` in TensorFlow ops: float32 Lab (..., 3) -> sRGB clipped to [0, 1]."""
    tf = _import_tf()
    return _lab_to_rgb(_tf_ops(tf), _as_float32_tensor(tf, lab, 3, "tf_lab_to_rgb", "Lab"))


def tf_rgb_to_luv(rgb):
    """`rgb_to_luv` in TensorFlow ops: float32 sRGB (..., 3) in [0, 1] -> Luv; usable inside `Dataset.map`."""
    tf = _import_tf()
    rgb = _as_float32_tensor(tf, rgb, 3, "tf_rgb_to_luv", "sRGB")
    return _rgb_to_luv(_tf_ops(tf), rgb, _FLOAT32_EPS)


def tf_luv_to_rgb(luv):
    """`luv_to_rgb` in TensorFlow ops: float32 Luv (..., 3) -> sRGB clipped to [0, 1]."""
    tf = _import_tf()
    luv = _as_float32_tensor(tf, luv, 3, "tf_luv_to_rgb", "Luv")
    return _luv_to_rgb(_tf_ops(tf), luv, _FLOAT32_EPS)


# ---------------------------------------------------------------------------------------------------------------
# OpenCV's float Lab (`cv2.cvtColor` on float32 images), a named variant for the models whose authors used it
# (DDColor: piddnad/DDColor `ddcolor/pipeline.py` converts with cv2 both ways). It is not the formula above:
# - RGB -> Lab (`RGB2Lab_f` in OpenCV's modules/imgproc/src/color_lab.cpp, default sRGB/D65 path): the RGB values
#   are clipped to [0, 1], rounded to 14-bit integers and interpolated trilinearly, in integer arithmetic, in a
#   33 x 33 x 33 table of Lab values (`initLUTforLABLUVs16`: grid RGB -> sRGB curve -> XYZ / OpenCV's D65 white
#   (0.950456, 1, 1.088754) -> Lab, stored as 14-bit integers). So L comes in steps of 100 / 2^14 and a, b in steps
#   of 1/64, and a dark colour's a, b can differ from the exact formula by more than 0.5.
# - Lab -> RGB (`Lab2RGBfloat`): the textbook inverse with OpenCV's constants (thresholds L = 8 and f = 6/29, the
#   XYZ -> sRGB matrix scaled by that white), linear RGB clipped to [0, 1] (skimage clips negative Z instead), then
#   the sRGB curve evaluated as OpenCV's cubic spline through 1025 samples (`splineBuild`/`splineInterpolate`).
# ---------------------------------------------------------------------------------------------------------------

# OpenCV's sRGB2XYZ_D65 and XYZ2sRGB_D65 tables and its D65 white point.
OPENCV_XYZ_FROM_RGB = XYZ_FROM_RGB
OPENCV_RGB_FROM_XYZ = np.array(
    [
        [3.240479, -1.53715, -0.498535],
        [-0.969256, 1.875991, 0.041556],
        [0.055648, -0.204043, 1.057311],
    ]
)
OPENCV_D65_WHITE = (0.950456, 1.0, 1.088754)
_CV_LAB_BASE = 1 << 14  # RGB and Lab as 14-bit integers (LAB_BASE)
_CV_LUT_SHIFT = 5  # 2^5 + 1 table entries per axis (lab_lut_shift, LAB_LUT_DIM)
_CV_TRILINEAR_SHIFT = 8 - _CV_LUT_SHIFT + 1  # 4-bit interpolation weights (trilinear_shift)
_CV_GAMMA_TAB_SIZE = 1024
_CV_LAB_THRESHOLD = 216.0 / 24389.0  # (6/29)^3
_CV_LAB_SCALE = 841.0 / 108.0  # 7.787 = (29/3)^3 / (29 * 4)
_CV_LAB_BIAS = 16.0 / 116.0


def _cv_gamma(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _cv_inverse_gamma(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1.0 / 2.4) - 0.055)


def _cv_lab_table() -> np.ndarray:
    """OpenCV's RGB -> Lab table (int32 (33, 33, 33, 3), indexed [r, g, b]): 14-bit L / 100, (a + 128) / 256,
    (b + 128) / 256 at the grid colours k / 32 (`initLUTforLABLUVs16`), in float32 arithmetic and OpenCV's order of
    operations (blue's term first), which matches cv2's table better than float64 does."""
    f32 = np.float32
    steps = (1 << _CV_LUT_SHIFT) + 1
    grid = _cv_gamma(np.arange(steps, dtype=np.float64) / (steps - 1)).astype(f32)
    r, g, b = np.meshgrid(grid, grid, grid, indexing="ij")
    scaled = (XYZ_FROM_RGB * (1.0 / np.asarray(OPENCV_D65_WHITE))[:, None]).astype(f32)
    x, y, z = ((b * scaled[i, 2] + g * scaled[i, 1]) + r * scaled[i, 0] for i in range(3))
    threshold, scale, bias = f32(_CV_LAB_THRESHOLD), f32(_CV_LAB_SCALE), f32(_CV_LAB_BIAS)

    def f(t):
        return np.where(t > threshold, np.cbrt(t.astype(np.float64)).astype(f32), t * scale + bias)

    lightness = np.where(y > threshold, f32(116) * f(y) - f32(16), f32(29**3 / 27) * y)
    a, b_ = f32(500) * (f(x) - f(y)), f32(200) * (f(y) - f(z))
    base = f32(_CV_LAB_BASE)
    table = np.stack([base * lightness / f32(100), base * (a + f32(128)) / f32(256), base * (b_ + f32(128)) / f32(256)])
    return np.rint(np.moveaxis(table, 0, -1)).astype(np.int32)


def _cv_spline(samples: np.ndarray) -> np.ndarray:
    """OpenCV's `splineBuild`: (n, 4) cubic coefficients through samples f[0..n] (natural end at 0)."""
    n = len(samples) - 1
    tab = np.zeros((n, 4))
    forward = np.zeros((n, 2))
    for i in range(1, n):
        t = (samples[i + 1] - 2.0 * samples[i] + samples[i - 1]) * 3.0
        scale = 1.0 / (4.0 - forward[i - 1, 0])
        forward[i] = scale, (t - forward[i - 1, 1]) * scale
    cn = 0.0
    for i in reversed(range(n)):
        c = forward[i, 1] - forward[i, 0] * cn
        tab[i] = (
            samples[i],
            samples[i + 1] - samples[i] - (cn + 2.0 * c) / 3.0,
            c,
            (cn - c) / 3.0,
        )
        cn = c
    return tab.astype(np.float32)


_CV_LAB_TABLE = _cv_lab_table()
_CV_INVERSE_GAMMA_SPLINE = _cv_spline(_cv_inverse_gamma(np.arange(_CV_GAMMA_TAB_SIZE + 1) / _CV_GAMMA_TAB_SIZE))


def _cv_spline_interpolate(x: jax.Array, tab: np.ndarray) -> jax.Array:
    """OpenCV's `splineInterpolate(x * 1024, tab, 1024)` for x in [0, 1]."""
    x = x * float(len(tab))
    index = jnp.clip(x.astype(jnp.int32), 0, len(tab) - 1)
    t = x - index.astype(x.dtype)
    coefficients = jnp.asarray(tab)[index]
    a, b, c, d = (coefficients[..., i] for i in range(4))
    return ((d * t + c) * t + b) * t + a


def _cv_rgb_to_lab(rgb: jax.Array) -> jax.Array:
    levels = jnp.round(jnp.clip(rgb, 0.0, 1.0) * _CV_LAB_BASE).astype(jnp.int32)  # cvRound: half to even
    cell = levels >> (14 - _CV_LUT_SHIFT)  # the table cube's origin, 0..32
    fraction = (levels >> (14 - 8 - 1)) & ((1 << _CV_TRILINEAR_SHIFT) - 1)  # 0..15
    top = 1 << _CV_LUT_SHIFT  # the last table entry
    table = jnp.asarray(_CV_LAB_TABLE)
    total = jnp.zeros((*rgb.shape[:-1], 3), jnp.int32)
    base = 1 << _CV_TRILINEAR_SHIFT
    for corner in range(8):
        offsets = ((corner >> 2) & 1, (corner >> 1) & 1, corner & 1)
        index = [jnp.minimum(cell[..., i] + offsets[i], top) for i in range(3)]
        weight = 1
        for i in range(3):
            weight = weight * (fraction[..., i] if offsets[i] else base - fraction[..., i])
        total = total + table[index[0], index[1], index[2]] * weight[..., None]
    shift = 3 * _CV_TRILINEAR_SHIFT
    lab = ((total + (1 << (shift - 1))) >> shift).astype(jnp.float32)  # CV_DESCALE
    return jnp.stack(
        [
            lab[..., 0] * (100.0 / _CV_LAB_BASE),
            lab[..., 1] * (256.0 / _CV_LAB_BASE) - 128.0,
            lab[..., 2] * (256.0 / _CV_LAB_BASE) - 128.0,
        ],
        axis=-1,
    )


def _cv_lab_to_rgb(lab: jax.Array) -> jax.Array:
    return jnp.stack(_cv_lab_to_rgb_planes(*_channels(lab)), axis=-1)


def _cv_lab_to_rgb_planes(lightness: jax.Array, a: jax.Array, b: jax.Array) -> tuple[jax.Array, ...]:
    dark = lightness <= 8.0  # (6/29)^3 * (29/3)^3
    y_dark = lightness / 903.3
    fy = jnp.where(dark, 7.787 * y_dark + _CV_LAB_BIAS, (lightness + 16.0) / 116.0)
    y = jnp.where(dark, y_dark, fy * fy * fy)

    def f_inverse(f):
        return jnp.where(f <= 6.0 / 29.0, (f - _CV_LAB_BIAS) / 7.787, f * f * f)

    xyz = (f_inverse(a / 500.0 + fy), y, f_inverse(fy - b / 200.0))
    matrix = OPENCV_RGB_FROM_XYZ * np.asarray(OPENCV_D65_WHITE)[None, :]
    linear = [jnp.clip(sum(float(m) * c for m, c in zip(row, xyz, strict=True)), 0.0, 1.0) for row in matrix]
    return tuple(_cv_spline_interpolate(c, _CV_INVERSE_GAMMA_SPLINE) for c in linear)


@jax.jit
def rgb_to_lab_opencv(rgb: jax.Array) -> jax.Array:
    """sRGB (..., 3) -> Lab as OpenCV's `cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)` on float32 (see the section above);
    input outside [0, 1] is clipped first, as OpenCV does. float32 out."""
    rgb = _as_float_array(rgb, 3, "rgb_to_lab_opencv", "sRGB").astype(jnp.float32)
    return _cv_rgb_to_lab(rgb)


@jax.jit
def lab_to_rgb_opencv(lab: jax.Array) -> jax.Array:
    """Lab (..., 3) -> sRGB in [0, 1] as OpenCV's `cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)` on float32 (linear RGB
    clipped to [0, 1] before the sRGB curve). float32 out."""
    lab = _as_float_array(lab, 3, "lab_to_rgb_opencv", "Lab").astype(jnp.float32)
    return _cv_lab_to_rgb(lab)
