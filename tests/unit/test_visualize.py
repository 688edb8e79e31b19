"""The one comparison-grid implementation: pixel layout, rendering from L + chroma, captions."""

import numpy as np
import pytest
from PIL import Image

from colorjax.evaluation import visualize


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
