"""One evaluation of a colorization model on a split: the jitted step, the accumulation, the results and grids.

`Evaluator` is used by the trainer at its evaluation steps (`WORKDIR/images/`, TensorBoard's `val/...` scalars: the
mean loss terms plus `TRAINING_SCALARS` of the same results) and by `python -m colorjax.evaluate` for a whole split
(`write_outputs`: metrics.json, per_image.csv, results.md, AuC curves, grids), so the two can never disagree.

Unreadable files and photos with no colour (grey) are left out of every number and counted (`batches`).
Batches are sharded over every device of a `Mesh`; the padded last batch is masked, and the statistics are reduced
inside the jitted step (`colorjax.evaluation.metrics`), so the device count and batch size change no number. Rows, all on the
same images: the prediction and, with `baselines`, ground truth, gray (a = b = 0) and mean colour (a given mean ab
at every pixel; `compute_mean_ab` is the data-only pass that measures it on the evaluated ground truth).
"""

from __future__ import annotations

import csv
import dataclasses
import heapq
import io
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from colorjax import ColorjaxError, color, data, files, parallel
from colorjax.evaluation import metrics, plots, report, visualize

ROW_NAMES = ("prediction", "ground_truth", "gray", "mean_colour")
# The numbers of the evaluation suite that the trainer logs at every in-training evaluation (as `val/NAME`).
TRAINING_SCALARS = (
    "psnr_rgb_db",
    "ab_l2_error",
    "auc_percent",
    "auc_rebalanced_percent",
    "colourfulness",
    "delta_colourfulness",
    "acc_u_percent",
    "acc_v_percent",
    "saturation_difference_percent",
)
# Per-image metrics written to per_image.csv (the float entries of `metrics.image_statistics` worth reading).
PER_IMAGE_COLUMNS = (
    "ab_l2_error",
    "auc_percent",
    "psnr_rgb_db",
    "psnr_ab_db",
    "colourfulness",
    "colourfulness_ground_truth",
    "cf",
    "cf_ground_truth",
    "acc_u_percent",
    "acc_v_percent",
    "saturation",
    "saturation_ground_truth",
)


class EvaluationError(ColorjaxError, ValueError):
    """Nothing could be evaluated (the message says why); printed as one line."""


@dataclasses.dataclass
class Classifier:
    """A fixed image classifier for semantic interpretability: `logits(variables, rgb)` with rgb (N, H, W, 3) in
    [0, 1] -> (N, classes). `class_names` (when known) must match the evaluation data's classes."""

    name: str
    logits: Callable[[Any, jax.Array], jax.Array]
    variables: Any
    num_classes: int
    class_names: list[str] | None


@dataclasses.dataclass
class FeatureExtractor:
    """Image features for FID: `features(variables, rgb)` with rgb (N, H, W, 3) in [0, 1] -> (N, D); `metric` is
    the key the FID of each row gets (`fid_inception_v3` for the papers' network, `fid` for any other)."""

    name: str
    features: Callable[[Any, jax.Array], jax.Array]
    variables: Any
    metric: str = "fid"


# ----------------------------------------------------------------------------------------------------------------
# The jitted steps.


def make_eval_step(
    model: Any,
    color_space: str,
    *,
    loss_fn: Callable | None = None,
    baselines: bool = True,
    classifier: Classifier | None = None,
    extractor: FeatureExtractor | None = None,
) -> Callable:
    """step(variables, classifier_variables, extractor_variables, batch, mean_ab) -> (reduced, per_image).

    reduced[row]: `metrics.reduce_statistics` of each row (the prediction and, with `baselines`, the baselines)
    against the ground truth; reduced["loss"]: masked sums of `loss_fn`'s per-example terms (with a loss_fn);
    per_image: image ids, the uint8 gray / prediction / truth images (for grids) and, with an extractor, each
    row's features (for FID). jit it with the batch sharded on "data".
    """

    def step(variables, classifier_variables, extractor_variables, batch, mean_ab):
        L, mask = batch["L"], batch["mask"]
        outputs = model.apply(variables, L, train=False)
        truth = metrics.views_from_chroma(L, batch["chroma"], color_space)
        rows = {"prediction": metrics.views_from_chroma(L, outputs["chroma"], color_space)}
        if baselines:
            rows.update(metrics.baseline_predictions(L, truth, mean_ab))
        stats = {name: metrics.image_statistics(views, truth) for name, views in rows.items()}
        if classifier is not None:
            labels = batch.get("label", jnp.full(L.shape[:1], -1, jnp.int32))
            truth_logits = classifier.logits(classifier_variables, truth.rgb)
            for name, views in rows.items():
                row_logits = (
                    truth_logits if name == "ground_truth" else classifier.logits(classifier_variables, views.rgb)
                )
                stats[name].update(metrics.classification_statistics(row_logits, truth_logits, labels))
        reduced = {name: metrics.reduce_statistics(s, mask) for name, s in stats.items()}
        if loss_fn is not None:
            per_example = loss_fn(outputs, batch)
            reduced["loss"] = {k: jnp.sum(jnp.where(mask, v, 0.0)) for k, v in per_example.items()}
        per_image = {
            "image_id": batch["image_id"],
            "gray": _levels(color.lightness_to_gray(L)),  # `color.gray_picture`'s levels, inside jit
            "prediction": _levels(rows["prediction"].rgb),
            "truth": _levels(truth.rgb),
        }
        if extractor is not None:
            per_image["features"] = {
                name: extractor.features(extractor_variables, views.rgb) for name, views in rows.items()
            }
        return reduced, per_image

    return step


def _levels(rgb: jax.Array) -> jax.Array:
    return color.rgb_to_uint8(rgb)


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


# ----------------------------------------------------------------------------------------------------------------
# Input: the split as padded, masked host batches with global image ids.


def batches(
    source,
    data_config,
    local_batch: int,
    max_images: int | None,
    skipped: data.SkippedFiles | None = None,
    *,
    skip_grey: bool = True,
) -> tuple[int, Iterator[dict[str, np.ndarray]]]:
    """(images to evaluate over all processes, host batches carrying `image_id` and `mask`) of a source, at most
    `max_images` in all; every process yields the same number of batches.

    Unreadable files and, with `skip_grey`, photos without colour (grey: there is no colour to score a colorization
    against, so they would only add the gray baseline's numbers to the model's) are left out and recorded in
    `skipped`, as the batches are read. The papers' protocols keep the grey photos (`skip_grey=False`): their
    5,000 images include them."""
    per_process = None if max_images is None else -(-max_images // jax.process_count())
    num_batches = parallel.max_over_processes(data.num_eval_batches(source.num_examples, local_batch, per_process))
    host_batches = data.eval_batches(
        source,
        data_config,
        local_batch_size=local_batch,
        num_batches=num_batches,
        max_examples=per_process,
        with_image_ids=True,
        skip_grey=skip_grey,
        skipped=skipped,
    )
    total = source.num_examples if per_process is None else min(source.num_examples, per_process)
    return total * jax.process_count(), host_batches


def fetch(tree: Any) -> Any:
    """Device arrays -> numpy on every process (gathered across processes on multi-host runs)."""
    return parallel.fetch_to_host(tree)


def _progress(total: int, description: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit="img",
        file=sys.stderr,
        disable=not enabled or jax.process_index() > 0,
        dynamic_ncols=True,
    )


def compute_mean_ab(
    color_space: str,
    mesh,
    host_batches: Iterable[dict[str, np.ndarray]],
    total: int,
    *,
    progress: bool = True,
) -> np.ndarray:
    """The data-only pass: the mean ab of every evaluated ground-truth pixel (the mean-colour baseline's colour)."""
    step = jax.jit(make_mean_ab_step(color_space), in_shardings=parallel.data_sharding(mesh))
    accumulator = metrics.MetricsAccumulator()
    with _progress(total, "mean colour", progress) as bar:
        for host_batch in host_batches:
            accumulator.add(fetch(step(parallel.host_to_global(host_batch, mesh))))
            bar.update(int(np.sum(host_batch["mask"])))
    if int(accumulator.counts.get("images", 0)) == 0:
        raise EvaluationError("No image to evaluate: every file was unreadable or grey (no colour to score).")
    return metrics.ground_truth_mean_ab(accumulator)


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

    def first_grid(self) -> np.ndarray | None:
        """uint8 gray | prediction | truth grid of the first images (None before any was seen)."""
        if not self.first:
            return None
        return visualize.image_grid(*_stack([triple for _, triple in self.first]))


def _stack(triples: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    return tuple(np.stack(column) for column in zip(*triples, strict=True))


# ----------------------------------------------------------------------------------------------------------------
# The evaluation.


@dataclasses.dataclass
class Results:
    """What one evaluation computed."""

    rows: dict[str, dict[str, Any]]  # `metrics.finalize` of each row (FID added with an extractor)
    losses: dict[str, float]  # mean per-example loss terms (with a loss_fn)
    image_ids: np.ndarray  # the evaluated images' global ids, in order
    per_image: dict[str, np.ndarray]  # the prediction's per-image statistics, aligned with image_ids
    grids: GridCollector
    seconds: float

    @property
    def prediction(self) -> dict[str, Any]:
        return self.rows["prediction"]

    def scalars(self, prefix: str = "val/") -> dict[str, float]:
        """The in-training summary: the mean loss terms and `TRAINING_SCALARS` of the prediction."""
        numbers = {f"{prefix}{k}": v for k, v in self.losses.items()}
        numbers.update(
            {f"{prefix}{k}": self.prediction[k] for k in TRAINING_SCALARS if self.prediction.get(k) is not None}
        )
        return numbers


class Evaluator:
    """Evaluates a model on host batches (from `batches`): jit once, then `run(variables, ...)` as often as wanted
    (the trainer calls it at every evaluation step with the current variables)."""

    def __init__(
        self,
        model: Any,
        color_space: str,
        mesh,
        *,
        loss_fn: Callable | None = None,
        baselines: bool = True,
        classifier: Classifier | None = None,
        extractor: FeatureExtractor | None = None,
        num_grid: int = 8,
    ):
        self.mesh, self.num_grid = mesh, num_grid
        self.classifier, self.extractor = classifier, extractor
        self.row_names = ROW_NAMES if baselines else ROW_NAMES[:1]
        replicated = parallel.replicated(mesh)
        self._step = jax.jit(
            make_eval_step(
                model,
                color_space,
                loss_fn=loss_fn,
                baselines=baselines,
                classifier=classifier,
                extractor=extractor,
            ),
            in_shardings=(
                replicated,
                replicated,
                replicated,
                parallel.data_sharding(mesh),
                replicated,
            ),
        )
        self._extra_variables = jax.device_put(
            (classifier.variables if classifier else {}, extractor.variables if extractor else {}),
            replicated,
        )

    def run(
        self,
        variables: Any,
        host_batches: Iterable[dict[str, np.ndarray]],
        total: int,
        *,
        mean_ab: Sequence[float] | None = None,
        progress: bool = False,
    ) -> Results:
        """Every batch through the step; the statistics accumulated on the host, the grids collected."""
        if len(self.row_names) > 1 and mean_ab is None:
            raise ValueError("The mean-colour baseline needs mean_ab (see compute_mean_ab).")
        mean_ab = np.zeros(2, np.float32) if mean_ab is None else np.asarray(mean_ab, np.float32)
        classifier_variables, extractor_variables = self._extra_variables
        accumulators = {name: metrics.MetricsAccumulator() for name in self.row_names}
        moments = {name: metrics.FeatureMoments() for name in (*self.row_names, "truth")}
        grids = GridCollector(self.num_grid)
        loss_sums: dict[str, float] = {}
        image_ids: list[np.ndarray] = []

        def consume(reduced, per_image) -> int:
            """Host side of one batch: accumulate, offer images to the grids; returns the real images."""
            reduced = fetch(reduced)
            for name in self.row_names:
                accumulators[name].add(reduced[name])
            for k, v in reduced.get("loss", {}).items():
                loss_sums[k] = loss_sums.get(k, 0.0) + float(v)
            real = np.asarray(reduced["prediction"]["mask"]).astype(bool)
            ids = fetch(per_image["image_id"])[real]
            image_ids.append(ids)
            if self.extractor is not None:
                features = fetch(per_image["features"])
                moments["truth"].add(features["ground_truth"][real])
                for name in self.row_names:
                    moments[name].add(features[name][real])
            grids.add(
                ids,
                np.asarray(reduced["prediction"]["ab_l2_error"])[real],
                lambda: tuple(fetch(per_image[k])[real] for k in ("gray", "prediction", "truth")),
            )
            return int(real.sum())

        started = time.perf_counter()
        with _progress(total, "evaluating", progress) as bar:
            pending = None
            for host_batch in host_batches:
                batch = parallel.host_to_global(host_batch, self.mesh)
                outputs = self._step(variables, classifier_variables, extractor_variables, batch, mean_ab)
                # The previous batch is read back while this one computes (jit dispatch is asynchronous).
                if pending is not None:
                    bar.update(consume(*pending))
                pending = outputs
            if pending is not None:
                bar.update(consume(*pending))
        seconds = time.perf_counter() - started

        images = int(accumulators["prediction"].counts.get("images", 0))
        if images == 0:
            raise EvaluationError("No image to evaluate: every file was unreadable or grey (no colour to score).")
        rows = {name: metrics.finalize(accumulators[name]) for name in self.row_names}
        if self.extractor is not None:
            for name, numbers in rows.items():
                numbers[self.extractor.metric] = metrics.frechet_distance(
                    *moments[name].gaussian(), *moments["truth"].gaussian()
                )
        return Results(
            rows=rows,
            losses={k: v / images for k, v in loss_sums.items()},
            image_ids=np.concatenate(image_ids),
            per_image=accumulators["prediction"].per_image(),
            grids=grids,
            seconds=seconds,
        )


# ----------------------------------------------------------------------------------------------------------------
# Outputs of a standalone evaluation.


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
    results: Results,
    namer: Callable[[int], str],
) -> dict[str, Path]:
    """Writes metrics.json (`document`), per_image.csv, results.md, the AuC curve PNGs and the grids into
    `output`; `namer` names an image by its id."""
    output.mkdir(parents=True, exist_ok=True)
    written = {"metrics": files.write_json(output / "metrics.json", _json_ready(document))}

    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["position", "image", *PER_IMAGE_COLUMNS])
    for position, image_id in enumerate(results.image_ids):
        values = [f"{results.per_image[key][position]:.6g}" for key in PER_IMAGE_COLUMNS]
        writer.writerow([position, namer(int(image_id)), *values])
    written["per_image"] = files.write_text(output / "per_image.csv", table.getvalue())

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

    grids = results.grids
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
    if "skipped" in document:
        skipped = document["skipped"]
        markdown += (
            f"\nLeft out: {skipped['unreadable']} unreadable and {skipped['grey']} grey (no colour) file(s), "
            "listed in metrics.json.\n"
        )
    if worst:
        markdown += f"\n## The {len(worst)} images with the largest mean ab error\n\n"
        markdown += "".join(
            f"{rank}. `{namer(image_id)}`: {error:.2f}\n" for rank, (error, image_id, _) in enumerate(worst, start=1)
        )
        markdown += "\n![first images](grid_first.png)\n\n![worst images](grid_worst.png)\n"
    written["markdown"] = files.write_text(output / "results.md", markdown)
    return written
