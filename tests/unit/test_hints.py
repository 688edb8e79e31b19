"""Colour hints: the hints file and its one-line errors, scaling to the working size, reference sampling, and the
paper's simulated training hints (counts, patch means, centre bias, determinism)."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.paths import REPO
from skimage.color import rgb2lab

from colorjax import hints
from colorjax.hints import Hint, HintError


def write(tmp_path, content, name="hints.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_a_hints_file_gives_points_with_lab_chroma(tmp_path):
    path = write(
        tmp_path,
        [
            {"x": 3, "y": 4, "color": "#FF0000"},
            {"x": 0, "y": 9, "ab": [10, -20.5], "size": 3},
        ],
    )
    red, custom = hints.read_hints(path)
    expected = rgb2lab(np.array([[[1.0, 0.0, 0.0]]]))[0, 0, 1:]
    assert (red.x, red.y, red.size) == (3, 4, 1)
    np.testing.assert_allclose(red.ab, expected, atol=0.01)  # (80.1, 67.2)
    assert custom == Hint(0, 9, (10.0, -20.5), 3)
    # The Python API takes the same list of dicts.
    assert hints.parse_hints(json.loads(path.read_text())) == [red, custom]


@pytest.mark.parametrize(
    "content, message",
    [
        ("[{'x': 1}]", r"is not valid JSON \(Expecting property name .* at line 1, column 3\)"),
        ({"x": 1, "y": 2}, r"must be a list of points like \[\{.*\}\], got an object"),
        ([[1, 2]], r"point 0 must be an object like .*, got a list"),
        ([{"y": 2, "color": "#ffffff"}], r"point 0 has no 'x'"),
        (
            [{"x": 1.5, "y": 2, "color": "#ffffff"}],
            r"'x' must be an integer pixel coordinate, got 1.5",
        ),
        ([{"x": True, "y": 2, "color": "#ffffff"}], r"'x' must be an integer"),
        (
            [{"x": 1, "y": 2, "color": "#ffffff", "size": 4}],
            r"'size' must be an odd positive integer",
        ),
        (
            [{"x": 1, "y": 2, "color": "#ffffff", "size": 0}],
            r"'size' must be an odd positive integer",
        ),
        (
            [{"x": 1, "y": 2, "color": "#fff"}],
            r"'color' must be a hex colour \"#rrggbb\".*got '#fff'",
        ),
        ([{"x": 1, "y": 2, "color": "red"}], r"'color' must be a hex colour"),
        ([{"x": 1, "y": 2, "ab": [120, 0]}], r"'ab' \[120, 0\] lies outside the model's range"),
        ([{"x": 1, "y": 2, "ab": [1, 2, 3]}], r"'ab' must be two numbers \[a, b\]"),
        ([{"x": 1, "y": 2, "ab": "1,2"}], r"'ab' must be two numbers"),
        ([{"x": 1, "y": 2}], r"needs exactly one of 'color' .* and 'ab' .*, got neither"),
        ([{"x": 1, "y": 2, "ab": [0, 0], "color": "#000000"}], r"got both"),
        ([{"x": 1, "y": 2, "ab": [0, 0], "colour": "#000000"}], r"unknown key\(s\) 'colour'"),
    ],
)
def test_a_bad_hints_file_gets_one_line_naming_the_file_and_point(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(HintError, match=message) as error:
        hints.read_hints(path)
    text = str(error.value)
    assert "\n" not in text and str(path) in text


def test_points_outside_the_photo_and_missing_files(tmp_path):
    path = write(tmp_path, [{"x": 5, "y": 5, "ab": [0, 0]}, {"x": 20, "y": 3, "ab": [0, 0]}])
    points = hints.read_hints(path)
    with pytest.raises(HintError, match=r"point 1 at x=20, y=3 lies outside the 20x10 photo") as error:
        hints.hint_maps(points, (10, 20), source=f"hints file {path}")
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(HintError, match=r"x=-1, y=0 lies outside"):
        hints.hint_maps([{"x": -1, "y": 0, "ab": [0, 0]}], (10, 20))
    with pytest.raises(HintError, match=r"Hints file .*nope.json not found"):
        hints.read_hints(tmp_path / "nope.json")


def test_hints_are_scaled_to_the_working_size():
    # Photo 100 x 200 -> working 50 x 100: a 1-pixel hint covers the working pixel holding it.
    maps = hints.hint_maps([{"x": 199, "y": 99, "ab": [30, -40]}], (100, 200), (50, 100))
    assert maps.ab.shape == (50, 100, 2) and maps.mask.shape == (50, 100, 1)
    assert maps.mask.sum() == 1 and maps.mask[49, 99, 0] == 1
    np.testing.assert_array_equal(maps.ab[49, 99], [30, -40])
    assert np.all(maps.ab[maps.mask[..., 0] == 0] == 0)
    # A 5x5 patch (photo rows 8..12) covers working rows 4..6; clipped at the photo's edge.
    maps = hints.hint_maps([{"x": 10, "y": 10, "ab": [1, 1], "size": 5}], (100, 200), (50, 100))
    rows, cols = np.nonzero(maps.mask[..., 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (4, 6, 4, 6)
    maps = hints.hint_maps([{"x": 0, "y": 0, "ab": [1, 1], "size": 5}], (100, 200))
    assert maps.mask.sum() == 9  # rows and columns 0..2
    # Upscaling: a 10 x 10 photo at 40 x 40 -> one photo pixel is 4 x 4 working pixels.
    maps = hints.hint_maps([{"x": 3, "y": 2, "ab": [1, 1]}], (10, 10), (40, 40))
    rows, cols = np.nonzero(maps.mask[..., 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (8, 11, 12, 15)


def test_later_hints_paint_over_earlier_ones():
    maps = hints.hint_maps([{"x": 2, "y": 2, "ab": [10, 10], "size": 5}, {"x": 3, "y": 3, "ab": [-5, 7]}], (8, 8))
    np.testing.assert_array_equal(maps.ab[3, 3], [-5, 7])
    np.testing.assert_array_equal(maps.ab[2, 2], [10, 10])
    assert maps.mask.sum() == 25


# --- simulated hints (the paper's training hints) ---------------------------------------------------------------

PAPER = dict(geometric_p=1 / 8, max_points=64, patch_sizes=(1, 9))
FEW = dict(PAPER, max_points=12)  # quicker to compile and to check point by point


def test_the_number_of_points_is_geometric_with_an_eighth_of_examples_unhinted():
    patches = hints.sample_patches(jax.random.key(0), 20_000, 32, 32, **PAPER)
    counts = np.asarray(patches.valid.sum(1))
    # P(K = k) = (7/8)^k / 8: mean 7, P(K = 0) = 1/8 (standard errors 0.05 and 0.0023 here).
    assert abs(counts.mean() - 7.0) < 0.25
    assert abs((counts == 0).mean() - 0.125) < 0.01
    assert abs((counts == 1).mean() - 0.125 * 0.875) < 0.01
    # The valid points are the first K of each row.
    valid = np.asarray(patches.valid)
    assert np.all(valid == (np.arange(64)[None] < counts[:, None]))


def test_patch_sides_and_corners_follow_the_authors_draw():
    height = width = 48
    patches = hints.sample_patches(jax.random.key(1), 4000, height, width, **PAPER)
    top, left, size = (np.asarray(x).ravel() for x in patches[:3])
    assert set(np.unique(size)) == set(range(1, 10))
    assert np.all(top >= 0) and np.all(top + size <= height)
    assert np.all(left >= 0) and np.all(left + size <= width)
    # Centre bias: corners ~ N((H - P + 1) / 2, ((H - P + 1) / 4)^2), clipped (2 standard deviations away).
    span = height - size + 1
    z = (top + 0.5 - span / 2) / (span / 4)  # + 0.5: the draw is floored
    assert abs(z.mean()) < 0.05 and 0.85 < z.std() < 0.98
    centre = size / 2 + top
    assert np.mean(np.abs(centre - height / 2) < height / 4) > 0.6  # uniform corners would give 0.5


def test_patch_means_are_the_mean_chroma_of_each_patch():
    rng = np.random.default_rng(0)
    chroma = rng.uniform(-100, 100, (3, 20, 24, 2)).astype(np.float32)
    patches = hints.sample_patches(jax.random.key(2), 3, 20, 24, **FEW)
    means = np.asarray(hints.patch_means(jnp.asarray(chroma), patches))
    top, left, size = (np.asarray(x) for x in patches[:3])
    for n in range(3):
        for k in range(12):
            t, c, s = top[n, k], left[n, k], size[n, k]
            np.testing.assert_allclose(means[n, k], chroma[n, t : t + s, c : c + s].mean((0, 1)), atol=1e-3)


def test_simulated_hints_reveal_patch_means_painted_in_order():
    rng = np.random.default_rng(1)
    chroma = rng.uniform(-100, 100, (6, 16, 20, 2)).astype(np.float32)
    key = jax.random.key(3)
    simulate = jax.jit(functools.partial(hints.simulate_hints, **FEW))
    ab, mask = (np.asarray(x) for x in simulate(key, jnp.asarray(chroma)))
    # The same draw, painted here point by point as the authors' loop does.
    patches = hints.sample_patches(key, 6, 16, 20, **FEW)
    means = np.asarray(hints.patch_means(jnp.asarray(chroma), patches))
    expected_ab, expected_mask = np.zeros_like(ab), np.zeros_like(mask)
    for n in range(6):
        for k in np.nonzero(np.asarray(patches.valid[n]))[0]:
            t, c, s = (int(x[n, k]) for x in patches[:3])
            expected_ab[n, t : t + s, c : c + s] = means[n, k]
            expected_mask[n, t : t + s, c : c + s] = 1.0
    np.testing.assert_allclose(ab, expected_ab, atol=1e-3)
    np.testing.assert_array_equal(mask, expected_mask)
    assert 0 < mask.mean() < 1


def test_simulated_hints_are_deterministic_for_a_key():
    chroma = jnp.asarray(np.random.default_rng(2).uniform(-50, 50, (8, 16, 16, 2)), jnp.float32)
    simulate = jax.jit(functools.partial(hints.simulate_hints, **PAPER))
    first, again = simulate(jax.random.key(7), chroma), simulate(jax.random.key(7), chroma)
    other = simulate(jax.random.key(8), chroma)
    np.testing.assert_array_equal(first.ab, again.ab)
    np.testing.assert_array_equal(first.mask, again.mask)
    assert not np.array_equal(first.mask, other.mask)


def test_hints_from_a_reference_photo():
    reference = np.zeros((30, 40, 3), np.uint8)
    reference[:, :20] = (200, 40, 40)  # red left half
    reference[:, 20:] = (40, 40, 200)  # blue right half
    points = hints.hints_from_reference(reference, 12, jax.random.key(0), size=1)
    assert len(points) == 12 and all(p.size == 1 for p in points)
    lab = rgb2lab(reference / 255.0)
    for p in points:
        np.testing.assert_allclose(p.ab, lab[p.y, p.x, 1:], atol=0.05)
    # Same draw at the size of a photo twice as large: the coordinates follow the photo.
    scaled = hints.hints_from_reference(reference, 12, jax.random.key(0), size=5, photo_size=(60, 80))
    assert all(0 <= p.x < 80 and 0 <= p.y < 60 and p.size == 5 for p in scaled)
    assert max(p.y for p in scaled) > 30 or max(p.x for p in scaled) > 40
    # The hints rasterise at any working size.
    maps = hints.hint_maps(scaled, (60, 80), (24, 32))
    assert maps.mask.sum() >= 12
    with pytest.raises(HintError, match="odd positive integer, got 4"):
        hints.hints_from_reference(reference, 3, jax.random.key(0), size=4)


def test_the_hints_variant_turns_the_paper_simulation_on():

    from colorjax.config_lib import base_config, load_config

    path = REPO / "configs" / "siggraph17.py"
    assert not base_config().hints.simulate
    config = load_config(path, "hints,cpu")
    assert config.hints.simulate and config.model.name == "siggraph17"
    assert (config.hints.geometric_p, tuple(config.hints.patch_sizes)) == (1 / 8, (1, 9))
    assert config.model.width == 1 / 8 and config.data.image_size == 64
    assert not load_config(path, "cpu").hints.simulate
