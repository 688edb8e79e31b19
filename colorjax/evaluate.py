"""Evaluates a colorization model on a dataset: `python -m colorjax.evaluate --workdir RUN [options]`.

    python -m colorjax.evaluate --workdir runs/zhang --step best
    python -m colorjax.evaluate --workdir runs/zhang --data folder:../shared/data/intel_scenes_150/test
    python -m colorjax.evaluate --weights colorization_release_v2-9b330a0b.pth --model eccv16 \\
        --data tfds:imagenet2012 --split "validation[:10000]" --output eval/eccv16
    python -m colorjax.evaluate --workdir runs/zhang --classifier vgg16_weights_tf_dim_ordering_tf_kernels.h5

The model comes from a training run's checkpoint (`--workdir`, `--step best|latest|N`, rebuilt as `colorize` does)
or from published weights (`--weights FILE --model NAME`). `--data` takes the `config.data.source` strings
(`tfds:NAME`, `folder:PATH`, `samples`; default: the run's own data and its `eval_split`). Every image of the split
is evaluated at `--resolution` (shorter side resized, centre crop), in batches sharded over every device of a
`Mesh`; the padded last batch is masked, and the statistics are reduced inside the jitted step
(`colorjax.metrics`), so the device count and batch size change no number.

Rows, all on the same images: the prediction, and the baselines ground truth, gray (a = b = 0) and mean colour
(the mean ab of the evaluated ground truth at every pixel). The mean-colour row's metrics are not linear in that
mean (errors are norms, PSNR a logarithm, AuC a count under thresholds), so no statistic gathered in the same pass
can give them: a first, data-only pass (decoding, no model) computes the mean; `--mean-ab A B` supplies one
instead (e.g. the training set's) and skips it.

Outputs in `--output` (default RUN/eval/step_N):
- metrics.json: the schema in `colorjax.report` (read by `python -m colorjax.report`);
- per_image.csv: one row per evaluated image (its name, the prediction's per-image metrics);
- results.md: the Zhang and Hwang & Zhou shaped tables, and the worst images;
- auc_curves.png, auc_rebalanced_curves.png: the cumulative ab-error curves of every row;
- grid_first.png, grid_worst.png: gray | prediction | truth for the first `--num-grid` images and the
  `--num-grid` with the largest mean ab error (kept in a bounded heap: no image is held beyond those).

Semantic interpretability (`--classifier`, Zhang et al.): top-1 of a fixed classifier on each row's images and on
the ground truth, and how often the two agree. The classifier is a colorjax run whose model returns
`class_logits` (e.g. Iizuka et al.'s; note that such a model sees lightness only, so its top-1 barely moves with
the colours), or a VGG16 ImageNet weights file (Keras .h5/.keras or torchvision .pth; needs
`colorjax.models.vgg16`), fed the colour images resized to 224 x 224. FID (`--inception FILE`, Keras Inception-ResNet-v2 weights) compares the
pooled 1536-d Inception-ResNet-v2 features of each row's images with the ground truth's (InceptionV3 features, as in
the standard FID, are not in colorjax: rank runs with it, do not compare with FIDs published elsewhere).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import heapq
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from colorjax import (
    checkpointing,
    color,
    data,
    metrics,
    parallel,
    plots,
    report,
    visualize,
)
from colorjax.colorize import ColorizeError, Colorizer, check_writable

ROW_NAMES = ("prediction", "ground_truth", "gray", "mean_colour")
DEFAULT_RESOLUTION = 256  # Zhang et al.'s evaluation size, for published weights.
DEFAULT_IMAGES_PER_DEVICE = 16
VGG16_INPUT_SIZE = 224
# Per-image metrics written to per_image.csv (the float entries of `metrics.image_statistics` worth reading).
PER_IMAGE_COLUMNS = (
    "ab_l2_error",
    "auc_percent",
    "psnr_rgb_db",
    "psnr_ab_db",
    "colourfulness",
    "colourfulness_ground_truth",
    "acc_u_percent",
    "acc_v_percent",
    "saturation",
    "saturation_ground_truth",
)
# Modules that may provide `load_published(model_name, path) -> (module, variables)` for `--weights`.


class EvaluateError(ValueError):
    """A problem the user can fix (bad path, missing weights, wrong option); printed as one line."""


# ----------------------------------------------------------------------------------------------------------------
# What is evaluated: the model, an optional classifier and feature extractor.


@dataclasses.dataclass
class LoadedModel:
    """A model ready to evaluate, with what metrics.json records about it."""

    model: Any
    variables: dict[str, Any]
    color_space: str
    resolution: int
    data: dict[str, Any] | None  # The run's config.data (None for published weights).
    run: dict[str, Any]  # metrics.json "run" fields: name, workdir or weights, model, step.


def load_run(workdir: str | Path, step: str | int = "latest") -> LoadedModel:
    """A training run's model at `step` ("latest", "best" or a number), rebuilt from its checkpoint alone."""
    colorizer = Colorizer.from_run(workdir, step)
    meta = checkpointing.Checkpoints(workdir, read_only=True).restore_meta(colorizer.step)
    config = meta["config"]
    return LoadedModel(
        model=colorizer.model,
        variables=colorizer.variables,
        color_space=config["data"].get("color_space", "lab"),
        resolution=int(config["data"]["image_size"]),
        data=dict(config["data"]),
        run={
            "name": Path(workdir).absolute().name,
            "workdir": str(workdir),
            "model": config["model"]["name"],
            "step": int(colorizer.step),
        },
    )


def load_published_model(weights: str | Path, model_name: str) -> LoadedModel:
    """A model with the authors' published weights, through the published-weights importer."""
    weights = Path(weights)
    if not weights.is_file():
        raise EvaluateError(f"Weights file {weights} does not exist; check --weights.")
    from colorjax.published_weights import load_published

    try:
        module, variables = load_published(model_name, weights)
    except (FileNotFoundError, ImportError) as e:
        raise EvaluateError(str(e)) from e
    return LoadedModel(
        model=module,
        variables=variables,
        color_space=getattr(module, "color_space", "lab"),
        resolution=DEFAULT_RESOLUTION,
        data=None,
        run={"name": f"{model_name} (published)", "weights": str(weights), "model": model_name},
    )


@dataclasses.dataclass
class Classifier:
    """A fixed image classifier for semantic interpretability: `logits(variables, rgb)` with rgb (N, H, W, 3) in
    [0, 1] -> (N, classes). `class_names` (when known) must match the evaluation data's classes."""

    name: str
    logits: Callable[[Any, jax.Array], jax.Array]
    variables: Any
    num_classes: int
    class_names: list[str] | None


def classifier_from_run(workdir: str | Path, step: str | int = "best") -> Classifier:
    """A colorjax run whose model returns `class_logits` (it sees the lightness of the image it classifies)."""
    colorizer = Colorizer.from_run(workdir, step)
    meta = checkpointing.Checkpoints(workdir, read_only=True).restore_meta(colorizer.step)
    model = colorizer.model

    def logits(variables, rgb):
        L = color.rgb_to_lab(rgb)[..., :1]
        return model.apply(variables, L, train=False)["class_logits"]

    size = int(meta["config"]["data"]["image_size"])
    probe = jnp.zeros((1, size, size, 3), jnp.float32)
    try:
        shape = jax.eval_shape(logits, colorizer.variables, probe).shape
    except KeyError:
        raise EvaluateError(
            f"The model of {workdir} ({meta['config']['model']['name']}) returns no class_logits; --classifier "
            "needs a run with a classification head or a VGG16 weights file."
        ) from None
    return Classifier(
        name=f"{Path(workdir).absolute().name} step {colorizer.step}",
        logits=logits,
        variables=colorizer.variables,
        num_classes=int(shape[-1]),
        class_names=meta.get("class_names"),
    )


def vgg16_classifier(weights: str | Path) -> Classifier:
    """VGG16 with its ImageNet top from a Keras or torchvision file, fed 224 x 224 colour images."""
    from colorjax.models import vgg16

    params = vgg16.load_vgg16_params(weights, include_top=True, config_field="--classifier")
    preprocessing = vgg16.vgg16_preprocessing(weights)
    model = vgg16.VGG16(include_top=True)

    def logits(variables, rgb):
        rgb = jax.image.resize(
            rgb, (rgb.shape[0], VGG16_INPUT_SIZE, VGG16_INPUT_SIZE, 3), "bilinear", antialias=True
        )
        if preprocessing == "caffe":  # BGR in [0, 255] minus the ImageNet mean pixel.
            x = 255.0 * rgb[..., ::-1] - jnp.asarray(vgg16.CAFFE_MEAN_BGR, jnp.float32)
        else:  # torchvision: RGB normalised per channel.
            mean = jnp.asarray(vgg16.TORCH_MEAN_RGB, jnp.float32)
            x = (rgb - mean) / jnp.asarray(vgg16.TORCH_STD_RGB, jnp.float32)
        return model.apply(variables, x, train=False)["logits"]

    variables = {"params": jax.tree.map(jnp.asarray, params)}
    return Classifier(
        name=f"VGG16 {Path(weights).name}",
        logits=logits,
        variables=variables,
        num_classes=model.num_classes,
        class_names=None,
    )


def load_classifier(spec: str | Path) -> Classifier:
    """`--classifier`: a run directory (a model with class_logits) or a VGG16 weights file."""
    path = Path(spec)
    if path.is_dir():
        return classifier_from_run(path)
    if path.is_file():
        return vgg16_classifier(path)
    raise EvaluateError(
        f"--classifier {spec} does not exist; give a colorjax run directory or a VGG16 weights file."
    )


@dataclasses.dataclass
class FeatureExtractor:
    """Image features for FID: `features(variables, rgb)` with rgb (N, H, W, 3) in [0, 1] -> (N, D)."""

    name: str
    features: Callable[[Any, jax.Array], jax.Array]
    variables: Any


def load_feature_extractor(path: str | Path) -> FeatureExtractor:
    """`--inception FILE`: FID features, the 1536-d pooled features of Inception-ResNet-v2 from its Keras weights
    (either the full or the `_notop` file), fed each colour image resized to 299 x 299 in [-1, 1] as Keras does.

    The standard FID uses InceptionV3's pool features; colorjax has Inception-ResNet-v2 (Deep Koalarization's
    embedder), so its FID ranks runs against each other but is not comparable with FIDs published elsewhere.
    """
    from colorjax.models import inception_resnet_v2 as irv2

    model = irv2.InceptionResNetV2(include_top=False)
    try:
        variables = irv2.variables_from_keras_h5(path, model, config_field="--inception")
    except (FileNotFoundError, ValueError, ImportError) as error:
        raise EvaluateError(f"--inception: {error}".replace("\n", " ")) from None
    size = irv2.INPUT_SIZE

    def features(variables, rgb):
        rgb = jax.image.resize(rgb, (rgb.shape[0], size, size, 3), "bilinear", antialias=True)
        return model.apply(variables, rgb * 2.0 - 1.0, train=False)["features"]

    return FeatureExtractor(
        name=f"Inception-ResNet-v2 {Path(path).name}", features=features, variables=variables
    )


# ----------------------------------------------------------------------------------------------------------------
# Data.


def default_split(source: str) -> str:
    """The split evaluated when `--data` names a source and no `--split` is given."""
    if source.startswith("tfds:"):
        import tensorflow_datasets as tfds

        try:
            splits = tfds.builder(source[len("tfds:") :]).info.splits
        except Exception:  # noqa: BLE001 - make_source reports an unknown dataset in one line.
            return "validation"
        return "validation" if "validation" in splits else "test"
    if source.startswith("folder:"):
        root = Path(source[len("folder:") :]).expanduser()
        for split in ("test", "validation", "val"):
            if (root / split).is_dir():
                return split
    return "all"


def eval_data_config(
    run_data: dict[str, Any] | None,
    source: str | None,
    split: str | None,
    resolution: int,
    color_space: str,
) -> tuple[ml_collections.ConfigDict, str]:
    """The data config and split to evaluate: the run's data settings, with the source, size and colour space
    overridden. Split "all" of a folder is every image in it (no held-out share by hash)."""
    data = dict(run_data or {})
    same_source = source is None or source == data.get("source")
    if source is None and not data:
        raise EvaluateError("--data is required with --weights (e.g. --data folder:PATH).")
    if source is not None:
        data["source"] = source
    if split is None:
        split = data.get("eval_split", "validation") if same_source else default_split(source)
    if data.get("image_size") != resolution:
        data.pop(
            "eval_resize_size", None
        )  # A run's resize-then-crop ratio belongs to its own size.
    data["image_size"] = resolution
    data["color_space"] = color_space
    if split == "all" and data["source"].startswith("folder:"):
        split, data["holdout_fraction"] = "test", 1.0  # every file falls in the held-out share
    return ml_collections.ConfigDict(data), split


def image_namer(source, data_config, split: str) -> Callable[[int], str]:
    """Name of the image with a given id (see `_global_ids`): its file path, or its record in the TFDS split."""
    count = jax.process_count()
    if isinstance(source, data.FileSource):
        paths = source.paths
        if count > 1:  # Ids index the full file list, of which each process read every count-th.
            paths = data.make_source(data_config, split).paths
        return lambda image_id: str(paths[image_id])
    if count > 1:
        return lambda image_id: f"process {image_id % count} record {image_id // count}"
    return lambda image_id: f"{split}[{image_id}]"


def _global_ids(local_index: np.ndarray) -> np.ndarray:
    """Process-local record positions -> one id per image across processes (file sources split every count-th)."""
    return local_index * jax.process_count() + jax.process_index()


# ----------------------------------------------------------------------------------------------------------------
# The jitted steps.


def make_eval_step(
    model: Any,
    color_space: str,
    classifier: Classifier | None = None,
    extractor: FeatureExtractor | None = None,
) -> Callable:
    """step(variables, classifier_variables, extractor_variables, batch, mean_ab) -> (reduced, per_image).

    reduced[row]: `metrics.reduce_statistics` of each row (prediction and baselines) against the ground truth;
    per_image: image ids, the uint8 gray / prediction / truth images (for grids) and, with an extractor, each
    row's features (for FID). jit it with the batch sharded on "data".
    """

    def step(variables, classifier_variables, extractor_variables, batch, mean_ab):
        L, mask = batch["L"], batch["mask"]
        chroma = model.apply(variables, L, train=False)["chroma"]
        truth = metrics.views_from_chroma(L, batch["chroma"], color_space)
        rows = {
            "prediction": metrics.views_from_chroma(L, chroma, color_space),
            **metrics.baseline_predictions(L, truth, mean_ab),
        }
        stats = {name: metrics.image_statistics(views, truth) for name, views in rows.items()}
        if classifier is not None:
            labels = batch.get("label", jnp.full(L.shape[:1], -1, jnp.int32))
            truth_logits = classifier.logits(classifier_variables, truth.rgb)
            for name, views in rows.items():
                row_logits = (
                    truth_logits
                    if name == "ground_truth"
                    else classifier.logits(classifier_variables, views.rgb)
                )
                stats[name].update(
                    metrics.classification_statistics(row_logits, truth_logits, labels)
                )
        reduced = {name: metrics.reduce_statistics(s, mask) for name, s in stats.items()}
        per_image = {
            "image_id": batch["image_id"],
            "gray": _levels(L / 100.0),
            "prediction": _levels(rows["prediction"].rgb),
            "truth": _levels(truth.rgb),
        }
        if extractor is not None:
            per_image["features"] = {
                name: extractor.features(extractor_variables, views.rgb)
                for name, views in rows.items()
            }
        return reduced, per_image

    return step


def _levels(rgb: jax.Array) -> jax.Array:
    return metrics.rgb_levels(rgb).astype(jnp.uint8)


def make_mean_ab_step(color_space: str) -> Callable:
    """step(batch) -> reduced statistics of the ground truth's ab sums, for `metrics.ground_truth_mean_ab`."""

    def step(batch):
        truth = metrics.views_from_chroma(batch["L"], batch["chroma"], color_space)
        n, height, width = truth.ab.shape[:3]
        stats = {
            "images": jnp.ones((n,), jnp.int32),
            "pixels": jnp.full((n,), height * width, jnp.int32),
            "ground_truth_ab_sum": jnp.sum(truth.ab, axis=(1, 2)),
        }
        return metrics.reduce_statistics(stats, batch["mask"])

    return step


def fetch(tree: Any) -> Any:
    """Device arrays -> numpy on every process (gathered across processes on multi-host runs)."""
    return parallel.fetch_to_host(tree)


# ----------------------------------------------------------------------------------------------------------------
# Host side: grids of the first and the worst images.


class GridCollector:
    """Keeps the gray | prediction | truth images of the first `size` images and of the `size` worst (largest
    error) in a bounded min-heap, so memory never holds more than 2 * `size` images."""

    def __init__(self, size: int):
        self.size = size
        self.first: list[tuple[int, tuple[np.ndarray, ...]]] = []
        self._worst: list[tuple[float, int, int, tuple[np.ndarray, ...]]] = []
        self._seen = 0

    def wanted(self, errors: np.ndarray) -> bool:
        """Whether a batch with these per-image errors contributes any image (then fetch its pictures)."""
        if not self.size or not len(errors):
            return False
        if len(self.first) < self.size or len(self._worst) < self.size:
            return True
        return bool(np.max(errors) > self._worst[0][0])

    def add(
        self,
        image_ids: np.ndarray,
        errors: np.ndarray,
        images: Callable[[], tuple[np.ndarray, ...]],
    ) -> None:
        """Offers a batch's real images; `images()` gives (gray, prediction, truth) rows aligned with them."""
        if not self.wanted(errors):
            self._seen += len(errors)
            return
        pictures = images()
        for row, (image_id, error) in enumerate(zip(image_ids, errors, strict=True)):
            triple = tuple(p[row].copy() for p in pictures)  # a copy frees the rest of the batch
            if len(self.first) < self.size:
                self.first.append((int(image_id), triple))
            # Ties keep the earlier image: a later serial number sorts as the smaller, evicted first.
            item = (float(error), -self._seen, int(image_id), triple)
            if len(self._worst) < self.size:
                heapq.heappush(self._worst, item)
            elif item > self._worst[0]:
                heapq.heapreplace(self._worst, item)
            self._seen += 1

    def worst(self) -> list[tuple[float, int, tuple[np.ndarray, ...]]]:
        """(error, image id, images) of the worst images, worst first."""
        return [(e, i, t) for e, _, i, t in sorted(self._worst, reverse=True)]


def _stack(triples: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    return tuple(np.stack(column) for column in zip(*triples, strict=True))


# ----------------------------------------------------------------------------------------------------------------
# The evaluation.


@dataclasses.dataclass
class EvaluationResult:
    """What `evaluate` computed: the metrics.json document and the paths written."""

    document: dict[str, Any]
    written: dict[str, Path]


def _progress(total: int, description: str):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit="img",
        file=sys.stderr,
        disable=jax.process_index() > 0,
        dynamic_ncols=True,
    )


def _batches(
    source, data_config, local_batch: int, max_images: int | None
) -> tuple[int, Iterator[dict[str, np.ndarray]]]:
    per_process = None if max_images is None else -(-max_images // jax.process_count())
    num_batches = parallel.max_over_processes(
        data.num_eval_batches(source.num_examples, local_batch, per_process)
    )
    batches = data.eval_batches(
        source,
        data_config,
        local_batch_size=local_batch,
        num_batches=num_batches,
        max_examples=per_process,
        keep_index=True,
    )
    total = source.num_examples if per_process is None else min(source.num_examples, per_process)
    return total * jax.process_count(), batches


def _to_device(host_batch: dict[str, np.ndarray], mesh) -> dict[str, jax.Array]:
    batch = dict(host_batch)
    batch["image_id"] = _global_ids(batch.pop("index")).astype(np.int32)
    return parallel.host_to_global(batch, mesh)


def compute_mean_ab(
    source, data_config, color_space: str, mesh, local_batch: int, max_images: int | None
) -> np.ndarray:
    """The first, data-only pass: the mean ab of every evaluated ground-truth pixel."""
    step = jax.jit(make_mean_ab_step(color_space), in_shardings=parallel.data_sharding(mesh))
    total, batches = _batches(source, data_config, local_batch, max_images)
    accumulator = metrics.MetricsAccumulator()
    with _progress(total, "mean colour") as progress:
        for host_batch in batches:
            accumulator.add(fetch(step(_to_device(host_batch, mesh))))
            progress.update(int(np.sum(host_batch["mask"])))
    if int(accumulator.counts.get("images", 0)) == 0:
        raise EvaluateError(f"No image of {source.description} could be read; nothing to evaluate.")
    return metrics.ground_truth_mean_ab(accumulator)


def evaluate(
    loaded: LoadedModel,
    data_config: ml_collections.ConfigDict,
    split: str,
    output: str | Path,
    *,
    batch_size: int | None = None,
    max_images: int | None = None,
    num_grid: int = 8,
    mean_ab: Sequence[float] | None = None,
    classifier: Classifier | None = None,
    extractor: FeatureExtractor | None = None,
) -> EvaluationResult:
    """Evaluates `loaded` on every image of `split` and writes the outputs (module docstring) into `output`."""
    output = Path(output)
    if jax.process_index() == 0:
        check_writable(output)
    devices = jax.device_count()
    if batch_size is None:
        batch_size = DEFAULT_IMAGES_PER_DEVICE * devices
    if batch_size <= 0 or batch_size % devices:
        raise EvaluateError(
            f"--batch-size {batch_size} must be a positive multiple of the {devices} devices."
        )
    local_batch = batch_size // jax.process_count()
    if max_images is not None and max_images <= 0:
        raise EvaluateError(f"--max-images must be positive, got {max_images}.")
    data.hide_accelerators_from_tensorflow()
    source = data.make_source(
        data_config,
        split,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    if classifier is not None:
        _check_classifier_classes(classifier, source.class_names)
    mesh = parallel.make_mesh()
    color_space = loaded.color_space

    mean_from = "the evaluated ground truth (a first, data-only pass)"
    if mean_ab is None:
        mean_ab = compute_mean_ab(source, data_config, color_space, mesh, local_batch, max_images)
    else:
        mean_from = "--mean-ab"
    mean_ab = np.asarray(mean_ab, np.float32)

    replicated = parallel.replicated(mesh)
    step = jax.jit(
        make_eval_step(loaded.model, color_space, classifier, extractor),
        in_shardings=(replicated, replicated, replicated, parallel.data_sharding(mesh), replicated),
    )
    variables = jax.device_put(loaded.variables, replicated)
    classifier_variables = jax.device_put(classifier.variables if classifier else {}, replicated)
    extractor_variables = jax.device_put(extractor.variables if extractor else {}, replicated)

    accumulators = {name: metrics.MetricsAccumulator() for name in ROW_NAMES}
    moments = {name: metrics.FeatureMoments() for name in ROW_NAMES + ("truth",)}
    grids = GridCollector(num_grid)
    image_ids: list[np.ndarray] = []

    def consume(reduced, per_image) -> int:
        """Host side of one batch: accumulate the statistics, offer images to the grids; returns real images."""
        reduced = fetch(reduced)
        for name in ROW_NAMES:
            accumulators[name].add(reduced[name])
        real = np.asarray(reduced["prediction"]["mask"]).astype(bool)
        ids = fetch(per_image["image_id"])[real]
        image_ids.append(ids)
        if extractor is not None:
            features = fetch(per_image["features"])
            moments["truth"].add(features["ground_truth"][real])
            for name in ROW_NAMES:
                moments[name].add(features[name][real])
        grids.add(
            ids,
            np.asarray(reduced["prediction"]["ab_l2_error"])[real],
            lambda: tuple(fetch(per_image[key])[real] for key in ("gray", "prediction", "truth")),
        )
        return int(real.sum())

    total, batches = _batches(source, data_config, local_batch, max_images)
    started = time.perf_counter()
    with _progress(total, "evaluating") as progress:
        pending = None
        for host_batch in batches:
            batch = _to_device(host_batch, mesh)
            outputs = step(variables, classifier_variables, extractor_variables, batch, mean_ab)
            # The previous batch is read back while this one computes (jit dispatch is asynchronous).
            if pending is not None:
                progress.update(consume(*pending))
            pending = outputs
        if pending is not None:
            progress.update(consume(*pending))
    seconds = time.perf_counter() - started

    if int(accumulators["prediction"].counts.get("images", 0)) == 0:
        raise EvaluateError(f"No image of {source.description} could be read; nothing to evaluate.")
    results = {name: metrics.finalize(accumulators[name]) for name in ROW_NAMES}
    for name, numbers in results.items():
        if classifier is not None and source.class_names is None:
            numbers.pop("top1_colorized_percent", None)  # No labels: only the agreement is defined.
            numbers.pop("top1_ground_truth_percent", None)
        if extractor is not None:
            numbers["fid"] = metrics.frechet_distance(
                *moments[name].gaussian(), *moments["truth"].gaussian()
            )

    run = dict(loaded.run)
    run.update(
        data=data_config.source,
        split=split,
        resolution=int(data_config.image_size),
        color_space=color_space,
        batch_size=batch_size,
        devices=devices,
        mean_colour_ab=[float(v) for v in mean_ab],
        mean_colour_from=mean_from,
        seconds=round(seconds, 3),
    )
    if classifier is not None:
        run["classifier"] = classifier.name
    if extractor is not None:
        run["feature_extractor"] = extractor.name
    document = {
        "schema_version": report.SCHEMA_VERSION,
        "run": run,
        "conventions": metrics.CONVENTIONS,
        "prediction": results["prediction"],
        "baselines": {name: results[name] for name in ROW_NAMES[1:]},
    }
    written: dict[str, Path] = {}
    if jax.process_index() == 0:
        namer = image_namer(source, data_config, split)
        written = write_outputs(
            output,
            document,
            np.concatenate(image_ids),
            accumulators["prediction"].per_image(),
            namer,
            grids,
        )
    return EvaluationResult(document=document, written=written)


def _check_classifier_classes(classifier: Classifier, data_classes: list[str] | None) -> None:
    if data_classes is None:
        return  # Unlabelled data: only the agreement of the two top-1 classes is reported.
    if classifier.class_names is not None and list(classifier.class_names) != list(data_classes):
        raise EvaluateError(
            f"The classifier {classifier.name} knows the classes {classifier.class_names[:5]}... but the data "
            f"has {data_classes[:5]}...; evaluate on data labelled like the classifier's training set."
        )
    if classifier.num_classes != len(data_classes):
        raise EvaluateError(
            f"The classifier {classifier.name} has {classifier.num_classes} classes but the data has "
            f"{len(data_classes)}; evaluate on data labelled like the classifier's training set."
        )


# ----------------------------------------------------------------------------------------------------------------
# Outputs.


def _json_ready(value: Any) -> Any:
    """NaN and infinities become None (JSON has neither); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_outputs(
    output: Path,
    document: dict[str, Any],
    image_ids: np.ndarray,
    per_image: dict[str, np.ndarray],
    namer: Callable[[int], str],
    grids: GridCollector,
) -> dict[str, Path]:
    """Writes metrics.json, per_image.csv, results.md, the AuC curve PNGs and the grids into `output`."""
    output.mkdir(parents=True, exist_ok=True)
    written = {"metrics": output / "metrics.json"}
    written["metrics"].write_text(json.dumps(_json_ready(document), indent=2) + "\n")

    written["per_image"] = output / "per_image.csv"
    with written["per_image"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["position", "image", *PER_IMAGE_COLUMNS])
        for position, image_id in enumerate(image_ids):
            values = [f"{per_image[key][position]:.6g}" for key in PER_IMAGE_COLUMNS]
            writer.writerow([position, namer(int(image_id)), *values])

    label = document["run"].get("name") or "prediction"
    rows = {label: document["prediction"]} | {
        report.BASELINE_LABELS[name]: numbers for name, numbers in document["baselines"].items()
    }
    written["auc_curves"] = plots.save_auc_curves(
        {name: numbers["auc_curve"] for name, numbers in rows.items()}, output / "auc_curves.png"
    )
    written["auc_rebalanced_curves"] = plots.save_auc_curves(
        {name: numbers["auc_rebalanced_curve"] for name, numbers in rows.items()},
        output / "auc_rebalanced_curves.png",
        title="Cumulative ab error, each colour bin weighted equally (rebalanced AuC)",
    )

    worst = grids.worst()
    if grids.first:
        written["grid_first"] = visualize.save_comparison_grid(
            *_stack([triple for _, triple in grids.first]), output / "grid_first.png"
        )
        written["grid_worst"] = visualize.save_comparison_grid(
            *_stack([triple for _, _, triple in worst]), output / "grid_worst.png"
        )

    evaluated = report.EvaluatedRun(
        name=label,
        path=written["metrics"],
        run=document["run"],
        prediction=document["prediction"],
        baselines=document["baselines"],
    )
    markdown = report.render_report([evaluated])
    if worst:
        markdown += f"\n## The {len(worst)} images with the largest mean ab error\n\n"
        markdown += "".join(
            f"{rank}. `{namer(image_id)}`: {error:.2f}\n"
            for rank, (error, image_id, _) in enumerate(worst, start=1)
        )
        markdown += "\n![first images](grid_first.png)\n\n![worst images](grid_worst.png)\n"
    written["markdown"] = output / "results.md"
    written["markdown"].write_text(markdown)
    return written


# ----------------------------------------------------------------------------------------------------------------
# Command line.


def _step(text: str) -> str | int:
    if text in ("best", "latest"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--step must be best, latest or a step number, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m colorjax.evaluate", description=__doc__.split("\n\n")[0]
    )
    model = parser.add_argument_group("the model (one of)")
    model.add_argument("--workdir", help="a training run's --workdir")
    model.add_argument(
        "--step", type=_step, default="best", help="best, latest or N (default best)"
    )
    model.add_argument("--weights", help="published weights file (with --model)")
    model.add_argument("--model", help="model name of --weights (eccv16, siggraph17)")
    data = parser.add_argument_group("the data")
    data.add_argument(
        "--data", help="tfds:NAME, folder:PATH or samples (default: the run's own data)"
    )
    data.add_argument(
        "--split",
        help="split to evaluate (default: the run's eval_split for its own data; otherwise validation/test, "
        "a folder's test/ or validation/ subfolder, or 'all' images)",
    )
    data.add_argument("--resolution", type=int, help="image size (default: the run's image_size)")
    data.add_argument("--batch-size", type=int, help="global batch (default 16 per device)")
    data.add_argument("--max-images", type=int, help="evaluate at most this many images")
    out = parser.add_argument_group("outputs")
    out.add_argument("--output", help="output folder (default RUN/eval/step_N)")
    out.add_argument("--num-grid", type=int, default=8, help="images per grid (0: no grids)")
    extra = parser.add_argument_group("optional metrics")
    extra.add_argument(
        "--mean-ab",
        type=float,
        nargs=2,
        metavar=("A", "B"),
        help="the mean-colour baseline's ab (default: mean of the evaluated ground truth)",
    )
    extra.add_argument(
        "--classifier", help="semantic interpretability: a run with class_logits or VGG16 weights"
    )
    extra.add_argument(
        "--inception",
        help="Keras Inception-ResNet-v2 weights (.h5, full or _notop) for FID on its pooled features",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if bool(args.workdir) == bool(args.weights):
            raise EvaluateError("Give either --workdir RUN or --weights FILE --model NAME.")
        if args.weights and not args.model:
            raise EvaluateError("--weights needs --model NAME (e.g. eccv16 or siggraph17).")
        if args.weights and not args.output:
            raise EvaluateError("--weights needs --output DIR for the results.")
        if args.weights:
            loaded = load_published_model(args.weights, args.model)
        else:
            loaded = load_run(args.workdir, args.step)
        classifier = load_classifier(args.classifier) if args.classifier else None
        extractor = load_feature_extractor(args.inception) if args.inception else None
        resolution = args.resolution or loaded.resolution
        if resolution <= 0:
            raise EvaluateError(f"--resolution must be positive, got {resolution}.")
        data_config, split = eval_data_config(
            loaded.data, args.data, args.split, resolution, loaded.color_space
        )
        output = Path(args.output or Path(args.workdir) / "eval" / f"step_{loaded.run['step']}")
        result = evaluate(
            loaded,
            data_config,
            split,
            output,
            batch_size=args.batch_size,
            max_images=args.max_images,
            num_grid=args.num_grid,
            mean_ab=args.mean_ab,
            classifier=classifier,
            extractor=extractor,
        )
    except (
        EvaluateError,
        ColorizeError,
        checkpointing.CheckpointError,
        data.DataError,
        FileNotFoundError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if jax.process_index() == 0:
        print(result.written["markdown"].read_text())
        print(f"Wrote {output}: " + ", ".join(p.name for p in result.written.values()))
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
