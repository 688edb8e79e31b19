"""The one comparison-grid implementation: pixel layout, rendering from L + chroma, captions."""

import numpy as np
import pytest
from PIL import Image

from colorjax import color, visualize


def test_image_grid_lays_out_gray_prediction_truth_rows(tmp_path):
    n, height, width, gutter = 2, 5, 7, 2
    gray = np.full((n, height, width, 1), 0.5)
    prediction = np.zeros((n, height, width, 3), np.uint8)
    prediction[..., 0] = 255
    truth = np.zeros((n, height, width, 3))
    truth[..., 2] = 1.0
    grid = visualize.image_grid(gray, prediction, truth, gutter=gutter)
    assert grid.shape == (n * height + (n + 1) * gutter, 3 * width + 4 * gutter, 3)
    second_row = gutter + height + gutter
    assert tuple(grid[second_row, gutter]) == (128, 128, 128)  # gray column
    assert tuple(grid[second_row, 2 * gutter + width]) == (255, 0, 0)  # prediction column
    assert tuple(grid[second_row, 3 * gutter + 2 * width]) == (0, 0, 255)  # truth column
    assert tuple(grid[0, 0]) == (255, 255, 255)  # gutter
    path = visualize.save_comparison_grid(gray, prediction, truth, tmp_path / "grid.png")
    with Image.open(path) as image:
        assert image.size == (grid.shape[1], grid.shape[0] + 14)  # plus the caption row
    with pytest.raises(ValueError, match="same number of same-sized images"):
        visualize.image_grid(gray[:1], prediction, truth)


def test_comparison_grid_renders_real_rows_of_lightness_and_chroma():
    """The trainer's call: L + chroma, padding rows masked out, max_rows respected, truth optional."""
    L = np.full((3, 4, 6, 1), 60.0, np.float32)
    true_ab = np.zeros((3, 4, 6, 2), np.float32)
    true_ab[..., 0] = 40.0  # reddish
    predicted_ab = np.zeros_like(true_ab)
    mask = np.array([True, False, True])
    grid = visualize.comparison_grid(L, predicted_ab, true_ab, mask, "lab", max_rows=8)
    gutter = visualize.GRID_GUTTER
    assert grid.shape == (2 * 4 + 3 * gutter, 3 * 6 + 4 * gutter, 3)  # the two real rows only
    expected_truth = color.rgb_to_uint8(np.asarray(color.chroma_to_rgb(L[:1], true_ab[:1], "lab")))
    np.testing.assert_array_equal(
        grid[gutter : gutter + 4, 3 * gutter + 12 : 3 * gutter + 18], expected_truth[0]
    )
    assert grid[gutter, 3 * gutter + 12, 0] > grid[gutter, 3 * gutter + 12, 1] + 40  # red > green
    # Gray column shows L / 100.
    assert tuple(grid[gutter, gutter]) == (153, 153, 153)
    one_row = visualize.comparison_grid(L, predicted_ab, None, None, "lab", max_rows=1)
    assert one_row.shape == (4 + 2 * gutter, 2 * 6 + 3 * gutter, 3)  # gray | predicted only
