"""Input pipeline: photos from TFDS, a local folder or the wheel-shipped samples, as batches of L and chroma.

`config.data.source` names where the photos come from:
- `tfds:NAME` (e.g. `tfds:imagenet2012`, `tfds:places365_small`, `tfds:cifar10`): any TFDS image dataset, read with
  `config.data.tfds_data_dir`; splits are TFDS split strings (`train`, `validation[:1000]`, ...).
- `folder:PATH`: every jpg/jpeg/png/bmp/tif/tiff/webp below PATH (recursive). A split `S` reads `PATH/S` when that
  folder exists; otherwise the whole folder is split by a stable hash of each file's relative path
  (`config.data.holdout_fraction` of the files are `validation`/`test`, the rest `train`). With
  `config.data.labels = "auto"` the first-level subfolder (below the split folder) is the class label whenever every
  image sits in one; `True`/`False` force it.
- `samples`: seven colour photos that ship inside the scikit-image and scikit-learn wheels (no download).

Every element is `L` (H, W, 1) in [0, 100], `chroma` (H, W, 2) — ab for `color_space="lab"`, uv for `"luv"` — and
`label` where the data has classes. Training crops are random resized crops with a horizontal flip (or, with
`config.data.train_crop = "resize_random_crop"`, the shorter side resized to `resize_size` then a random crop);
evaluation resizes the shorter side and takes the centre crop.

What a long run on a big dataset needs, and how it is done here:
- Photos with no colour signal (every pixel's |a| and |b| <= `min_chroma`: black-and-white scans) are skipped in
  training, as Zhang et al. do, and counted in the logs.
- A file that cannot be read or decoded is skipped with one warning naming it; only when more than
  `max_failed_fraction` of the photos seen fail does the run stop, with a message saying so.
- Repeatable and resumable: the order of every epoch and every random crop derive from (seed, epoch, index), so a
  `Position` (epoch, index) is all it takes to continue a stream exactly where a killed run left it.
- Multi-host: each process reads its own share of the files (`tfds.split_for_jax_process` for TFDS) and produces its
  slice of the global batch; `local batch = global batch / process_count`.
- A background thread keeps `config.data.prefetch` batches ready, so decoding overlaps the accelerator's work.

TensorFlow is used for tf.data only; `hide_accelerators_from_tensorflow()` keeps it off the GPUs/TPUs JAX owns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colorjax import color

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# The `samples` source: photos that ship inside installed wheels (package, path inside the package).
SAMPLE_PHOTOS = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}

# Elements smaller than this many records per tf.data "block" are merged with the following epochs, so a tiny
# source (seven sample photos) does not rebuild its dataset every few images.
_MIN_BLOCK_RECORDS = 2048


class DataError(ValueError):
    """A problem with the input data that the user must fix (the message says how)."""


def hide_accelerators_from_tensorflow() -> None:
    """Keeps TensorFlow (tf.data only) off the GPUs and TPUs, which belong to JAX."""
    import tensorflow as tf

    for kind in ("GPU", "TPU"):
        try:
            tf.config.set_visible_devices([], kind)
        except (
            RuntimeError,
            ValueError,
        ):  # Already initialised, or no such device type: nothing to hide.
            pass


# --------------------------------------------------------------------------------------------------- sources


def sample_photo_paths() -> dict[str, Path]:
    """Name -> path of the sample photos shipped inside the scikit-image and scikit-learn wheels."""
    import importlib.util

    paths = {}
    for name, (package, relative) in SAMPLE_PHOTOS.items():
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise DataError(
                f"The 'samples' source needs the {package} package; install it with `pip install "
                f"{'scikit-image' if package == 'skimage' else 'scikit-learn'}`."
            )
        path = Path(spec.origin).parent / relative
        if not path.exists():
            raise DataError(
                f"Sample photo {path} is missing from the installed {package}; reinstall it."
            )
        paths[name] = path
    return paths


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a stream stands: the next record to read is `index` of epoch `epoch` (this process's share)."""

    epoch: int = 0
    index: int = 0


def _epoch_seed(seed: int, epoch: int, process_index: int) -> int:
    return int(
        np.random.SeedSequence([seed, epoch, process_index]).generate_state(1)[0] & 0x7FFFFFFF
    )


class FileSource:
    """Image files on disk (a folder or the samples), with optional integer labels."""

    def __init__(
        self,
        paths: Sequence[str],
        labels: Sequence[int] | None,
        class_names: Sequence[str] | None,
        description: str,
    ):
        self.paths = np.asarray([str(p) for p in paths])
        self.labels = None if labels is None else np.asarray(labels, np.int32)
        self.class_names = None if class_names is None else list(class_names)
        self.description = description

    @property
    def num_examples(self) -> int:
        return len(self.paths)

    def _order(self, epoch_seed: int | None) -> np.ndarray:
        if epoch_seed is None:
            return np.arange(len(self.paths))
        return np.random.default_rng(epoch_seed).permutation(len(self.paths))

    def record_name(self, epoch_seed: int | None, index: int) -> str:
        return self.paths[self._order(epoch_seed)[index]]

    def records(self, epoch_seeds: Sequence[int | None], epochs: Sequence[int], skip: int = 0):
        """tf.data records {encoded, label?, epoch, index} of the given epochs, the first one from `skip` on."""
        import tensorflow as tf

        orders = [self._order(s) for s in epoch_seeds]
        index = np.concatenate([np.arange(len(o)) for o in orders])
        epoch = np.concatenate(
            [np.full(len(o), e, np.int64) for o, e in zip(orders, epochs, strict=True)]
        )
        order = np.concatenate(orders)
        columns = {"path": self.paths[order], "epoch": epoch, "index": index.astype(np.int64)}
        if self.labels is not None:
            columns["label"] = self.labels[order]
        columns = {k: v[skip:] for k, v in columns.items()}
        ds = tf.data.Dataset.from_tensor_slices(columns)

        def read(record):
            record = dict(record)
            record["encoded"] = tf.io.read_file(record.pop("path"))
            return record

        return ds.map(_plain(read), num_parallel_calls=tf.data.AUTOTUNE)


class TfdsSource:
    """A TFDS image dataset split (this process's share of it), read without decoding until after the skip."""

    def __init__(
        self, name: str, split: str, *, data_dir: str | None, image_key: str, shuffle_buffer: int
    ):
        import jax
        import tensorflow_datasets as tfds

        self.description = f"tfds:{name} split {split!r}"
        try:
            self.builder = tfds.builder(name, data_dir=data_dir)
        except Exception as e:  # noqa: BLE001 - TFDS raises many types; the user needs one line.
            raise DataError(
                f"TFDS has no dataset {name!r} ({type(e).__name__}); check config.data.source."
            ) from e
        self.split = tfds.split_for_jax_process(split) if jax.process_count() > 1 else split
        self.image_key = image_key
        self.shuffle_buffer = shuffle_buffer
        features = self.builder.info.features
        if image_key not in features:
            raise DataError(
                f"{self.description} has no feature {image_key!r} (it has {', '.join(features)}); "
                "set config.data.image_key."
            )
        label = features["label"] if "label" in features else None
        self.class_names = (
            list(label.names) if isinstance(label, tfds.features.ClassLabel) else None
        )
        try:
            self._num_examples = self.builder.info.splits[self.split].num_examples
        except (KeyError, ValueError):
            self._num_examples = (
                None  # Unprepared metadata (e.g. tfds.testing.mock_data): count once.
            )
        if self._num_examples is None:
            self._num_examples = int(self._dataset(None).reduce(0, lambda n, _: n + 1))
        if self._num_examples == 0:
            raise DataError(f"{self.description} is empty; check the split name.")

    @property
    def num_examples(self) -> int:
        return self._num_examples

    def record_name(self, epoch_seed: int | None, index: int) -> str:
        return f"record {index} of {self.description} (epoch seed {epoch_seed})"

    def _dataset(self, epoch_seed: int | None):
        import tensorflow_datasets as tfds

        read_config = tfds.ReadConfig(shuffle_seed=epoch_seed, try_autocache=False)
        try:
            ds = self.builder.as_dataset(
                split=self.split,
                shuffle_files=epoch_seed is not None,
                read_config=read_config,
                decoders={self.image_key: tfds.decode.SkipDecoding()},
            )
        except AssertionError as e:  # TFDS's way of saying "not prepared".
            raise DataError(
                f"{self.description} is not prepared in {self.builder.data_dir}: run `tfds build "
                f"{self.builder.name}` (or set config.data.tfds_data_dir). TFDS said: {str(e).splitlines()[0]}"
            ) from e
        if epoch_seed is not None:
            ds = ds.shuffle(self.shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=False)
        return ds

    def records(self, epoch_seeds: Sequence[int | None], epochs: Sequence[int], skip: int = 0):
        import tensorflow as tf

        datasets = []
        for epoch_seed, epoch in zip(epoch_seeds, epochs, strict=True):

            def to_record(index, example, epoch=epoch):
                record = {"encoded": example[self.image_key], "epoch": tf.constant(epoch, tf.int64)}
                record["index"] = index
                if self.class_names is not None:
                    record["label"] = tf.cast(example["label"], tf.int32)
                return record

            ds = self._dataset(epoch_seed).enumerate().map(_plain(to_record))
            if not datasets and skip:
                ds = ds.skip(skip)
            datasets.append(ds)
        ds = datasets[0]
        for more in datasets[1:]:
            ds = ds.concatenate(more)
        return ds


def _stable_fraction(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


_EVAL_SPLIT_NAMES = ("validation", "val", "test", "eval")


def _split_folder(root: Path, split: str) -> Path:
    """`root/split`; for an evaluation split whose folder is missing, the folder another evaluation name uses
    (a dataset laid out train/ + test/ evaluates on test/ even when the config says "validation")."""
    wanted = root / split
    if wanted.is_dir() or split not in _EVAL_SPLIT_NAMES:
        return wanted
    for name in _EVAL_SPLIT_NAMES:
        if (root / name).is_dir():
            return root / name
    if (root / "train").is_dir():
        raise DataError(
            f"{root} has a train/ folder but no {'/, '.join(_EVAL_SPLIT_NAMES)}/ folder for split {split!r}: "
            "add one, or evaluate on train with config.data.eval_split='train'."
        )
    return wanted


def _folder_source(
    root: Path, split: str, labels: bool | str, holdout_fraction: float
) -> FileSource:
    if not root.is_dir():
        raise DataError(
            f"Image folder {root} does not exist; fix config.data.source (folder:PATH)."
        )
    split_dir = _split_folder(root, split)
    files_root = split_dir if split_dir.is_dir() else root
    files = sorted(
        p
        for p in files_root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )
    if files_root is root and split_dir != root:
        # No folder per split: a stable hash of the relative path keeps a held-out share apart.
        held_out = split.split("[")[0] in _EVAL_SPLIT_NAMES
        files = [
            f
            for f in files
            if (_stable_fraction(str(f.relative_to(root))) < holdout_fraction) == held_out
        ]
    if not files:
        raise DataError(
            f"No images ({'/'.join(e[1:] for e in IMAGE_EXTENSIONS)}) found in {files_root} for split "
            f"{split!r}; point config.data.source at a folder of photos."
        )
    relative = [f.relative_to(files_root) for f in files]
    in_subfolder = all(len(r.parts) >= 2 for r in relative)
    class_names = sorted({r.parts[0] for r in relative}) if in_subfolder else []
    use_labels = (labels is True) or (labels == "auto" and in_subfolder and len(class_names) >= 2)
    if labels is True and not in_subfolder:
        raise DataError(
            f"config.data.labels=True but some images in {files_root} are not inside a class subfolder; "
            "put each image in <class>/ or set config.data.labels='auto'."
        )
    label_ids = [class_names.index(r.parts[0]) for r in relative] if use_labels else None
    return FileSource(files, label_ids, class_names if use_labels else None, f"folder {files_root}")


def make_source(data_config: Any, split: str, *, process_index: int = 0, process_count: int = 1):
    """The photos of one split, as this process's share of a `FileSource` or a `TfdsSource`."""
    spec = data_config.source
    if spec.startswith("tfds:"):
        return TfdsSource(
            spec[len("tfds:") :],
            split,
            data_dir=data_config.get("tfds_data_dir"),
            image_key=data_config.get("image_key", "image"),
            shuffle_buffer=data_config.get("shuffle_buffer", 10_000),
        )
    if spec.startswith("folder:"):
        source = _folder_source(
            Path(os.path.expanduser(spec[len("folder:") :])),
            split,
            data_config.get("labels", "auto"),
            data_config.get("holdout_fraction", 0.05),
        )
    elif spec == "samples":
        paths = sample_photo_paths()
        source = FileSource(
            list(paths.values()), None, None, "samples (scikit-image and scikit-learn photos)"
        )
    else:
        raise DataError(
            f"Unknown data source {spec!r}; config.data.source must be 'tfds:NAME', 'folder:PATH' or 'samples'."
        )
    if process_count > 1:
        labels = None if source.labels is None else source.labels[process_index::process_count]
        source = FileSource(
            source.paths[process_index::process_count],
            labels,
            source.class_names,
            source.description,
        )
    return source


# ----------------------------------------------------------------------------------------- decoding & crops


def _plain(fn):
    """Marks a tf.data map function as plain TF (no Python control flow on tensors), so AutoGraph does not spend
    seconds converting it at every pipeline construction."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)


def decode_image(encoded):
    """Encoded bytes -> uint8 (H, W, 3). JPEG/PNG/GIF/BMP decode in TF; TIFF and WebP through Pillow."""
    import tensorflow as tf

    header = tf.strings.substr(encoded, 0, 4)
    native = tf.logical_or(
        tf.io.is_jpeg(encoded),
        tf.reduce_any(tf.equal(header, [b"\x89PNG", b"GIF8"]))
        | tf.equal(tf.strings.substr(encoded, 0, 2), b"BM"),
    )

    def with_tensorflow():
        return tf.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8)

    def with_pillow():
        return tf.py_function(_decode_with_pillow, [encoded], tf.uint8)

    image = tf.cond(native, with_tensorflow, with_pillow)
    image.set_shape([None, None, 3])
    # Pillow's failures come back as an empty image; failing here (in-graph) lets tf.data skip the record quietly.
    tf.debugging.assert_positive(tf.size(image), message="not a decodable image")
    return image


def _decode_with_pillow(encoded) -> np.ndarray:
    """TIFF, WebP and anything else Pillow reads; an empty array when it cannot (raising here would make
    TensorFlow print a Python traceback for what is just a bad file)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(encoded.numpy())) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return np.zeros((0, 0, 3), np.uint8)


def random_crop(image, seed, data_config):
    """Training crop of a uint8 image to `image_size`, with a flip; deterministic given the (2,) int seed."""
    import tensorflow as tf

    size = data_config.image_size
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if data_config.get("train_crop", "random_resized") == "resize_random_crop":
        image = _resize_shorter_side(image, data_config.get("resize_size", size))
        crop = tf.image.stateless_random_crop(image, [size, size, 3], seed=crop_seed)
    else:
        begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image),
            bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            seed=crop_seed,
            area_range=tuple(data_config.get("crop_area", (0.25, 1.0))),
            aspect_ratio_range=tuple(data_config.get("crop_aspect_ratio", (3 / 4, 4 / 3))),
            min_object_covered=0.0,
            max_attempts=10,
            use_image_if_no_bounding_boxes=True,
        )
        crop = _resize(tf.slice(image, begin, crop_size), [size, size])
    crop = tf.image.stateless_random_flip_left_right(crop, seed=flip_seed)
    return tf.clip_by_value(tf.cast(crop, tf.float32) / 255.0, 0.0, 1.0)


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
    image = _resize_shorter_side(image, data_config.get("eval_resize_size") or size)
    image = tf.image.resize_with_crop_or_pad(image, size, size)
    return tf.clip_by_value(tf.cast(image, tf.float32) / 255.0, 0.0, 1.0)


def to_lightness_chroma(rgb, data_config):
    """RGB in [0,1] -> {L, chroma, has_color}; `has_color` is Zhang et al.'s test on the Lab ab channels."""
    import tensorflow as tf

    lab = color.tf_rgb_to_lab(rgb)
    if data_config.get("color_space", "lab") == "luv":
        chroma = color.tf_rgb_to_luv(rgb)[..., 1:]
    else:
        chroma = lab[..., 1:]
    has_color = tf.reduce_any(tf.abs(lab[..., 1:]) > data_config.get("min_chroma", 5.0))
    return {"L": lab[..., :1], "chroma": chroma, "has_color": has_color}


def preprocess(record, data_config, *, train: bool, seed: int):
    """One record {encoded, epoch, index, label?} -> one example {L, chroma, has_color, epoch, index, label?}."""
    import tensorflow as tf

    image = decode_image(record["encoded"])
    if train:
        element_seed = tf.stack(
            [tf.cast(seed, tf.int64) * 1_000_003 + record["epoch"], record["index"]]
        )
        rgb = random_crop(image, element_seed, data_config)
    else:
        rgb = center_crop(image, data_config)
    example = to_lightness_chroma(rgb, data_config)
    for key in ("epoch", "index", "label"):
        if key in record:
            example[key] = record[key]
    return example


# --------------------------------------------------------------------------------------------- host streams

_BOOKKEEPING = ("has_color", "epoch", "index")


class _SkipCounter:
    """Notices unreadable records (gaps in the index sequence), warns once per file, stops past a fraction."""

    def __init__(self, source, max_failed_fraction: float, min_seen: int = 50):
        self.source = source
        self.max_failed_fraction = max_failed_fraction
        self.min_seen = min(min_seen, source.num_examples)
        self.warned: set[str] = set()
        self.seen = 0
        self.failed = 0
        self.no_color = 0

    def gap(self, epoch_seed: int | None, start: int, stop: int) -> None:
        for index in range(start, stop):
            name = self.source.record_name(epoch_seed, index)
            if name not in self.warned:
                self.warned.add(name)
                log.warning("Skipping %s: it cannot be read or decoded as an image.", name)
        self.failed += max(stop - start, 0)
        self.seen += max(stop - start, 0)
        if self.seen >= self.min_seen and self.failed > self.max_failed_fraction * self.seen:
            raise DataError(
                f"{self.failed} of {self.seen} images read from {self.source.description} could not be decoded "
                f"(more than config.data.max_failed_fraction={self.max_failed_fraction}); fix or remove those "
                "files, or raise that limit."
            )


class _GapFinder:
    """Follows (epoch, index) of the records that arrive and reports the ones that did not."""

    def __init__(self, source, counter: _SkipCounter, seed_of_epoch, start: Position):
        self.source, self.counter, self.seed_of_epoch = source, counter, seed_of_epoch
        self.expected = start

    def arrived(self, epoch: int, index: int) -> None:
        self.advance_to(epoch, index)
        self.expected = Position(epoch, index + 1)
        self.counter.seen += 1

    def advance_to(self, epoch: int, index: int) -> None:
        while self.expected.epoch < epoch:
            seed = self.seed_of_epoch(self.expected.epoch)
            self.counter.gap(seed, self.expected.index, self.source.num_examples)
            self.expected = Position(self.expected.epoch + 1, 0)
        self.counter.gap(self.seed_of_epoch(epoch), self.expected.index, index)


class TrainStream:
    """Endless host-local training batches (numpy dicts: L, chroma, label?), resumable from a `Position`.

    `position` is where the stream stands after the last batch handed out: store it with a checkpoint and pass it
    back as `start` to continue with exactly the batches an uninterrupted run would have seen.
    """

    def __init__(
        self,
        source,
        data_config: Any,
        *,
        local_batch_size: int,
        seed: int,
        process_index: int = 0,
        start: Position = Position(),
    ):
        self.source = source
        self.data_config = data_config
        self.local_batch_size = local_batch_size
        self.seed = seed
        self.process_index = process_index
        self.position = start
        self.counter = _SkipCounter(source, data_config.get("max_failed_fraction", 0.01))
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, data_config.get("prefetch", 2)))
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(start,), daemon=True, name="TrainStream"
        )
        self._thread.start()

    def epoch_seed(self, epoch: int) -> int:
        return _epoch_seed(self.seed, epoch, self.process_index)

    def __iter__(self) -> TrainStream:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        batch, self.position = item
        return batch

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, start: Position) -> None:
        try:
            for item in self._batches(start):
                if not self._put(item):
                    return
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread.
            self._put(e)

    def _dataset(self, epochs: list[int], skip: int):
        import tensorflow as tf

        seeds = [self.epoch_seed(e) for e in epochs]
        ds = self.source.records(seeds, epochs, skip)
        ds = ds.map(
            _plain(lambda r: preprocess(r, self.data_config, train=True, seed=self.seed)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        ds = ds.ignore_errors()
        return ds.batch(self.local_batch_size).prefetch(tf.data.AUTOTUNE)

    def _batches(self, start: Position) -> Iterator[tuple[dict[str, np.ndarray], Position]]:
        size = self.local_batch_size
        epochs_per_block = max(1, -(-_MIN_BLOCK_RECORDS // self.source.num_examples))
        gaps = _GapFinder(self.source, self.counter, self.epoch_seed, start)
        pending: list[dict[str, np.ndarray]] = []
        pending_rows = 0
        epoch, skip = start.epoch, start.index
        colour_epochs_checked = False
        while True:
            epochs = list(range(epoch, epoch + epochs_per_block))
            kept_in_block = 0
            for chunk in self._dataset(epochs, skip).as_numpy_iterator():
                for e, i in zip(chunk["epoch"], chunk["index"], strict=True):
                    gaps.arrived(int(e), int(i))
                keep = chunk["has_color"]
                self.counter.no_color += int(np.sum(~keep))
                kept_in_block += int(np.sum(keep))
                rows = {k: v[keep] for k, v in chunk.items() if k != "has_color"}
                if not len(rows["index"]):
                    continue
                pending.append(rows)
                pending_rows += len(rows["index"])
                while pending_rows >= size:
                    merged = {k: np.concatenate([p[k] for p in pending]) for k in pending[0]}
                    batch = {k: v[:size] for k, v in merged.items()}
                    rest = {k: v[size:] for k, v in merged.items()}
                    pending, pending_rows = (
                        ([rest], len(rest["index"])) if len(rest["index"]) else ([], 0)
                    )
                    after = Position(int(batch["epoch"][-1]), int(batch["index"][-1]) + 1)
                    yield {k: v for k, v in batch.items() if k not in _BOOKKEEPING}, after
            gaps.advance_to(epochs[-1] + 1, 0)
            if kept_in_block == 0 and not colour_epochs_checked:
                raise DataError(
                    f"No image of {self.source.description} has colour (every pixel within "
                    f"|a|,|b| <= {self.data_config.get('min_chroma', 5.0)}), or none could be decoded: a colorizer "
                    "learns from colour photos; point config.data.source at some."
                )
            colour_epochs_checked = colour_epochs_checked or kept_in_block > 0
            epoch, skip = epochs[-1] + 1, 0


def eval_batches(
    source,
    data_config: Any,
    *,
    local_batch_size: int,
    num_batches: int,
    max_examples: int | None = None,
    keep_index: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """Exactly `num_batches` host-local evaluation batches in a fixed order, each with a boolean `mask`.

    The last real batch is padded, and processes with fewer images than others keep yielding fully masked batches,
    so every process runs the same number of steps. Unreadable files are skipped (with a warning each).
    `keep_index` adds `index` (int32): each image's position in this process's source, which
    `source.record_name(None, index)` names (what a per-image report needs).
    """
    import tensorflow as tf

    records = source.records([None], [0])
    if max_examples is not None:
        records = records.take(max_examples)
    ds = records.map(
        _plain(lambda r: preprocess(r, data_config, train=False, seed=0)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.ignore_errors().batch(local_batch_size).prefetch(tf.data.AUTOTUNE)
    counter = _SkipCounter(source, data_config.get("max_failed_fraction", 0.01))
    gaps = _GapFinder(source, counter, lambda epoch: None, Position())
    produced = 0
    template = None
    for chunk in ds.as_numpy_iterator():
        for i in chunk["index"]:
            gaps.arrived(0, int(i))
        kept = {k: v for k, v in chunk.items() if k not in _BOOKKEEPING}
        if keep_index:
            kept["index"] = chunk["index"].astype(np.int32)
        chunk = kept
        template = template or chunk
        yield _pad(chunk, local_batch_size)
        produced += 1
    if template is None:
        size = data_config.image_size
        template = {
            "L": np.zeros((1, size, size, 1), np.float32),
            "chroma": np.zeros((1, size, size, 2), np.float32),
        }
        if source.class_names is not None:
            template["label"] = np.zeros((1,), np.int32)
        if keep_index:
            template["index"] = np.zeros((1,), np.int32)
    for _ in range(produced, num_batches):
        yield _pad({k: v[:0] for k, v in template.items()}, local_batch_size)


def _pad(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    rows = len(batch["L"])
    padded = {
        k: np.concatenate([v, np.zeros((size - rows, *v.shape[1:]), v.dtype)])
        for k, v in batch.items()
    }
    padded["mask"] = np.arange(size) < rows
    return padded


def num_eval_batches(
    num_examples: int, local_batch_size: int, max_examples: int | None = None
) -> int:
    """Batches needed for this process's evaluation share (take the max over processes before use)."""
    count = num_examples if max_examples is None else min(num_examples, max_examples)
    return max(1, -(-count // local_batch_size))


def colorless_images(source, data_config: Any) -> list[str]:
    """Names of the photos whose whole frame has no colour signal (training skips such crops): an audit helper."""
    import tensorflow as tf

    size = data_config.image_size

    def whole_photo(record):
        image = tf.image.resize(decode_image(record["encoded"]), [size, size], antialias=True)
        lightness_chroma = to_lightness_chroma(
            tf.clip_by_value(image / 255.0, 0.0, 1.0), data_config
        )
        return {"has_color": lightness_chroma["has_color"], "index": record["index"]}

    ds = (
        source.records([None], [0])
        .map(_plain(whole_photo), num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
    )
    names = []
    for chunk in ds.batch(256).as_numpy_iterator():
        names += [source.record_name(None, int(i)) for i in chunk["index"][~chunk["has_color"]]]
    return names
