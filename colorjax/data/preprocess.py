"""Decoding and crops: encoded bytes -> float RGB (`decode`) -> a training or evaluation crop -> L and chroma.

Every element is `L` (H, W, 1) in [0, 100], `chroma` (H, W, 2) — ab for `color_space="lab"`, uv for `"luv"` — and
`label` where the data has classes. Training crops are random resized crops with a horizontal flip (or, with
`config.data.train_crop = "resize_random_crop"`, the shorter side resized to `resize_size` then a random crop);
evaluation resizes the shorter side and takes the centre crop. Every random choice derives from (seed, epoch, index).
"""

from __future__ import annotations

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


def random_crop_box(shape, seed, data_config):
    """(begin, size) of a random resized crop of an image of `shape` (H, W, C): `crop_area` of it at an aspect ratio in
    `crop_aspect_ratio`; deterministic given the (2,) int seed. Also used to decode only the window of a JPEG."""
    import tensorflow as tf

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


def random_crop(image, seed, data_config):
    """Training crop of a float RGB image to `image_size`, with a flip; deterministic given the (2,) int seed."""
    import tensorflow as tf

    size = data_config.image_size
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if data_config.train_crop == "resize_random_crop":
        image = _resize_shorter_side(image, data_config.resize_size)
        crop = tf.image.stateless_random_crop(image, [size, size, 3], seed=crop_seed)
    else:
        begin, crop_size = random_crop_box(tf.shape(image), crop_seed, data_config)
        crop = _resize(tf.slice(image, begin, crop_size), [size, size])
    crop = tf.image.stateless_random_flip_left_right(crop, seed=flip_seed)
    return tf.clip_by_value(crop, 0.0, 1.0)


def _resize_shorter_side(image, target: int):
    import tensorflow as tf

    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(target, tf.float32) / tf.reduce_min(shape)
    new_size = tf.cast(tf.math.round(shape * scale), tf.int32)
    return _resize(image, tf.maximum(new_size, target))


def _resize(image, size):
    """Bilinear resize, antialiased only when shrinking by more than 1.25x: TF's antialiased kernel is 2-3x slower
    than plain bilinear and changes nothing when enlarging or barely shrinking."""
    import tensorflow as tf

    shrink = tf.reduce_max(tf.cast(tf.shape(image)[:2], tf.float32) / tf.cast(size, tf.float32))
    return tf.cond(
        shrink > 1.25,
        lambda: tf.image.resize(image, size, method="bilinear", antialias=True),
        lambda: tf.image.resize(image, size, method="bilinear", antialias=False),
    )


def center_crop(image, data_config):
    """Evaluation crop: shorter side resized to `image_size` (or `eval_resize_size`), centre crop `image_size`."""
    import tensorflow as tf

    size = data_config.image_size
    image = _resize_shorter_side(image, data_config.eval_resize_size or size)
    image = tf.image.resize_with_crop_or_pad(image, size, size)
    return tf.clip_by_value(image, 0.0, 1.0)


def to_lightness_chroma(rgb, data_config):
    """RGB in [0,1] -> {L, chroma, has_color}; `has_color` is Zhang et al.'s test on the Lab ab channels."""
    import tensorflow as tf

    lab = color.tf_rgb_to_lab(rgb)
    if data_config.color_space == "luv":
        chroma = color.tf_rgb_to_luv(rgb)[..., 1:]
    else:
        chroma = lab[..., 1:]
    has_color = tf.reduce_any(tf.abs(lab[..., 1:]) > data_config.min_chroma)
    return {"L": lab[..., :1], "chroma": chroma, "has_color": has_color}


def preprocess(record, data_config, *, train: bool, seed: int):
    """A record {encoded, epoch, index, image_id, label?} -> an example: those plus L, chroma, has_color,
    route and pixels (see `decode_image`)."""
    import tensorflow as tf

    image, route, pixels = decode_image(record["encoded"], data_config)
    if train:
        element_seed = tf.stack([tf.cast(seed, tf.int64) * 1_000_003 + record["epoch"], record["index"]])
        rgb = random_crop(image, element_seed, data_config)
    else:
        rgb = center_crop(image, data_config)
    example = to_lightness_chroma(rgb, data_config)
    example["route"], example["pixels"] = route, pixels
    for key in ("epoch", "index", "image_id", "label"):
        if key in record:
            example[key] = record[key]
    return example
