"""L -> gray sRGB (the pixels of a gray photo), and the private colour fallback, against skimage."""

import numpy as np
from skimage import color as skcolor

from colorjax.models.gray import lightness_to_gray_rgb
from colorjax.models.inception_resnet_v2 import gray_to_inception_input


def test_gray_is_lab2rgb_of_neutral_lab():
    L = np.linspace(0.0, 100.0, 1001)
    want = skcolor.lab2rgb(np.stack([L, 0 * L, 0 * L], -1)[None])[0]
    got = np.asarray(lightness_to_gray_rgb(L))
    assert np.max(np.abs(got - want[:, 0])) < 1e-4
    assert np.max(np.abs(want[:, 0] - want[:, 2])) < 1e-3  # skimage's gray is neutral too.


def test_inception_input_is_gray_replicated_in_minus_one_to_one():
    L = np.full((1, 10, 20, 1), 50.0, np.float32)
    x = np.asarray(gray_to_inception_input(L, size=299))
    assert x.shape == (1, 299, 299, 3)
    expected = 2.0 * skcolor.lab2rgb(np.array([[[50.0, 0.0, 0.0]]]))[0, 0, 0] - 1.0
    assert np.max(np.abs(x - expected)) < 1e-4
