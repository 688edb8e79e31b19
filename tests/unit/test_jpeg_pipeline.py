"""The training crop's JPEG window decode: the same crop as decoding the whole photo, EXIF rotation honoured, the
pixel limit applied from the header; the compiled Lab conversion equals the op-by-op one."""

import io

import numpy as np
import pytest
from helpers.photos import make_photo

from colorjax import config_lib
from colorjax.bench.jpeg_pipeline import make_imagenet_sized_jpegs
from colorjax.data import decode, preprocess

tf = pytest.importorskip("tensorflow")


def train_config(image_size: int = 32, train_crop: str = "random_resized"):
    config = config_lib.base_config().data
    config.update(dict(image_size=image_size, train_crop=train_crop))
    return config


def crop_of_whole_decode(encoded, seed, config):
    """The reference: decode the whole file (the one general decoder), crop the same box, resize, flip."""
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    image, _, _ = decode.tf_decode(encoded, config.max_pixels)
    begin, size = preprocess.random_crop_box(tf.shape(image), crop_seed, config)
    crop = preprocess._resize(tf.slice(image, begin, size), [config.image_size] * 2, preprocess.TRAIN_ANTIALIAS_ABOVE)
    return np.clip(tf.image.stateless_random_flip_left_right(crop, seed=flip_seed).numpy(), 0, 1)


def jpeg_bytes(rgb: np.ndarray, exif=None) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=95, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


@pytest.fixture(scope="module")
def imagenet_sized_jpeg(tmp_path_factory):
    path = make_imagenet_sized_jpegs(tmp_path_factory.mktemp("jpegs"), 1)[0]
    return tf.constant(path.read_bytes())


@pytest.mark.parametrize("train_crop", ["random_resized", "resize_random_crop"])
def test_window_decode_equals_the_crop_of_the_whole_decode(imagenet_sized_jpeg, train_crop):
    config = train_config(train_crop=train_crop)
    for index in range(6):
        seed = tf.constant([0, index], tf.int64)
        crop, route, pixels = preprocess.decode_random_crop(
            imagenet_sized_jpeg, seed, config, dct_method="INTEGER_ACCURATE", reduced_size=False
        )
        assert int(route) == decode.TF_JPEG and int(pixels) == 500 * 375
        reference = crop_of_whole_decode(imagenet_sized_jpeg, seed, config)
        assert crop.shape == (32, 32, 3)
        # Identical pixels inside; libjpeg's chroma upsampling at the window's left and right edges sees no
        # neighbour beyond them, so the outermost output columns may differ by a few levels.
        np.testing.assert_allclose(crop[:, 1:-1], reference[:, 1:-1], atol=1e-5)
        np.testing.assert_allclose(crop, reference, atol=16 / 255)


@pytest.mark.parametrize("image_size", [32, 64])
def test_reduced_size_fast_idct_decode_is_the_same_crop_resampled_differently(imagenet_sized_jpeg, image_size):
    """The training default: the window decoded at 1/ratio size (the largest of 2, 4, 8 leaving it >= image_size,
    its corners snapped to that grid) with the fast IDCT: libjpeg's scaled IDCT instead of an antialiased resize,
    so close on average to the whole decode's crop of the snapped box, not pixel for pixel (measured: about 1.2
    levels of 255 at ratio 2, the 176-px crops of ImageNet-sized photos, and 4-6 at ratios 4 and 8, where the
    scaled IDCT is sharper than the triangle filter). A window off by a few pixels differs by 15-25 levels."""
    config = train_config(image_size)
    image, _, _ = decode.tf_decode(imagenet_sized_jpeg, config.max_pixels)
    ratios = set()
    for index in range(6):
        seed = tf.constant([0, index], tf.int64)
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        begin, size = (t.numpy() for t in preprocess.random_crop_box(tf.shape(image), crop_seed, config))
        ratio = max(r for r in (1, 2, 4, 8) if r * image_size <= min(size[:2]))
        top, left, height, width = (int(v) // ratio * ratio for v in (*begin[:2], *size[:2]))
        reference = tf.image.resize(image[top : top + height, left : left + width], [image_size] * 2, antialias=True)
        reference = np.clip(tf.image.stateless_random_flip_left_right(reference, seed=flip_seed).numpy(), 0, 1)
        crop, route, _ = preprocess.decode_random_crop(imagenet_sized_jpeg, seed, config)
        levels = 255 * np.abs(crop.numpy() - reference).mean()
        assert int(route) == decode.TF_JPEG and levels < {2: 2.5, 4: 8, 8: 8}[ratio], (index, ratio, levels)
        ratios.add(ratio)
    assert ratios & {2, 4, 8}  # the reduced-size decode was exercised


def test_exif_rotated_jpeg_is_cropped_upright():
    from PIL import Image

    stored = make_photo(np.random.default_rng(1), 48, 64)  # 64 wide as stored; orientation 6 shows it 48 wide
    exif = Image.Exif()
    exif[0x0112] = 6
    encoded = tf.constant(jpeg_bytes(stored, exif.tobytes()))
    config = train_config(image_size=16)
    upright = decode.decode(encoded.numpy(), config.max_pixels)
    assert upright.shape == (64, 48, 3)  # rotated by the one decoder
    for index in range(4):
        seed = tf.constant([0, index], tf.int64)
        crop, route, _ = preprocess.decode_random_crop(encoded, seed, config)
        assert int(route) == decode.PYTHON  # not the window decode, which would crop the unrotated image
        np.testing.assert_allclose(crop, crop_of_whole_decode(encoded, seed, config), atol=1e-6)
    # The same JPEG with EXIF orientation 1 is upright as stored and takes the window decode.
    exif[0x0112] = 1
    plain = tf.constant(jpeg_bytes(stored, exif.tobytes()))
    assert int(preprocess.decode_random_crop(plain, tf.constant([0, 0], tf.int64), config)[1]) == decode.TF_JPEG


def test_pixel_limit_and_grey_jpegs_in_the_window_path():
    config = train_config(image_size=16)
    colour = jpeg_bytes(make_photo(np.random.default_rng(2), 48, 64))
    config.max_pixels = 48 * 64 - 1
    crop, route, pixels = preprocess.decode_random_crop(tf.constant(colour), tf.constant([0, 0], tf.int64), config)
    assert int(route) == decode.TOO_LARGE and int(pixels) == 48 * 64  # from the header; a placeholder crop
    config.max_pixels = 48 * 64
    grey = jpeg_bytes(make_photo(np.random.default_rng(3), 48, 64).mean(-1).astype(np.uint8))
    crop, route, _ = preprocess.decode_random_crop(tf.constant(grey), tf.constant([0, 1], tf.int64), config)
    assert int(route) == decode.TF_JPEG and crop.shape == (16, 16, 3)
    np.testing.assert_array_equal(crop[..., 0], crop[..., 2])
    assert not bool(preprocess.to_lightness_chroma(crop, config)["has_color"])


@pytest.mark.parametrize("color_space", ["lab", "luv"])
def test_compiled_lightness_chroma_equals_the_op_by_op_conversion(color_space):
    config = train_config()
    config.color_space = color_space
    rgb = tf.constant(np.random.default_rng(4).uniform(0, 1, (32, 32, 3)).astype(np.float32))
    compiled = preprocess.to_lightness_chroma(rgb, config)
    op_by_op = preprocess.to_lightness_chroma(rgb, config, compiled=False)
    for key in ("L", "chroma"):
        assert compiled[key].dtype == tf.float32 and compiled[key].shape == op_by_op[key].shape
        np.testing.assert_allclose(compiled[key], op_by_op[key], atol=1e-3)
    assert bool(compiled["has_color"]) == bool(op_by_op["has_color"]) is True
