"""Host streams: the resumable, prefetching training stream and the padded evaluation batches.

What a long run on a big dataset needs, and how it is done here:
- Photos with no colour signal (every pixel's |a| and |b| <= `min_chroma`: black-and-white scans) are skipped in
  training, as Zhang et al. do, and counted in the logs.
- A file that cannot be read or decoded is skipped with one warning naming it (the first `MAX_NAMED_SKIPS`
  files; later ones are counted). The run stops, with a message saying so, when more than
  `config.data.max_failed_fraction` of the files of one pass (an epoch, or the evaluated split) fail: a count of
  the whole pass, so the order of the files decides nothing.
- Evaluation (`eval_batches(skip_grey=True)`) also leaves out photos with no colour signal (nothing to score a
  colorization against), and records both kinds of skipped file in a `SkippedFiles`.
- Repeatable and resumable: the order of every epoch and every random crop derive from (seed, epoch, index), so a
  `Position` (epoch, index) is all it takes to continue a stream exactly where a killed run left it.
- Multi-host: each process produces its slice of the global batch; `local batch = global batch / process_count`.
- A background thread keeps `config.data.prefetch` batches ready, so decoding overlaps the accelerator's work.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from colorjax.data import decode
from colorjax.data.preprocess import (
    decode_image,
    plain,
    preprocess,
    to_lightness_chroma,
)
from colorjax.data.sources import DataError

log = logging.getLogger(__name__)

# source (seven sample photos) does not rebuild its dataset every few images.
_MIN_BLOCK_RECORDS = 2048


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a stream stands: the next record to read is `index` of epoch `epoch` (this process's share)."""

    epoch: int = 0
    index: int = 0


def _epoch_seed(seed: int, epoch: int, process_index: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, process_index]).generate_state(1)[0] & 0x7FFFFFFF)


_BOOKKEEPING = ("has_color", "epoch", "index", "image_id", "route", "pixels")
MAX_NAMED_SKIPS = 20  # Unreadable files named one warning each; the ones after are counted, not named.


@dataclasses.dataclass(frozen=True)
class SkipCounts:
    """Distinct photos a stream has skipped so far: `no_color` (a training crop with no colour signal) and
    `failed` (unreadable, undecodable or too large). A file skipped in every epoch counts once."""

    no_color: int = 0
    failed: int = 0


@dataclasses.dataclass
class SkippedFiles:
    """The distinct files evaluation left out, filled while its batches are read: `unreadable` (name -> why) and
    `grey` (names of photos with no colour signal). One record shared by several passes over the same files (the
    mean-colour pass and the evaluation) names each file once."""

    unreadable: dict[str, str] = dataclasses.field(default_factory=dict)
    grey: set[str] = dataclasses.field(default_factory=set)


class _SkipCounter:
    """Notices unreadable records (gaps in the index sequence), warns once per file, stops past a fraction.

    `seen` and `failed` count reads (a bad file fails once per epoch); the limit compares the failures of one
    pass (`epoch`) with `pass_size`, the records of a whole pass, so it does not depend on where in the pass the
    bad files lie. `failed_names` (name -> why) and `no_color_ids` hold the distinct files behind `SkipCounts`.
    """

    def __init__(self, source, data_config: Any, pass_size: int, failed_names: dict[str, str] | None = None):
        self.source = source
        self.max_failed_fraction = data_config.max_failed_fraction
        self.max_pixels = data_config.max_pixels
        self.pass_size = pass_size
        self.failed_names: dict[str, str] = {} if failed_names is None else failed_names
        self.no_color_ids: set[int] = set()
        self.failed_in_pass: dict[int, int] = {}
        self.seen = 0
        self.failed = 0

    @property
    def counts(self) -> SkipCounts:
        return SkipCounts(no_color=len(self.no_color_ids), failed=len(self.failed_names))

    def no_color(self, image_ids: np.ndarray) -> None:
        self.no_color_ids.update(int(i) for i in image_ids)

    def gap(self, epoch: int, epoch_seed: int | None, start: int, stop: int) -> None:
        """Records start..stop-1 of an epoch never arrived: reading or decoding them failed."""
        for index in range(start, stop):
            self.seen += 1
            name = self.source.record_name(epoch_seed, index)
            self._failure(epoch, name, "it cannot be read or decoded as an image")

    def drop_failed(self, chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The rows of a chunk whose file was decoded; the others (placeholders) are reported and dropped."""
        failed = np.isin(chunk["route"], decode.FAILED)
        for image_id, route, pixels, epoch in zip(
            chunk["image_id"][failed],
            chunk["route"][failed],
            chunk["pixels"][failed],
            chunk["epoch"][failed],
            strict=True,
        ):
            if route == decode.TOO_LARGE:
                reason = decode.too_large_message(int(pixels), self.max_pixels)
            else:
                reason = "it is not an image this program can read"
            self._failure(int(epoch), self.source.name(int(image_id)), reason)
        return {k: v[~failed] for k, v in chunk.items()} if failed.any() else chunk

    def _failure(self, epoch: int, name: str, reason: str) -> None:
        if name not in self.failed_names:
            self.failed_names[name] = reason
            if len(self.failed_names) <= MAX_NAMED_SKIPS:
                log.warning("Skipping %s: %s.", name, reason)
            elif len(self.failed_names) == MAX_NAMED_SKIPS + 1:
                log.warning("More unreadable files are skipped: counted, no longer named one by one.")
        self.failed += 1
        self.failed_in_pass[epoch] = failures = self.failed_in_pass.get(epoch, 0) + 1
        if failures > self.max_failed_fraction * self.pass_size:
            raise DataError(
                f"{failures} of the {self.pass_size} images of {self.source.description} could not be decoded "
                f"(more than config.data.max_failed_fraction={self.max_failed_fraction} of them); fix or remove "
                "those files, or allow more: --config.data.max_failed_fraction=F in train, "
                "--max-failed-fraction F in evaluate."
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
            self.counter.gap(self.expected.epoch, seed, self.expected.index, self.source.num_examples)
            self.expected = Position(self.expected.epoch + 1, 0)
        self.counter.gap(epoch, self.seed_of_epoch(epoch), self.expected.index, index)


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
        self.counter = _SkipCounter(source, data_config, pass_size=source.num_examples)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, data_config.prefetch))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(start,), daemon=True, name="TrainStream")
        self._thread.start()

    def epoch_seed(self, epoch: int) -> int:
        return _epoch_seed(self.seed, epoch, self.process_index)

    @property
    def skipped(self) -> SkipCounts:
        """Distinct photos skipped so far (read by the producer thread; a snapshot is good enough for a log)."""
        return self.counter.counts

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
            plain(lambda r: preprocess(r, self.data_config, train=True, seed=self.seed)),
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
                chunk = self.counter.drop_failed(chunk)
                keep = chunk["has_color"]
                self.counter.no_color(chunk["image_id"][~keep])
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
                    pending, pending_rows = ([rest], len(rest["index"])) if len(rest["index"]) else ([], 0)
                    after = Position(int(batch["epoch"][-1]), int(batch["index"][-1]) + 1)
                    yield {k: v for k, v in batch.items() if k not in _BOOKKEEPING}, after
            gaps.advance_to(epochs[-1] + 1, 0)
            if kept_in_block == 0 and not colour_epochs_checked:
                raise DataError(
                    f"No image of {self.source.description} has colour (every pixel within "
                    f"|a|,|b| <= {self.data_config.min_chroma}), or none could be decoded: a colorizer "
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
    with_image_ids: bool = False,
    skip_grey: bool = False,
    skipped: SkippedFiles | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Exactly `num_batches` host-local evaluation batches in a fixed order, each with a boolean `mask`.

    The last real batch is padded, and processes with fewer images than others keep yielding fully masked batches,
    so every process runs the same number of steps. Unreadable files are skipped (with a warning each, wherever
    they lie in the list), and so are, with `skip_grey`, photos whose crop has no colour signal; `skipped`
    records both as the batches are read. `with_image_ids` adds `image_id` (int32): each image's global id, the
    same in every process, which `source.name(image_id)` names (what a per-image report needs).
    """
    import tensorflow as tf

    skipped = SkippedFiles() if skipped is None else skipped
    records = source.records([None], [0])
    pass_size = source.num_examples
    if max_examples is not None:
        records = records.take(max_examples)
        pass_size = min(pass_size, max_examples)
    ds = records.map(
        plain(lambda r: preprocess(r, data_config, train=False, seed=0)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.ignore_errors().batch(local_batch_size).prefetch(tf.data.AUTOTUNE)
    counter = _SkipCounter(source, data_config, pass_size, failed_names=skipped.unreadable)
    gaps = _GapFinder(source, counter, lambda epoch: None, Position())
    produced = 0
    template = None
    for chunk in ds.as_numpy_iterator():
        for i in chunk["index"]:
            gaps.arrived(0, int(i))
        chunk = counter.drop_failed(chunk)
        if skip_grey and not chunk["has_color"].all():
            skipped.grey.update(source.name(int(i)) for i in chunk["image_id"][~chunk["has_color"]])
            chunk = {k: v[chunk["has_color"]] for k, v in chunk.items()}
        if not len(chunk["index"]):
            continue
        kept = {k: v for k, v in chunk.items() if k not in _BOOKKEEPING}
        if with_image_ids:
            kept["image_id"] = chunk["image_id"].astype(np.int32)
        chunk = kept
        template = template or chunk
        yield _pad(chunk, local_batch_size)
        produced += 1
    gaps.advance_to(0, pass_size)  # The files after the last one read failed too.
    if template is None:
        size = data_config.image_size
        template = {
            "L": np.zeros((1, size, size, 1), np.float32),
            "chroma": np.zeros((1, size, size, 2), np.float32),
        }
        if source.class_names is not None:
            template["label"] = np.zeros((1,), np.int32)
        if with_image_ids:
            template["image_id"] = np.zeros((1,), np.int32)
    for _ in range(produced, num_batches):
        yield _pad({k: v[:0] for k, v in template.items()}, local_batch_size)


def _pad(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    rows = len(batch["L"])
    padded = {k: np.concatenate([v, np.zeros((size - rows, *v.shape[1:]), v.dtype)]) for k, v in batch.items()}
    padded["mask"] = np.arange(size) < rows
    return padded


def num_eval_batches(num_examples: int, local_batch_size: int, max_examples: int | None = None) -> int:
    """Batches needed for this process's evaluation share (take the max over processes before use)."""
    count = num_examples if max_examples is None else min(num_examples, max_examples)
    return max(1, -(-count // local_batch_size))


def colorless_images(source, data_config: Any) -> list[str]:
    """Names of the photos whose whole frame has no colour signal (training skips such crops): an audit helper."""
    import tensorflow as tf

    size = data_config.image_size

    def whole_photo(record):
        image, route, _ = decode_image(record["encoded"], data_config)
        image = tf.image.resize(image, [size, size], antialias=True)
        lightness_chroma = to_lightness_chroma(tf.clip_by_value(image, 0.0, 1.0), data_config)
        has_color = lightness_chroma["has_color"] | (route >= decode.TOO_LARGE)  # Not colourless: unread.
        return {"has_color": has_color, "image_id": record["image_id"]}

    ds = source.records([None], [0]).map(plain(whole_photo), num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    names = []
    for chunk in ds.batch(256).as_numpy_iterator():
        names += [source.name(int(i)) for i in chunk["image_id"][~chunk["has_color"]]]
    return names
