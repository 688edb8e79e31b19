"""Training-crop throughput PER CPU CORE on ImageNet-sized JPEGs: `python -m colorjax.bench jpeg_pipeline`.

ImageNet's training photos average about 500x375 pixels and 110 kB; the team's scene photos are 150x150, so
`make_imagenet_sized_jpegs` tiles 4x3 different scene photos into one 600x450 picture, crops it to 500x375 and saves
it at JPEG quality 95 (real photographic detail, ImageNet-like file sizes; the wheel-shipped samples, resized, where
the scene photos are absent). Contenders, one tf.data map on ONE thread each (private thread pool of 1, intra-op
parallelism 1), in turns on the same files, crop 176, then flip and Lab as the trainer does:
- `decode + crop` (colorjax.data.preprocess today): decode the whole JPEG, sample a random resized crop, resize;
- `decode_and_crop_jpeg`: read the JPEG's shape from its header, sample the same kind of crop box, decode only that
  window (`tf.image.decode_and_crop_jpeg`, which skips the IDCT of blocks outside it), resize.
Rows give photos/s per core and the cores needed to feed 3,400 img/s (the H200's bf16 batch-256 step).
"""

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from colorjax import config_lib
from colorjax.data import preprocess

TARGET_IMAGES_PER_S = 3400
CROP_SIZE = 176


def make_imagenet_sized_jpegs(out_dir: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` 500x375 JPEGs (quality 95) tiled from the scene photos (or the shipped samples) into `out_dir`."""
    from PIL import Image

    from colorjax.data import sources

    folder = config_lib.scene_photos_folder()
    if folder is not None:
        photos = sorted((folder / "train").rglob("*.jpg"))
    else:
        photos = list(sources.sample_photo_paths().values())
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        canvas = Image.new("RGB", (600, 450))
        for j in range(12):
            with Image.open(photos[rng.integers(len(photos))]) as photo:
                tile = photo.convert("RGB").resize((150, 150), Image.BICUBIC)
            canvas.paste(tile, (150 * (j % 4), 150 * (j // 4)))
        path = out_dir / f"imagenet_sized_{i:05d}.jpg"
        canvas.crop((50, 37, 550, 412)).save(path, quality=95)
        paths.append(path)
    return paths


def decode_and_random_crop_jpeg(tf, encoded, seed, data_config):
    """A random resized crop of a JPEG that decodes only the crop window; uint8 -> float [0, 1] (size, size, 3)."""
    shape = tf.image.extract_jpeg_shape(encoded)
    begin, size = preprocess.random_crop_box(shape, seed, data_config)
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    crop = tf.image.decode_and_crop_jpeg(encoded, window, channels=3)
    crop = tf.image.resize(crop, [data_config.image_size] * 2, method="bilinear", antialias=True)
    return tf.clip_by_value(crop / 255.0, 0.0, 1.0)


def _one_core_rate(paths: list[Path], windowed: bool, repeats: int) -> float:
    import tensorflow as tf

    from colorjax.data import preprocess

    data_config = config_lib.base_config().data
    data_config.image_size = CROP_SIZE

    def crop(encoded, index):
        seed = tf.stack([tf.constant(0, tf.int64), index])
        if windowed:
            rgb = decode_and_random_crop_jpeg(tf, encoded, seed, data_config)
        else:
            rgb = preprocess.random_crop(preprocess.decode_image(encoded), seed, data_config)
        rgb = tf.image.stateless_random_flip_left_right(rgb, seed=seed)
        return preprocess.to_lightness_chroma(rgb, data_config)

    encoded = [p.read_bytes() for p in paths]
    dataset = tf.data.Dataset.from_tensor_slices((encoded, np.arange(len(encoded), dtype=np.int64))).map(
        preprocess.plain(crop), num_parallel_calls=1
    )
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    dataset = dataset.with_options(options)
    for _ in dataset.take(8):  # warm up (graph tracing)
        pass
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in dataset:
            pass
        rates.append(len(encoded) / (time.perf_counter() - start))
    return float(np.median(rates))


def bench_jpeg_pipeline(quick: bool) -> list[dict]:
    count, repeats = (40, 1) if quick else (300, 3)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_imagenet_sized_jpegs(Path(tmp), count)
        mean_kb = np.mean([p.stat().st_size for p in paths]) / 1e3
        rates = {"decode + crop (colorjax.data today)": [], "decode_and_crop_jpeg": []}
        for _ in range(repeats):  # in turns, so a load spike hits both
            for name in rates:
                rates[name].append(_one_core_rate(paths, name == "decode_and_crop_jpeg", 1))
    rows = []
    for name, values in rates.items():
        rate = float(np.median(values))
        rows.append(
            {
                "contender": name,
                "photos_per_s_per_core": rate,
                "cores_for_3400_per_s": TARGET_IMAGES_PER_S / rate,
                "photos": count,
                "mean_kb": mean_kb,
                "photo_size": "500x375",
                "crop": CROP_SIZE,
                "cpu_count": os.cpu_count(),
            }
        )
    rows[1]["speedup"] = rows[1]["photos_per_s_per_core"] / rows[0]["photos_per_s_per_core"]
    return rows
