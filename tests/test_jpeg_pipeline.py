"""The pipeline benchmark's ImageNet-sized JPEGs, and the windowed decode giving the same crop as decoding all."""

import numpy as np
import pytest

from colorjax import config_lib
from colorjax.bench.jpeg_pipeline import decode_and_random_crop_jpeg, make_imagenet_sized_jpegs
from colorjax.data.preprocess import random_crop_box


def test_windowed_jpeg_decode_equals_the_crop_of_the_full_decode(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from PIL import Image

    paths = make_imagenet_sized_jpegs(tmp_path, 2)
    with Image.open(paths[0]) as image:
        assert image.size == (500, 375)
    data_config = config_lib.base_config().data
    data_config.image_size = 32
    encoded = tf.constant(paths[1].read_bytes())
    seed = tf.constant([0, 7], tf.int64)
    windowed = decode_and_random_crop_jpeg(tf, encoded, seed, data_config).numpy()
    full = tf.io.decode_jpeg(encoded, channels=3)
    begin, size = random_crop_box(tf.shape(full), seed, data_config)
    crop = tf.image.resize(tf.slice(full, begin, size), [32, 32], antialias=True) / 255.0
    assert windowed.shape == (32, 32, 3)
    crop = np.clip(crop.numpy(), 0, 1)
    # Identical pixels, except that libjpeg's chroma upsampling at the window's right edge sees no neighbour
    # beyond it: that column differs by under 1/255.
    np.testing.assert_allclose(windowed[:, :-1], crop[:, :-1], atol=1e-6)
    np.testing.assert_allclose(windowed, crop, atol=1 / 255)
