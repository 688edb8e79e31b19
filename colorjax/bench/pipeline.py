"""Input pipeline and demo train-step speed.

`pipeline`: photos/s through colorjax's tf.data training stream (decode + random resized crop + flip + Lab + the
colour-signal check + host batching) against the straightforward per-image loop people write first (Pillow decode,
Pillow crop and resize, `skimage.color.rgb2lab`), on the same files, same crop size, in one run.
"""

import os
import time
from pathlib import Path

import numpy as np

from colorjax import data

CROP_SIZE = 176


def _bench_files(limit: int) -> tuple[list[Path], str]:
    spec = os.environ.get("COLORJAX_BENCH_DATA")
    if spec is None:
        shared = Path(__file__).resolve().parents[3] / "shared" / "data" / "intel_scenes_150" / "train"
        spec = f"folder:{shared}" if shared.is_dir() else "samples"
    if spec == "samples":
        files = list(data.sample_photo_paths().values())
        files = (files * (limit // len(files) + 1))[:limit]
        return files, "samples (7 photos, repeated)"
    root = Path(spec.removeprefix("folder:"))
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in data.IMAGE_EXTENSIONS)
    rng = np.random.default_rng(0)
    files = [files[i] for i in rng.permutation(len(files))[:limit]]
    return files, f"{len(files)} photos from {root}"


def _skimage_loop(files: list[Path]) -> float:
    from PIL import Image
    from skimage.color import rgb2lab

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for path in files:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        width, height = rgb.size
        side = int(min(width, height) * rng.uniform(0.5, 1.0))
        left, top = rng.integers(0, width - side + 1), rng.integers(0, height - side + 1)
        crop = rgb.crop((left, top, left + side, top + side)).resize((CROP_SIZE, CROP_SIZE), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        lab = rgb2lab(np.asarray(crop, np.float32) / 255.0)
        _ = np.any(np.abs(lab[..., 1:]) > 5.0)
    return len(files) / (time.perf_counter() - start)


def _colorjax_stream(files: list[Path], batch_size: int) -> float:
    from colorjax import config_lib

    config = config_lib.base_config().data
    config.update(dict(image_size=CROP_SIZE, color_space="lab", max_failed_fraction=0.05, prefetch=4))
    source = data.FileSource(files, None, None, "benchmark photos")
    stream = data.TrainStream(source, config, local_batch_size=batch_size, seed=0)
    next(stream)  # Start-up (graph construction, first fills) is not throughput.
    batches = max(1, len(files) // batch_size - 1)
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    rate = batches * batch_size / (time.perf_counter() - start)
    stream.close()
    return rate


def bench_pipeline(quick: bool) -> list[dict]:
    files, description = _bench_files(300 if quick else 2000)
    skimage_rate = _skimage_loop(files)
    colorjax_rate = _colorjax_stream(files, batch_size=32)
    return [
        {
            "contender": "Pillow + skimage.rgb2lab loop",
            "images_per_s": skimage_rate,
            "ratio": 1.0,
            "data": description,
        },
        {
            "contender": "colorjax tf.data stream",
            "images_per_s": colorjax_rate,
            "ratio": colorjax_rate / skimage_rate,
            "data": description,
        },
    ]
