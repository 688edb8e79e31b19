"""colorjax.color against scikit-image, JAX against TensorFlow, round trips, and out-of-gamut safety.

The sweep over 8-bit sRGB colours uses a dense sample of 2.1 million (one random colour in every run of 8 consecutive
24-bit codes, i.e. 32 blue levels for every red-green pair, plus every colour whose channels are all <= 15 or all
>= 240, the gray axis and the cube's edges). `COLORJAX_FULL_GAMUT=1` sweeps all 2^24 colours instead (about 5x the
time). The reference is scikit-image in float64; colorjax computes in float32.
"""

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from skimage import color as skcolor

from colorjax import color

CHUNK = 1 << 19  # colours per batch: bounds the float64 reference's memory to ~100 MB


def _sample_codes() -> np.ndarray:
    """24-bit RGB codes (r << 16 | g << 8 | b) to sweep, sorted and unique."""
    if os.environ.get("COLORJAX_FULL_GAMUT") == "1":
        return np.arange(1 << 24, dtype=np.int64)
    rng = np.random.default_rng(0)
    runs = np.arange(1 << 21, dtype=np.int64)
    stratified = 8 * runs + rng.integers(0, 8, runs.size)
    levels = np.arange(256, dtype=np.int64)
    dark, bright = np.arange(16), np.arange(240, 256)
    cubes = [np.stack(np.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3) for c in (dark, bright)]
    zeros, full = np.zeros_like(levels), np.full_like(levels, 255)
    edges = [
        np.stack(channels, -1)
        for fixed in ((zeros, zeros), (zeros, full), (full, zeros), (full, full))
        for channels in ((levels, *fixed), (fixed[0], levels, fixed[1]), (*fixed, levels))
    ]
    structured = np.concatenate([*cubes, np.stack([levels] * 3, -1), *edges])
    structured_codes = (structured[:, 0] << 16) | (structured[:, 1] << 8) | structured[:, 2]
    return np.unique(np.concatenate([stratified, structured_codes]))


def _codes_to_rgb8(codes: np.ndarray) -> np.ndarray:
    return np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def sweep() -> dict:
    """Max |colorjax - skimage| per channel, TF-vs-JAX differences, and 8-bit round-trip exact counts."""
    to_colour = {
        ("lab", "jax"): lambda x: np.asarray(color.rgb_to_lab(x)),
        ("luv", "jax"): lambda x: np.asarray(color.rgb_to_luv(x)),
        ("lab", "tf"): lambda x: color.tf_rgb_to_lab(x).numpy(),
        ("luv", "tf"): lambda x: color.tf_rgb_to_luv(x).numpy(),
    }
    to_rgb = {
        ("lab", "jax"): lambda x: np.asarray(color.lab_to_rgb(x)),
        ("luv", "jax"): lambda x: np.asarray(color.luv_to_rgb(x)),
        ("lab", "tf"): lambda x: color.tf_lab_to_rgb(x).numpy(),
        ("luv", "tf"): lambda x: color.tf_luv_to_rgb(x).numpy(),
    }
    reference = {"lab": skcolor.rgb2lab, "luv": skcolor.rgb2luv}
    max_error = {key: np.zeros(3) for key in to_colour}
    max_backend_gap = {space: np.zeros(3) for space in reference}
    max_backend_rgb_gap = {space: 0.0 for space in reference}
    exact = dict.fromkeys(to_colour, 0)
    codes = _sample_codes()
    # Pad to whole chunks (repeating colours leaves the maxima unchanged) so jit compiles one shape only.
    padded = np.concatenate([codes, codes[: -codes.size % CHUNK]])
    for start in range(0, padded.size, CHUNK):
        rgb8 = _codes_to_rgb8(padded[start : start + CHUNK])
        counted = min(CHUNK, codes.size - start)  # exact round trips are counted over the unpadded colours
        rgb64 = rgb8 / 255.0
        rgb32 = rgb64.astype(np.float32)
        for space, skimage_fn in reference.items():
            truth = skimage_fn(rgb64)
            colour, back = {}, {}
            for backend in ("jax", "tf"):
                key = (space, backend)
                colour[backend] = to_colour[key](rgb32)
                max_error[key] = np.maximum(max_error[key], np.abs(colour[backend] - truth).max(0))
                back[backend] = to_rgb[key](colour[backend])
                recovered = np.all(np.round(back[backend] * 255) == rgb8, axis=-1)
                exact[key] += int(recovered[:counted].sum())
            gap = np.abs(colour["jax"] - colour["tf"]).max(0)
            max_backend_gap[space] = np.maximum(max_backend_gap[space], gap)
            rgb_gap = float(np.abs(back["jax"] - back["tf"]).max())
            max_backend_rgb_gap[space] = max(max_backend_rgb_gap[space], rgb_gap)
    return {
        "count": codes.size,
        "max_error": max_error,
        "max_backend_gap": max_backend_gap,
        "max_backend_rgb_gap": max_backend_rgb_gap,
        "exact_fraction": {key: n / codes.size for key, n in exact.items()},
    }


def test_sweep_is_dense(sweep):
    assert sweep["count"] >= 2_000_000


@pytest.mark.parametrize("backend", ["jax", "tf"])
@pytest.mark.parametrize("space", ["lab", "luv"])
def test_matches_skimage_on_8bit_colours(sweep, space, backend):
    error = sweep["max_error"][(space, backend)]
    assert np.all(error <= 0.01), f"max |{space} - skimage| per channel ({backend}): {error}"


@pytest.mark.parametrize("backend", ["jax", "tf"])
@pytest.mark.parametrize("space", ["lab", "luv"])
def test_round_trip_recovers_8bit_colours(sweep, space, backend):
    fraction = sweep["exact_fraction"][(space, backend)]
    assert fraction >= 0.9999, f"RGB -> {space} -> RGB exact for only {fraction:.6%} ({backend})"


@pytest.mark.parametrize("space", ["lab", "luv"])
def test_tensorflow_and_jax_agree(sweep, space):
    gap = sweep["max_backend_gap"][space]
    assert np.all(gap <= 1e-3), f"max |tf - jax| in {space}: {gap}"
    assert sweep["max_backend_rgb_gap"][space] <= 1e-4  # 1/40 of an 8-bit step


def _broad_colour_box(space: str, n: int = 200_000) -> np.ndarray:
    """Lab/Luv values well beyond the sRGB gamut (as an untrained model predicts them)."""
    rng = np.random.default_rng(1)
    lightness = rng.uniform(0, 100, n)
    chroma = rng.uniform(-128, 128, (n, 2)) if space == "lab" else rng.uniform(-180, 180, (n, 2))
    return np.concatenate([lightness[:, None], chroma], -1)


@pytest.mark.parametrize("space", ["lab", "luv"])
def test_inverse_matches_skimage_out_of_gamut(space):
    colour = _broad_colour_box(space)
    skimage_fn = skcolor.lab2rgb if space == "lab" else skcolor.luv2rgb
    with warnings.catch_warnings():  # skimage warns that it clipped negative Z, which we mirror
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            truth = skimage_fn(colour)
    ours = {
        "jax": np.asarray((color.lab_to_rgb if space == "lab" else color.luv_to_rgb)(colour)),
        "tf": (color.tf_lab_to_rgb if space == "lab" else color.tf_luv_to_rgb)(colour).numpy(),
    }
    comparable = np.all(np.isfinite(truth), -1)
    assert comparable.mean() > 0.99
    for backend, rgb in ours.items():
        error = np.abs(rgb - truth)[comparable].max()
        assert error <= 1e-4, f"{space} -> RGB differs from skimage by {error} ({backend})"


def _extreme_inputs(space: str) -> np.ndarray:
    """Every combination of extreme lightness and chroma, plus Luv inputs whose v' is (within rounding) zero."""
    lightness = np.array([-1e30, -50, -1e-7, 0, 1e-7, 1e-3, 1, 7.999625, 50, 100, 150, 1e30, np.inf])
    chroma = np.array([-np.inf, -1e30, -1e4, -500, -110, -1, 0, 1, 110, 500, 1e4, 1e30, np.inf])
    grid = np.stack(np.meshgrid(lightness, chroma, chroma, indexing="ij"), -1).reshape(-1, 3)
    if space == "lab":
        return grid.astype(np.float32)
    # v = -v'_n (13 L + eps) makes skimage divide by v' = 0; take the float32 neighbours of that v too.
    eps = np.finfo(np.float32).eps
    levels = np.float32([1e-3, 0.5, 1, 5, 8, 20, 50, 100])
    root = (-color.LUV_WHITE_V * (13 * levels + eps)).astype(np.float32)
    steps = np.arange(-8, 9)
    v = np.stack([root + s * np.spacing(root) for s in steps], -1)
    rows = [
        np.stack([np.full(v.shape[1], lvl), np.full(v.shape[1], u), v[i]], -1)
        for i, lvl in enumerate(levels)
        for u in (-100.0, 0.0, 100.0)
    ]
    return np.concatenate([grid, *rows]).astype(np.float32)


@pytest.mark.parametrize("space", ["lab", "luv"])
def test_inverse_is_finite_in_unit_range_for_any_input(space):
    colour = _extreme_inputs(space)
    results = {
        "jax": np.asarray(color.chroma_to_rgb(colour[:, :1], colour[:, 1:], space)),
        "tf": (color.tf_lab_to_rgb if space == "lab" else color.tf_luv_to_rgb)(colour).numpy(),
    }
    for backend, rgb in results.items():
        assert rgb.shape == colour.shape
        bad = ~np.all(np.isfinite(rgb) & (rgb >= 0) & (rgb <= 1), -1)
        assert not bad.any(), f"{backend} {space}: {bad.sum()} bad outputs, e.g. {colour[bad][:3]}"


@pytest.mark.parametrize("space", ["lab", "luv"])
def test_gradients_are_finite(space):
    """Losses differentiate through these conversions: no NaN from the branch `where` discards."""
    levels = jnp.array([0.0, 0.01, 0.04045, 0.5, 1.0])
    rgb = jnp.stack(jnp.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    colour = _extreme_inputs(space)[::7]
    colour = jnp.asarray(np.where(np.isfinite(colour), colour, 0.0))

    @jax.jit
    def gradients(rgb, colour):
        to_colour = color.rgb_to_lab if space == "lab" else color.rgb_to_luv
        forward = jax.grad(lambda x: to_colour(x)[..., 1:].sum())(rgb)
        inverse = jax.grad(lambda c: color.chroma_to_rgb(colour[:, :1], c, space).sum())(colour[:, 1:])
        return forward, inverse

    forward, inverse = gradients(rgb, colour)
    assert np.all(np.isfinite(forward)) and np.all(np.isfinite(inverse))
    assert np.abs(forward).max() > 0 and np.abs(inverse).max() > 0


@pytest.mark.parametrize("space, conversion", [("lab", "cie"), ("luv", "cie"), ("lab", "opencv")])
def test_the_plane_by_plane_conversion_is_the_channels_last_one(space, conversion):
    """`chroma_planes_to_rgb_planes` (the recombination's) gives the planes of `chroma_to_rgb` /
    `lab_to_rgb_opencv`, out-of-gamut and extreme chroma included."""
    rng = np.random.default_rng(5)
    colour = np.stack([rng.uniform(-5, 105, (6, 9)), *rng.uniform(-150, 150, (2, 6, 9))], axis=-1).astype(np.float32)
    if conversion == "opencv":
        want = color.lab_to_rgb_opencv(colour)
    else:
        want = color.chroma_to_rgb(colour[..., :1], colour[..., 1:], space)
    planes = color.chroma_planes_to_rgb_planes(*(colour[..., i] for i in range(3)), space, conversion)
    np.testing.assert_allclose(np.stack(planes, axis=-1), want, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="OpenCV's conversion is Lab's"):
        color.chroma_planes_to_rgb_planes(*(colour[..., i] for i in range(3)), "luv", "opencv")


@pytest.mark.parametrize("space", ["lab", "luv"])
def test_chroma_to_rgb_recombines_lightness_and_chroma(space):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (2, 5, 7, 3)).astype(np.float32) / 255
    to_colour = color.rgb_to_lab if space == "lab" else color.rgb_to_luv
    full = np.asarray(to_colour(rgb))
    lightness, chroma = full[..., :1], full[..., 1:]
    back = np.asarray(color.chroma_to_rgb(lightness, chroma, space))
    np.testing.assert_allclose(back, rgb, atol=1e-4)
    # Black and white are L = 0 and 100 and gray has (almost) no chroma: skimage's D65 white (0.95047, 1, 1.08883)
    # and its matrix's white (the row sums) differ in the fourth decimal, which tints sRGB gray by b ~ 0.008.
    gray = jnp.array([[0.0] * 3, [0.5] * 3, [1.0] * 3])
    gray_colour = np.asarray(to_colour(gray))
    gray_l, gray_chroma = gray_colour[..., :1], gray_colour[..., 1:]
    np.testing.assert_allclose(np.asarray(gray_chroma), 0, atol=0.01)
    np.testing.assert_allclose(np.asarray(gray_l[[0, 2], 0]), [0, 100], atol=1e-3)


def test_lightness_to_gray_is_lab2rgb_of_neutral_lab():
    """The pixels of a gray photo, which models fed gray pictures (VGG16, Inception, the CIFAR autoencoder) see."""
    L = np.linspace(0.0, 100.0, 1001)
    want = skcolor.lab2rgb(np.stack([L, 0 * L, 0 * L], -1)[None])[0]
    got = np.asarray(color.lightness_to_gray(L))
    assert got.shape == L.shape
    assert np.max(np.abs(got - want[:, 0])) < 1e-4
    assert np.max(np.abs(want[:, 0] - want[:, 2])) < 1e-3  # skimage's gray is neutral too.
    # A gray photo's own L gives the photo back (every 8-bit level), and out-of-range L is clipped, not extrapolated.
    levels = np.arange(256, dtype=np.float32) / 255
    lightness = color.rgb_to_lab(np.repeat(levels[:, None], 3, axis=-1))[:, 0]
    assert np.max(np.abs(np.asarray(color.lightness_to_gray(lightness)) - levels)) < 2e-4
    np.testing.assert_allclose(color.lightness_to_gray(jnp.array([-5.0, 130.0])), [0.0, 1.0], atol=1e-6)
    grads = jax.grad(lambda x: color.lightness_to_gray(x).sum())(jnp.array([0.0, 1.0, 8.0, 50.0]))
    assert np.all(np.isfinite(grads)) and np.all(np.asarray(grads)[1:] > 0)


def test_the_gray_shown_to_people_is_lab_to_rgb_of_neutral_lab_not_l_over_100():
    L = np.linspace(0.0, 100.0, 101, dtype=np.float32)[:, None]
    neutral = np.concatenate([L, np.zeros_like(L), np.zeros_like(L)], -1)
    want = np.asarray(color.lab_to_rgb(neutral))
    np.testing.assert_allclose(np.asarray(color.lightness_to_gray(L)), want[:, :1], atol=1e-5)
    picture = color.gray_picture(L)
    assert isinstance(picture, np.ndarray) and picture.dtype == np.uint8 and picture.shape == (101, 3)
    # lab_to_rgb's neutral is tinted by less than a level (its matrix's white is not exactly D65): within 1.
    assert np.abs(picture.astype(int) - color.rgb_to_uint8(want)).max() <= 1
    np.testing.assert_array_equal(picture[:, 0], color.rgb_to_uint8(want[:, 0]))
    assert tuple(color.gray_picture(np.array([50.0]))) == (119, 119, 119)  # not 128 = round(50 / 100 * 255)
    assert float(color.lightness_to_gray(jnp.float32(50.0))) == pytest.approx(119 / 255, abs=0.5 / 255)
    assert np.abs(picture[:, 0].astype(int) - np.round(L[:, 0] * 2.55)).max() > 8
    with pytest.raises(ValueError, match=r"\(\.\.\., 1\)"):
        color.gray_picture(np.zeros((4, 4)))


@pytest.mark.parametrize("space", ["lab", "luv"])
def test_tf_functions_work_inside_dataset_map(space):
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 1, (4, 6, 5, 3)).astype(np.float32)
    tf_forward, tf_inverse, forward = {
        "lab": (color.tf_rgb_to_lab, color.tf_lab_to_rgb, color.rgb_to_lab),
        "luv": (color.tf_rgb_to_luv, color.tf_luv_to_rgb, color.rgb_to_luv),
    }[space]
    dataset = tf.data.Dataset.from_tensor_slices(images).map(tf_forward)
    for image, colour in zip(images, dataset, strict=True):
        np.testing.assert_allclose(colour.numpy(), forward(image), atol=1e-3)
        np.testing.assert_allclose(tf_inverse(colour).numpy(), image, atol=1e-4)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: color.rgb_to_lab(np.zeros((4, 4, 3), np.uint8)), "floating-point"),
        (lambda: color.rgb_to_luv(np.zeros((4, 4, 4), np.float32)), r"\(\.\.\., 3\)"),
        (lambda: color.tf_rgb_to_lab(np.zeros((4, 3), np.uint8)), "convert_image_dtype"),
        (lambda: color.tf_luv_to_rgb(np.zeros((4, 2), np.float32)), r"\(\.\.\., 3\)"),
        (lambda: color.chroma_to_rgb(np.zeros((1, 1)), np.zeros((1, 2)), "hsv"), "'lab' or 'luv'"),
        (lambda: color.chroma_to_rgb(np.zeros((2, 1)), np.zeros((3, 2)), "lab"), "must match"),
        (lambda: color.chroma_to_rgb(np.zeros((2, 2)), np.zeros((2, 2)), "luv"), r"\(\.\.\., 1\)"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_rgb_to_uint8_rounds_clips_and_keeps_the_array_kind():
    # Every level k maps back to k; halfway values round to even; out-of-range values clip.
    levels = np.arange(256) / 255.0
    halfway = (np.array([0.5, 1.5, 2.5, 254.5]) / 255.0).astype(np.float32)
    rgb = np.concatenate([levels, halfway, [-0.3, 1.7, np.float32(0.999)]]).astype(np.float32)
    expected = np.concatenate([np.arange(256), [0, 2, 2, 254], [0, 255, 255]]).astype(np.uint8)
    numpy_levels = color.rgb_to_uint8(rgb)
    assert isinstance(numpy_levels, np.ndarray) and numpy_levels.dtype == np.uint8
    np.testing.assert_array_equal(numpy_levels, expected)
    # float64 NumPy input (skimage's output) gives the float32 computation's levels.
    np.testing.assert_array_equal(color.rgb_to_uint8(rgb.astype(np.float64)), expected)
    jax_levels = color.rgb_to_uint8(jnp.asarray(rgb))
    assert isinstance(jax_levels, jax.Array) and jax_levels.dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(jax_levels), expected)
    np.testing.assert_array_equal(np.asarray(jax.jit(color.rgb_to_uint8)(rgb)), expected)


# --- OpenCV's float Lab (the DDColor variant) -------------------------------------------------------------------------


def _opencv_sweep():
    """Random and 8-bit colours, a little beyond [0, 1] (OpenCV clips), and Lab values well beyond the gamut."""
    rng = np.random.default_rng(0)
    rgb = rng.uniform(-0.05, 1.05, (200_000, 3)).astype(np.float32)
    rgb[:4096] = (np.arange(4096 * 3).reshape(4096, 3) % 256 / 255.0).astype(np.float32)
    lab = np.stack([rng.uniform(0, 100, 200_000), rng.uniform(-128, 127, 200_000), rng.uniform(-128, 127, 200_000)], -1)
    lab[:2000, 1:] = 0.0  # the grey pictures DDColor is fed
    return rgb, lab.astype(np.float32)


def test_opencv_lab_matches_cv2_float32_both_ways():
    cv2 = pytest.importorskip("cv2")
    rgb, lab = _opencv_sweep()
    theirs = cv2.cvtColor(rgb[None], cv2.COLOR_RGB2Lab)[0]
    ours = np.asarray(color.rgb_to_lab_opencv(rgb))
    error = np.abs(ours - theirs)
    # OpenCV's table holds 14-bit values (L in steps of 100 / 2^14, a and b of 1/64); colorjax rebuilds it in
    # float32 and differs by one step in a few of its entries.
    assert np.mean(error.max(-1) == 0) >= 0.995
    assert np.all(error.max(0) <= np.float32([100 / 2**14, 1 / 64, 1 / 64]) + 1e-6)
    back = np.asarray(color.lab_to_rgb_opencv(lab))
    assert np.abs(back - cv2.cvtColor(lab[None], cv2.COLOR_Lab2RGB)[0]).max() <= 2e-5
    # cv2's BGR order is the same maths.
    assert np.array_equal(cv2.cvtColor(rgb[None, :, ::-1], cv2.COLOR_BGR2Lab)[0], theirs)


def test_opencv_lab_is_not_the_textbook_formula():
    # Why the variant exists: in the dark, OpenCV's table and white point move a and b by tenths of a unit.
    rgb, lab = _opencv_sweep()
    assert (
        np.abs(
            np.asarray(color.rgb_to_lab_opencv(rgb[4096:])) - np.asarray(color.rgb_to_lab(np.clip(rgb[4096:], 0, 1)))
        ).max()
        > 0.3
    )
    assert np.abs(np.asarray(color.lab_to_rgb_opencv(lab)) - np.asarray(color.lab_to_rgb(lab))).max() > 0.01
