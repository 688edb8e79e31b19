"""Decoding and crops: encoded bytes -> float RGB (`decode`) -> a training or evaluation crop -> L and chroma.

Every element is `L` (H, W, 1) in [0, 100], `chroma` (H, W, 2) — ab for `color_space="lab"`, uv for `"luv"` — and
`label` where the data has classes. Training crops are random resized crops with a horizontal flip (or, with
`config.data.train_crop = "resize_random_crop"`, the shorter side resized to `resize_size` then a random crop);
evaluation resizes the shorter side and takes the centre crop. Every random choice derives from (seed, epoch, index).

Training input is the CPU cost of a run (`python -m colorjax.bench jpeg_pipeline` measures it per core), so a
training crop of an upright JPEG decodes only its window, at reduced size where it can (`decode_random_crop`), and
the Lab conversion runs compiled by XLA (`to_lightness_chroma`).
"""

from __future__ import annotations

import functools

from colorjax import color
from colorjax.data import decode


def plain(fn):
    """Marks a tf.data map function as plain TF (no Python control flow on tensors), so AutoGraph does not spend
    seconds converting it at every pipeline construction."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)


def decode_image(encoded, data_config):
    """Encoded bytes -> (float32 (H, W, 3) in [0, 1], route, pixels): `decode.tf_decode` under the config's
    pixel limit; a route in `decode.FAILED` marks a placeholder the host must drop and report."""
    return decode.tf_decode(encoded, data_config.max_pixels)


# The training crop's JPEG IDCT. libjpeg's fast integer IDCT differs from the accurate one by a few levels at most
# (invisible after the resize); on 500x375 photos it was never slower, though its gain end to end stayed within the
# benchmark's noise (`python -m colorjax.bench jpeg_pipeline`: Huffman decoding, which both share, dominates). The
# reduced-size decodes (ratio 2-8) use libjpeg's scaled IDCTs whatever the method.
TRAIN_DCT_METHOD = "INTEGER_FAST"
# Training crops are antialiased only when shrinking by 2x or more: below 2x plain bilinear still reads every
# source pixel (as big_vision's and TF-slim's Inception crops, which never antialias), and after a reduced-size
# JPEG decode the remaining shrink is always under 2x.
TRAIN_ANTIALIAS_ABOVE = 2.0
# Downscaling factors libjpeg can apply while decoding (it runs a smaller IDCT per 8x8 block).
_JPEG_RATIOS = (1, 2, 4, 8)


def random_crop_box(shape, seed, data_config):
    """(begin, size) of the training crop of an image of `shape` (H, W, ...), in its pixels; deterministic given the
    (2,) int seed. The one sampler of training crops, for decoded images and for JPEG windows alike:
    - `train_crop="random_resized"`: `crop_area` of the image at an aspect ratio in `crop_aspect_ratio`;
    - `"resize_random_crop"`: the square that becomes a random `image_size` crop once the shorter side is resized
      to `resize_size` (side `min(H, W) * image_size / resize_size`, the whole shorter side at most).
    """
    import tensorflow as tf

    if data_config.train_crop == "resize_random_crop":
        height_width = tf.cast(shape[:2], tf.int32)
        shorter = tf.reduce_min(height_width)
        side = tf.cast(
            tf.math.round(tf.cast(shorter, tf.float32) * data_config.image_size / data_config.resize_size), tf.int32
        )
        side = tf.clip_by_value(side, 1, shorter)
        room = height_width - side + 1
        offset = tf.random.stateless_uniform([2], seed=seed, minval=0, maxval=2**31 - 1, dtype=tf.int32) % room
        return tf.concat([offset, [0]], 0), tf.stack([side, side, -1])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        area_range=tuple(data_config.crop_area),
        aspect_ratio_range=tuple(data_config.crop_aspect_ratio),
        min_object_covered=0.0,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def decode_random_crop(
    encoded,
    seed,
    data_config,
    *,
    dct_method: str = TRAIN_DCT_METHOD,
    reduced_size: bool = True,
    antialias_above: float = TRAIN_ANTIALIAS_ABOVE,
):
    """Encoded bytes -> (training crop float32 (image_size, image_size, 3) in [0, 1], route, pixels), flipped at
    random; deterministic given the (2,) int seed.

    An upright JPEG (route `decode.TF_JPEG`: header dims within `max_pixels`, no EXIF rotation) is never decoded
    whole: its dims come from the header, `random_crop_box` picks the window, and `tf.image.decode_and_crop_jpeg`
    decodes only the 8x8 blocks under it — at 1/2, 1/4 or 1/8 size (libjpeg's reduced IDCT) when the window is
    still at least `image_size` there (`reduced_size`; the window's corners snap to that grid, moving it by under
    `ratio` source pixels, which leaves it a random crop of the same distribution). Every other file (PNG,
    EXIF-rotated, CMYK, ...) is decoded by `decode.tf_decode` and cropped with the same box, so a rotated photo is
    cropped upright. Then the crop is
    resized to `image_size` (bilinear; antialiased only when shrinking more than `antialias_above`).
    The keyword arguments are the benchmark's levers; training uses the defaults.
    """
    import tensorflow as tf

    size = data_config.image_size
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    route, pixels = decode.tf_route(encoded, data_config.max_pixels)

    def jpeg_window():
        begin, box = random_crop_box(tf.image.extract_jpeg_shape(encoded), crop_seed, data_config)
        shorter = tf.minimum(box[0], box[1])
        ratios = _JPEG_RATIOS if reduced_size else (1,)
        # Index of the largest ratio that leaves the window at least `size` (ratio 1 always qualifies).
        which = tf.reduce_sum(tf.cast(tf.constant(ratios[1:], tf.int32) * size <= shorter, tf.int32))

        def decode_at(ratio):
            def fn():
                window = tf.stack([begin[0], begin[1], box[0], box[1]]) // ratio
                window = tf.maximum(window, [0, 0, 1, 1])
                return tf.image.decode_and_crop_jpeg(encoded, window, channels=3, ratio=ratio, dct_method=dct_method)

            return fn

        crop = tf.switch_case(which, branch_fns=[decode_at(r) for r in ratios])
        return tf.cast(crop, tf.float32) / 255.0

    def decoded_whole():
        image = decode.tf_decode_routed(encoded, route, data_config.max_pixels)
        begin, box = random_crop_box(tf.shape(image), crop_seed, data_config)
        return tf.slice(image, begin, box)

    crop = tf.cond(tf.equal(route, decode.TF_JPEG), jpeg_window, decoded_whole)
    crop.set_shape([None, None, 3])
    crop = _resize(crop, [size, size], antialias_above)
    crop = tf.image.stateless_random_flip_left_right(crop, seed=flip_seed)
    return tf.clip_by_value(crop, 0.0, 1.0), route, pixels


def _resize_shorter_side(image, target: int):
    import tensorflow as tf

    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(target, tf.float32) / tf.reduce_min(shape)
    new_size = tf.cast(tf.math.round(shape * scale), tf.int32)
    return _resize(image, tf.maximum(new_size, target))


def _resize(image, size, antialias_above: float = 1.25):
    """Bilinear resize, antialiased only when shrinking by more than `antialias_above`: TF's antialiased kernel is
    2-3x slower than plain bilinear (for a training crop it cost more than decoding the window) and changes nothing
    when enlarging or barely shrinking."""
    import tensorflow as tf

    shrink = tf.reduce_max(tf.cast(tf.shape(image)[:2], tf.float32) / tf.cast(size, tf.float32))
    return tf.cond(
        shrink > antialias_above,
        lambda: tf.image.resize(image, size, method="bilinear", antialias=True),
        lambda: tf.image.resize(image, size, method="bilinear", antialias=False),
    )


def center_crop(image, data_config):
    """Evaluation crop, by `data_config.eval_crop`: "resize_shorter_side", the shorter side resized to `image_size`
    (or `eval_resize_size`) then the centre `image_size` crop; "crop_shorter_side", the centre square of the
    shorter side (CT2's `transforms.CenterCrop(min(w, h))`: offsets round((H - side) / 2), half to even as Python)
    resized to `image_size` x `image_size`, the papers' evaluation protocol."""
    import tensorflow as tf

    size = data_config.image_size
    if data_config.eval_crop == "crop_shorter_side":
        height, width = tf.unstack(tf.shape(image)[:2])
        side = tf.minimum(height, width)

        def offset(length):
            return tf.cast(tf.round(tf.cast(length - side, tf.float32) / 2.0), tf.int32)

        image = tf.image.crop_to_bounding_box(image, offset(height), offset(width), side, side)
        return tf.clip_by_value(_resize(image, [size, size]), 0.0, 1.0)
    image = _resize_shorter_side(image, data_config.eval_resize_size or size)
    image = tf.image.resize_with_crop_or_pad(image, size, size)
    return tf.clip_by_value(image, 0.0, 1.0)


def to_lightness_chroma(rgb, data_config, *, compiled: bool = True):
    """RGB in [0,1] (H, W, 3) -> {L, chroma, has_color}; `has_color` is Zhang et al.'s test on the Lab ab channels.

    `compiled`: through XLA (`jit_compile`), which fuses the conversion's ~40 elementwise TF ops into one loop: about
    half the CPU time per crop of TF running them op by op, the largest single lever of the training crop path
    (`python -m colorjax.bench jpeg_pipeline`: 318 -> 391 photos/s per core); values agree to 1e-4. Crops have one
    fixed size, so it compiles once per process.
    """
    if compiled:
        return _compiled_lightness_chroma(data_config.color_space, float(data_config.min_chroma))(rgb)
    return _lightness_chroma(rgb, data_config.color_space, data_config.min_chroma)


def _lightness_chroma(rgb, color_space: str, min_chroma: float):
    import tensorflow as tf

    lab = color.tf_rgb_to_lab(rgb)
    chroma = color.tf_rgb_to_luv(rgb)[..., 1:] if color_space == "luv" else lab[..., 1:]
    has_color = tf.reduce_any(tf.abs(lab[..., 1:]) > min_chroma)
    return {"L": lab[..., :1], "chroma": chroma, "has_color": has_color}


@functools.cache
def _compiled_lightness_chroma(color_space: str, min_chroma: float):
    import tensorflow as tf

    return tf.function(lambda rgb: _lightness_chroma(rgb, color_space, min_chroma), jit_compile=True, autograph=False)


def preprocess(record, data_config, *, train: bool, seed: int):
    """A record {encoded, epoch, index, image_id, label?} -> an example: those plus L, chroma, has_color,
    route and pixels (see `decode_image`)."""
    import tensorflow as tf

    if train:
        element_seed = tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + record["epoch"], record["index"]])
        rgb, route, pixels = decode_random_crop(record["encoded"], element_seed, data_config)
    else:
        image, route, pixels = decode_image(record["encoded"], data_config)
        rgb = center_crop(image, data_config)
    example = to_lightness_chroma(rgb, data_config)
    example["route"], example["pixels"] = route, pixels
    for key in ("epoch", "index", "image_id", "label"):
        if key in record:
            example[key] = record[key]
    return example
