"""Where the photos come from: TFDS, a local folder or the wheel-shipped samples, as tf.data records.

`config.data.source` names where the photos come from:
- `tfds:NAME` (e.g. `tfds:imagenet2012`, `tfds:places365_small`, `tfds:cifar10`): any TFDS image dataset, read with
  `config.data.tfds_data_dir`; splits are TFDS split strings (`train`, `validation[:1000]`, ...).
- `folder:PATH`: every jpg/jpeg/png/bmp/gif/tif/tiff/webp below PATH (recursive). A split `S` reads `PATH/S` when that
  folder exists; otherwise the whole folder is split by a stable hash of each file's relative path
  (`config.data.holdout_fraction` of the files are `validation`/`test`, the rest `train`); split `all` (with no
  `PATH/all` folder) is every file of the folder. With
  `config.data.labels = "auto"` the first-level subfolder (below the split folder) is the class label whenever every
  image sits in one; `True`/`False` force it.
- `samples`: seven colour photos that ship inside the scikit-image and scikit-learn wheels (no download).

Multi-host: each process reads its own share of the files (`tfds.split_for_jax_process` for TFDS).
A record is {encoded, epoch, index, label?}: the still-encoded file and where it stands in the epoch.
TensorFlow is used for tf.data only; `hide_accelerators_from_tensorflow()` keeps it off the GPUs/TPUs JAX owns.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colorjax import ColorjaxError
from colorjax.data.preprocess import plain

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

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


class DataError(ColorjaxError, ValueError):
    """A problem with the input data that the user must fix (the message says how)."""


def import_tensorflow():
    """TensorFlow, imported (the first time) with its start-up notes held to TF_CPP_MIN_LOG_LEVEL.

    TensorFlow 2.21 prints "oneDNN custom operations are on ..." and absl's "All log messages before
    absl::InitializeLog() ..." from C++ while it loads, before it applies TF_CPP_MIN_LOG_LEVEL (colorjax sets 2;
    `train --verbosity 0` sets 0). So the import runs with file descriptor 2 sent to a temporary file, and what
    was written there is then replayed to stderr, less its info lines ("I0000 ...") and that absl note when the
    level is above 0. Nothing else is dropped, whichever thread wrote it. (Turning oneDNN off would silence its
    note too, but costs tf.data a third of its speed: 530 -> 300-460 images/s in `bench pipeline --quick`.)
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a daemon): nothing to keep quiet
        import tensorflow as tf

        return tf
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow as tf
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            written = held.read().decode(errors="replace")
            quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("", "0")
            for line in written.splitlines(keepends=True):
                if not (quiet and (re.match(r"I\d{4} ", line) or "before absl::InitializeLog()" in line)):
                    sys.stderr.write(line)
            sys.stderr.flush()
    return tf


def hide_accelerators_from_tensorflow() -> None:
    """Keeps TensorFlow (tf.data only) off the GPUs and TPUs, which belong to JAX."""
    tf = import_tensorflow()

    for kind in ("GPU", "TPU"):
        try:
            tf.config.set_visible_devices([], kind)
        except (
            RuntimeError,
            ValueError,
        ):  # Already initialised, or no such device type: nothing to hide.
            pass


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
            raise DataError(f"Sample photo {path} is missing from the installed {package}; reinstall it.")
        paths[name] = path
    return paths


class FileSource:
    """Image files on disk (a folder or the samples), with optional integer labels.

    `paths` are this process's files; `ids` their global image ids (positions in the whole split's sorted file
    list, the same whatever the process count), and `name(image_id)` the path of any image of the split.
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: Sequence[int] | None,
        class_names: Sequence[str] | None,
        description: str,
        *,
        ids: Sequence[int] | None = None,
        all_paths: Sequence[str] | None = None,
    ):
        self.paths = np.asarray([str(p) for p in paths])
        self.labels = None if labels is None else np.asarray(labels, np.int32)
        self.class_names = None if class_names is None else list(class_names)
        self.description = description
        self.ids = np.arange(len(self.paths)) if ids is None else np.asarray(ids, np.int64)
        self._all_paths = self.paths if all_paths is None else np.asarray([str(p) for p in all_paths])

    @property
    def num_examples(self) -> int:
        return len(self.paths)

    def name(self, image_id: int) -> str:
        """The file path of the image with this global id."""
        return str(self._all_paths[image_id])

    def shard(self, process_index: int, process_count: int) -> FileSource:
        """This process's share: every `process_count`-th file, keeping the global ids and names."""
        take = slice(process_index, None, process_count)
        labels = None if self.labels is None else self.labels[take]
        return FileSource(
            self.paths[take],
            labels,
            self.class_names,
            self.description,
            ids=self.ids[take],
            all_paths=self._all_paths,
        )

    def _order(self, epoch_seed: int | None) -> np.ndarray:
        if epoch_seed is None:
            return np.arange(len(self.paths))
        return np.random.default_rng(epoch_seed).permutation(len(self.paths))

    def record_name(self, epoch_seed: int | None, index: int) -> str:
        """The name of the `index`-th record of the epoch with this seed (None: the unshuffled order)."""
        return self.name(self.ids[self._order(epoch_seed)[index]])

    def records(self, epoch_seeds: Sequence[int | None], epochs: Sequence[int], skip: int = 0):
        """tf.data records {encoded, image_id, label?, epoch, index} of the given epochs, the first from `skip` on."""
        import tensorflow as tf

        orders = [self._order(s) for s in epoch_seeds]
        index = np.concatenate([np.arange(len(o)) for o in orders])
        epoch = np.concatenate([np.full(len(o), e, np.int64) for o, e in zip(orders, epochs, strict=True)])
        order = np.concatenate(orders)
        columns = {
            "path": self.paths[order],
            "image_id": self.ids[order],
            "epoch": epoch,
            "index": index.astype(np.int64),
        }
        if self.labels is not None:
            columns["label"] = self.labels[order]
        columns = {k: v[skip:] for k, v in columns.items()}
        ds = tf.data.Dataset.from_tensor_slices(columns)

        def read(record):
            record = dict(record)
            record["encoded"] = tf.io.read_file(record.pop("path"))
            return record

        return ds.map(plain(read), num_parallel_calls=tf.data.AUTOTUNE)


class TfdsSource:
    """A TFDS image dataset split (this process's share of it), read without decoding until after the skip.

    A record's global image id is its position in the whole base split (`train`, `validation`, ...), worked
    out from TFDS's per-record `tfds_id` (file shard and position in it) and the shard lengths, so it is the
    same in every process and epoch; `name(image_id)` is `split[id]`.
    """

    def __init__(
        self,
        name: str,
        split: str,
        *,
        data_dir: str | None,
        image_key: str,
        shuffle_buffer: int,
        first_by_file_number: int | None = None,
    ):
        import jax
        import tensorflow_datasets as tfds

        self.description = f"tfds:{name} split {split!r}"
        try:
            self.builder = tfds.builder(name, data_dir=data_dir)
        except Exception as e:  # noqa: BLE001 - TFDS raises many types; the user needs one line.
            raise DataError(f"TFDS has no dataset {name!r} ({type(e).__name__}); check config.data.source.") from e
        self.split = tfds.split_for_jax_process(split) if jax.process_count() > 1 else split
        self._base_split = re.match(r"\s*([\w-]*)", split).group(1)
        self._combined = "+" in split
        self.split_name = split
        self.image_key = image_key
        self.shuffle_buffer = shuffle_buffer
        features = self.builder.info.features
        if image_key not in features:
            raise DataError(
                f"{self.description} has no feature {image_key!r} (it has {', '.join(features)}); "
                "set config.data.image_key."
            )
        label = features["label"] if "label" in features else None
        self.class_names = list(label.names) if isinstance(label, tfds.features.ClassLabel) else None
        self.first_by_file_number = first_by_file_number
        self._file_names: dict[int, str] = {}
        if first_by_file_number is not None:
            if "file_name" not in features:
                raise DataError(f"{self.description} has no file_name feature to number its examples by.")
            self.description += f", file numbers 1..{first_by_file_number}"
        try:
            self._num_examples = self.builder.info.splits[self.split].num_examples
        except (KeyError, ValueError):
            self._num_examples = None  # Unprepared metadata (e.g. tfds.testing.mock_data): count once.
        if first_by_file_number is not None:
            self._file_names = self._selected_file_names()
            self._num_examples = len(self._file_names)
        if self._num_examples is None:
            self._num_examples = int(self._dataset(None).reduce(0, lambda n, _: n + 1))
        if self._num_examples == 0:
            raise DataError(f"{self.description} is empty; check the split name.")
        self._offsets = self._shard_offsets()

    @property
    def num_examples(self) -> int:
        return self._num_examples

    def name(self, image_id: int) -> str:
        if self.first_by_file_number is not None:
            return self._file_names.get(image_id, f"file number {image_id + 1}")
        if self._combined:
            return f"record {image_id} of {self.split_name}"
        return f"{self._base_split}[{image_id}]"

    def record_name(self, epoch_seed: int | None, index: int) -> str:
        """Names the `index`-th record read in an epoch (a record that failed has no id to name it by)."""
        if epoch_seed is None:
            return f"record {index} of {self.description}"
        return f"record {index} of {self.description} (epoch seed {epoch_seed})"

    def _file_number(self, example):
        """The last run of digits in an example's file name (ILSVRC2012_val_00000042.JPEG -> 42); 0 if none."""
        import tensorflow as tf

        digits = tf.strings.regex_replace(example["file_name"], r"^(?:.*\D)?(\d+)\D*$", r"\1")
        matched = tf.strings.regex_full_match(example["file_name"], r"^(?:.*\D)?\d+\D*$")
        return tf.where(
            matched, tf.strings.to_number(tf.where(matched, digits, "0"), tf.int64), tf.constant(0, tf.int64)
        )

    def _selected(self, ds):
        """Keeps the examples numbered 1..first_by_file_number (a no-op without the setting)."""
        if self.first_by_file_number is None:
            return ds
        first = self.first_by_file_number
        return ds.filter(lambda example: (self._file_number(example) >= 1) & (self._file_number(example) <= first))

    def _selected_file_names(self) -> dict[int, str]:
        """Image id -> file name of every selected example: one pass over the split's records (the images are
        read as bytes, not decoded), in which TFDS's order does not matter."""
        ds = self._selected(self._dataset(None)).map(lambda example: (self._file_number(example), example["file_name"]))
        return {int(number) - 1: name.decode() for number, name in ds.as_numpy_iterator()}

    def _shard_offsets(self) -> np.ndarray | None:
        """Where each file shard of the base split starts (None when TFDS does not know the shard lengths)."""
        try:
            lengths = list(self.builder.info.splits[self._base_split].shard_lengths)
        except (KeyError, ValueError):
            return None
        return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if lengths else None

    def _image_id(self, tfds_id):
        """`dataset-split.tfrecord-00003-of-00016__412` -> offset of shard 3 + 412."""
        import tensorflow as tf

        file, position = tf.unstack(tf.strings.split(tfds_id, "__", maxsplit=1), num=2)
        shard = tf.strings.to_number(tf.strings.regex_replace(file, r"^.*-(\d+)-of-\d+$", r"\1"), tf.int64)
        position = tf.strings.to_number(position, tf.int64)
        if self._offsets is None:  # Unprepared metadata (mock data): ids unique, not positions.
            return shard * 1_000_000 + position
        return tf.gather(tf.constant(self._offsets), shard) + position

    def _dataset(self, epoch_seed: int | None):
        import tensorflow_datasets as tfds

        read_config = tfds.ReadConfig(shuffle_seed=epoch_seed, try_autocache=False, add_tfds_id=True)
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
                if self.first_by_file_number is None:
                    record["image_id"] = self._image_id(example["tfds_id"])
                else:  # the file's own number: ImageNet's official order
                    record["image_id"] = self._file_number(example) - 1
                if self.class_names is not None:
                    record["label"] = tf.cast(example["label"], tf.int32)
                return record

            ds = self._selected(self._dataset(epoch_seed)).enumerate().map(plain(to_record))
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


def image_files(root: Path) -> list[Path]:
    """The image files below `root` (by extension, recursive, hidden files left out), sorted. A link to a
    missing file is listed too: its reader names it and counts it with the other unreadable files (it was once
    warned about at every listing and counted nowhere); folders named like images are folders, not images."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS
        and not path.name.startswith(".")
        and (path.is_file() or (path.is_symlink() and not path.exists()))
    )


ALL_SPLIT = "all"


def _folder_source(root: Path, split: str, labels: bool | str, holdout_fraction: float) -> FileSource:
    if not root.is_dir():
        raise DataError(f"Image folder {root} does not exist; fix config.data.source (folder:PATH).")
    # "all" without a folder of that name: every file (evaluate's split for a folder without split folders).
    split_dir = root if split == ALL_SPLIT and not (root / split).is_dir() else _split_folder(root, split)
    files_root = split_dir if split_dir.is_dir() else root
    files = image_files(files_root)
    if files_root is root and split_dir != root:
        # No folder per split: a stable hash of the relative path keeps a held-out share apart.
        held_out = split.split("[")[0] in _EVAL_SPLIT_NAMES
        files = [f for f in files if (_stable_fraction(str(f.relative_to(root))) < holdout_fraction) == held_out]
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
            data_dir=data_config.tfds_data_dir,
            image_key=data_config.image_key,
            shuffle_buffer=data_config.shuffle_buffer,
            first_by_file_number=data_config.tfds_first_by_file_number,
        )
    if spec.startswith("folder:"):
        source = _folder_source(
            Path(os.path.expanduser(spec[len("folder:") :])),
            split,
            data_config.labels,
            data_config.holdout_fraction,
        )
    elif spec == "samples":
        paths = sample_photo_paths()
        source = FileSource(list(paths.values()), None, None, "samples (scikit-image and scikit-learn photos)")
    else:
        raise DataError(
            f"Unknown data source {spec!r}; config.data.source must be 'tfds:NAME', 'folder:PATH' or 'samples'."
        )
    if process_count > 1:
        source = source.shard(process_index, process_count)
    return source
