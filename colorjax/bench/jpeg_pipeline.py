"""Training-crop throughput PER CPU CORE on ImageNet-sized JPEGs: `taskset -c 0 python -m colorjax.bench jpeg_pipeline`.

ImageNet's training photos average about 500x375 pixels and 110 kB; the team's scene photos are 150x150, so
`make_imagenet_sized_jpegs` tiles 4x3 different scene photos into one 600x450 picture, crops it to 500x375 and saves
it at JPEG quality 93 (real photographic detail, about 105 kB; the wheel-shipped samples, resized, where the scene
photos are absent: point $COLORJAX_SHARED at them). Each contender is one tf.data map on ONE thread (private thread
pool of 1, intra-op parallelism 1; run the process under `taskset -c 0` so XLA's and TF's own threads share that
core too), over the same files, in turns (a load spike hits all), crop 176 + flip + Lab + the colour check, batches
of 32, as the trainer does. Each contender adds one lever to the one above it:
- `whole decode + crop, Lab op by op (before)`: what the trainer did before: decode the whole JPEG (accurate
  IDCT), crop, resize (antialiased above 1.25x shrink), and the Lab conversion as TF ops one by one;
- `window decode`: `tf.image.decode_and_crop_jpeg` of the crop window only (`preprocess.decode_random_crop`);
- `+ antialias only above 2x shrink`: plain bilinear below that (TF's antialiased resize costs more than the decode);
- `+ XLA Lab`: the Lab conversion compiled by XLA into one loop (`preprocess.to_lightness_chroma`);
- `+ reduced-size decode`: the window decoded at 1/2, 1/4 or 1/8 size where it stays >= 176 there;
- `+ fast IDCT = training path`: `colorjax.data.preprocess.preprocess(train=True)` itself (libjpeg's fast integer
  IDCT, plus the header routing and the pixel limit);
- `training path, resize 256 + crop 176`: the same with `train_crop="resize_random_crop"`, as
  `configs/zhang_eccv16.py` trains (a 176/256 window of the shorter side, decoded and resized).
Rows give photos per CPU-second (the process's CPU time, all its threads: what one core delivers, whatever else
shares the machine; wall-clock rates on a busy core also time other processes' slices, so they are listed beside
it), and the cores needed to feed 3,400 img/s (the H200's bf16 batch-256 step).
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
BATCH_SIZE = 32


def make_imagenet_sized_jpegs(out_dir: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` 500x375 JPEGs (quality 93) tiled from the scene photos (or the shipped samples) into `out_dir`."""
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
        canvas.crop((50, 37, 550, 412)).save(path, quality=93)
        paths.append(path)
    return paths


def _contenders(tf, data_config) -> dict:
    """name -> map function (encoded, index) -> {L, chroma, has_color}."""
    from colorjax.data import decode

    def seed_of(index):
        return tf.stack([tf.constant(0, tf.int64), index])

    def before(encoded, index):
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed_of(index), 2))
        image, _, _ = decode.tf_decode(encoded, data_config.max_pixels)
        begin, size = preprocess.random_crop_box(tf.shape(image), crop_seed, data_config)
        crop = preprocess._resize(tf.slice(image, begin, size), [CROP_SIZE, CROP_SIZE])  # antialiased above 1.25x
        crop = tf.clip_by_value(tf.image.stateless_random_flip_left_right(crop, seed=flip_seed), 0.0, 1.0)
        return preprocess.to_lightness_chroma(crop, data_config, compiled=False)

    def window(compiled=False, **levers):
        def fn(encoded, index):
            crop, _, _ = preprocess.decode_random_crop(encoded, seed_of(index), data_config, **levers)
            return preprocess.to_lightness_chroma(crop, data_config, compiled=compiled)

        return fn

    def training_path(config):
        def fn(encoded, index):
            record = {"encoded": encoded, "epoch": tf.constant(0, tf.int64), "index": index}
            return preprocess.preprocess(record, config, train=True, seed=0)

        return fn

    resize_then_crop = config_lib.base_config().data
    resize_then_crop.update(dict(image_size=CROP_SIZE, train_crop="resize_random_crop", resize_size=256))

    accurate = dict(dct_method="INTEGER_ACCURATE", reduced_size=False)
    return {
        "whole decode + crop, Lab op by op (before)": before,
        "window decode": window(**accurate, antialias_above=1.25),
        "+ antialias only above 2x shrink": window(**accurate),
        "+ XLA Lab": window(**accurate, compiled=True),
        "+ reduced-size decode": window(dct_method="INTEGER_ACCURATE", compiled=True),
        "+ fast IDCT = training path": training_path(data_config),
        "training path, resize 256 + crop 176 (zhang_eccv16)": training_path(resize_then_crop),
    }


def _one_core_dataset(tf, encoded: list[bytes], fn):
    dataset = tf.data.Dataset.from_tensor_slices((encoded, np.arange(len(encoded), dtype=np.int64)))
    # Batched as the trainer's stream is: handing the consumer one photo at a time would time the scheduler (a
    # thread switch per photo, which on a busy core waits out another process's time slice), not the work.
    dataset = dataset.map(preprocess.plain(fn), num_parallel_calls=1).batch(BATCH_SIZE)
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    dataset = dataset.with_options(options)
    for _ in dataset.take(1):  # warm up (graph tracing, XLA compilation)
        pass
    return dataset


def _rates(dataset, count: int) -> tuple[float, float]:
    """(photos per CPU-second of this process, all threads; photos per wall-clock second)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in dataset:
        pass
    return count / (time.process_time() - cpu), count / (time.perf_counter() - wall)


def bench_jpeg_pipeline(quick: bool) -> list[dict]:
    import tensorflow as tf

    count, repeats = (40, 1) if quick else (300, 3)
    data_config = config_lib.base_config().data
    data_config.image_size = CROP_SIZE
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_imagenet_sized_jpegs(Path(tmp), count)
        mean_kb = np.mean([p.stat().st_size for p in paths]) / 1e3
        encoded = [p.read_bytes() for p in paths]
    datasets = {name: _one_core_dataset(tf, encoded, fn) for name, fn in _contenders(tf, data_config).items()}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in datasets}
    for _ in range(repeats):  # in turns, so a load spike hits every contender
        for name, dataset in datasets.items():
            rates[name].append(_rates(dataset, count))
    before = float(np.median([cpu for cpu, _ in rates[next(iter(rates))]]))
    rows = []
    for name, values in rates.items():
        rate = float(np.median([cpu for cpu, _ in values]))
        rows.append(
            {
                "contender": name,
                "photos_per_cpu_s": rate,
                "speedup": rate / before,
                "cores_for_3400_per_s": TARGET_IMAGES_PER_S / rate,
                "cpu_runs": " ".join(f"{cpu:.0f}" for cpu, _ in values),
                "wall_runs": " ".join(f"{wall:.0f}" for _, wall in values),
                "photos": count,
                "mean_kb": mean_kb,
                "photo_size": "500x375",
                "made_from": "scene photos" if config_lib.scene_photos_folder() else "wheel samples",
                "crop": CROP_SIZE,
                "cores_allowed": len(os.sched_getaffinity(0)),
                "load_average": " ".join(f"{v:.1f}" for v in os.getloadavg()),
            }
        )
    return rows
