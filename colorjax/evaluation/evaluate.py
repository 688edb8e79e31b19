"""Evaluates a colorization model on a dataset: `evaluate(run, data_config, split, output)` and the loaders of
what it compares (classifiers, feature extractors).

What it computes and writes is described in `colorjax/cli/evaluate.py` (`python -m colorjax.evaluate`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from colorjax import ColorjaxError, color, config_lib, data, files, parallel, runs
from colorjax.evaluation import evaluator, metrics, report
from colorjax.evaluation.evaluator import Classifier, FeatureExtractor

DEFAULT_IMAGES_PER_DEVICE = 16
VGG16_INPUT_SIZE = 224


class EvaluateError(ColorjaxError, ValueError):
    """A problem the user can fix (bad path, missing weights, wrong option); printed as one line."""


# ----------------------------------------------------------------------------------------------------------------
# What is evaluated: the model, an optional classifier and feature extractor.


def run_document(run: runs.Run) -> dict[str, Any]:
    """metrics.json's "run" fields of a model: name, workdir or weights, model, step."""
    if run.workdir is None:
        return {"name": run.name, "weights": run.published["path"], "model": run.model_name}
    return {"name": run.name, "workdir": str(run.workdir), "model": run.model_name, "step": run.step}


def default_data(run: runs.Run) -> dict[str, Any] | None:
    """The data a run evaluates on without --data: its own (None for published weights, which need --data)."""
    return None if run.workdir is None else run.config.data.to_dict()


def classifier_from_run(workdir: str | Path, step: str | int = "best") -> Classifier:
    """A colorjax run whose model returns `class_logits` (it sees the lightness of the image it classifies)."""
    run = runs.load_run(workdir, step)
    model = run.model

    def logits(variables, rgb):
        L = color.rgb_to_lab(rgb)[..., :1]
        return model.apply(variables, L, train=False)["class_logits"]

    size = int(run.config.data.image_size)
    probe = jnp.zeros((1, size, size, 3), jnp.float32)
    try:
        shape = jax.eval_shape(logits, run.variables, probe).shape
    except KeyError:
        raise EvaluateError(
            f"The model of {workdir} ({run.model_name}) returns no class_logits; --classifier "
            "needs a run with a classification head or a VGG16 weights file."
        ) from None
    return Classifier(
        name=f"{run.name} step {run.step}",
        logits=logits,
        variables=run.variables,
        num_classes=int(shape[-1]),
        class_names=run.class_names,
    )


def vgg16_classifier(weights: str | Path) -> Classifier:
    """VGG16 with its ImageNet top from a Keras or torchvision file, fed 224 x 224 colour images."""
    from colorjax.models import vgg16

    params = vgg16.load_vgg16_params(weights, include_top=True, config_field="--classifier")
    preprocessing = vgg16.vgg16_preprocessing(weights)
    model = vgg16.VGG16(include_top=True)

    def logits(variables, rgb):
        rgb = jax.image.resize(rgb, (rgb.shape[0], VGG16_INPUT_SIZE, VGG16_INPUT_SIZE, 3), "bilinear", antialias=True)
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
    raise EvaluateError(f"--classifier {spec} does not exist; give a colorjax run directory or a VGG16 weights file.")


# `--inception` values read as torchvision InceptionV3 weights (the papers' FID); anything else is Keras IRv2.
TORCH_SUFFIXES = (".pth", ".pt", ".bin")


def load_feature_extractor(spec: str | Path) -> FeatureExtractor:
    """`--inception NAME|FILE`: the FID network. `inception_v3` (torchvision's ImageNet file, downloaded once) or
    any torchvision `inception_v3` .pth gives the papers' paired FID (`fid_inception_v3`, `inception_features`);
    a Keras Inception-ResNet-v2 .h5 gives colorjax's older `fid` (`inception_resnet_v2_features`)."""
    from colorjax.weights import registry

    if str(spec) in registry.KNOWN_WEIGHTS or str(spec).lower().endswith(TORCH_SUFFIXES):
        return inception_features(spec)
    return inception_resnet_v2_features(spec)


def inception_features(spec: str | Path) -> FeatureExtractor:
    """torchvision's InceptionV3 pool features through CT2's and DDColor's pipeline (`colorjax.models.inception_v3`):
    the FID the colorization papers report, comparable with theirs given the same images and weights file."""
    from colorjax.models import inception_v3
    from colorjax.weights import pth, registry

    path = registry.resolve_weights(spec)
    try:
        variables = inception_v3.load_inception_v3(path)
    except (inception_v3.InceptionImportError, pth.PthError) as error:
        raise EvaluateError(f"--inception {spec}: {error}".replace("\n", " ")) from None
    return FeatureExtractor(
        name=f"InceptionV3 (torchvision) {Path(path).name}",
        features=inception_v3.fid_features,
        variables=variables,
        metric="fid_inception_v3",
    )


def inception_resnet_v2_features(path: str | Path) -> FeatureExtractor:
    """The 1536-d pooled features of Inception-ResNet-v2 from its Keras weights
    (either the full or the `_notop` file), fed each colour image resized to 299 x 299 in [-1, 1] as Keras does.

    The standard FID uses InceptionV3's pool features (`inception_features`); this one is Deep Koalarization's
    embedder, so its FID ranks runs against each other but is not comparable with FIDs published elsewhere.
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

    return FeatureExtractor(name=f"Inception-ResNet-v2 {Path(path).name}", features=features, variables=variables)


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
    return data.sources.ALL_SPLIT


def eval_data_config(
    run_data: dict[str, Any] | None,
    source: str | None,
    split: str | None,
    resolution: int,
    color_space: str,
) -> tuple[ml_collections.ConfigDict, str]:
    """The data config and split to evaluate: the run's data settings, with the source, size and colour space
    overridden. Split "all" of a folder is every image in it (no held-out share by hash: `data.sources`)."""
    if source is None and run_data is None:
        raise EvaluateError("--data is required with --weights (e.g. --data folder:PATH).")
    fields = config_lib.base_config().data.to_dict()
    fields.update(run_data or {})
    same_source = run_data is not None and source in (None, run_data["source"])
    if source is not None:
        fields["source"] = source
    if split is None:
        split = fields["eval_split"] if same_source else default_split(source)
    if run_data is None or run_data["image_size"] != resolution:
        fields["eval_resize_size"] = None  # A run's resize-then-crop ratio belongs to its own size.
    fields["image_size"] = resolution
    fields["color_space"] = color_space
    return ml_collections.ConfigDict(fields), split


# ----------------------------------------------------------------------------------------------------------------
# The evaluation.


@dataclasses.dataclass
class EvaluationResult:
    """What `evaluate` computed: the metrics.json document and the paths written."""

    document: dict[str, Any]
    written: dict[str, Path]


def evaluate(
    run: runs.Run,
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
    skip_grey: bool = True,
    protocol: str | None = None,
) -> EvaluationResult:
    """Evaluates `run`'s model on every image of `split` and writes the outputs (module docstring) into `output`;
    an evaluation that fails before writing them leaves no empty `output` folder it made.

    `skip_grey=False` keeps photos without colour (the papers' protocols do); `protocol` names the protocol
    (`colorjax.evaluation.protocols`) in metrics.json."""
    output = Path(output)
    created = files.check_writable(output) if jax.process_index() == 0 else None
    with files.removed_if_unused(output, created):
        devices = jax.device_count()
        if batch_size is None:
            batch_size = DEFAULT_IMAGES_PER_DEVICE * devices
        if batch_size <= 0 or batch_size % devices:
            raise EvaluateError(f"--batch-size {batch_size} must be a positive multiple of the {devices} devices.")
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
        color_space = run.config.data.color_space

        skipped = data.SkippedFiles()  # Shared by both passes: each skipped file is named once.
        mean_from = "the evaluated ground truth (a first, data-only pass)"
        if mean_ab is None:
            total, host_batches = evaluator.batches(
                source, data_config, local_batch, max_images, skipped, skip_grey=skip_grey
            )
            mean_ab = evaluator.compute_mean_ab(color_space, mesh, host_batches, total)
        else:
            mean_from = "--mean-ab"
        mean_ab = np.asarray(mean_ab, np.float32)

        evaluation = evaluator.Evaluator(
            run.model,
            color_space,
            mesh,
            classifier=classifier,
            extractor=extractor,
            num_grid=num_grid,
        )
        total, host_batches = evaluator.batches(
            source, data_config, local_batch, max_images, skipped, skip_grey=skip_grey
        )
        variables = jax.device_put(run.variables, parallel.replicated(mesh))
        results = evaluation.run(variables, host_batches, total, mean_ab=mean_ab, progress=True)
        for numbers in results.rows.values():
            if classifier is not None and source.class_names is None:
                numbers.pop("top1_colorized_percent", None)  # No labels: only the agreement is defined.
                numbers.pop("top1_ground_truth_percent", None)

        document_run = run_document(run)
        document_run.update(
            data=data_config.source,
            split=split,
            resolution=int(data_config.image_size),
            color_space=color_space,
            batch_size=batch_size,
            devices=devices,
            mean_colour_ab=[float(v) for v in mean_ab],
            mean_colour_from=mean_from,
            seconds=round(results.seconds, 3),
        )
        if protocol is not None:
            document_run["protocol"] = protocol
            document_run["eval_crop"] = data_config.eval_crop
        if classifier is not None:
            document_run["classifier"] = classifier.name
        if extractor is not None:
            document_run["feature_extractor"] = extractor.name
        document = {
            "schema_version": report.SCHEMA_VERSION,
            "run": document_run,
            "conventions": metrics.CONVENTIONS,
            "prediction": results.prediction,
            "baselines": {name: results.rows[name] for name in evaluator.ROW_NAMES[1:]},
            "skipped": _skipped_summary(skipped),
        }
        written: dict[str, Path] = {}
        if jax.process_index() == 0:
            written = evaluator.write_outputs(output, document, results, source.name)
        return EvaluationResult(document=document, written=written)


def _skipped_summary(skipped: data.SkippedFiles) -> dict[str, Any]:
    """metrics.json's "skipped": counts over every process, names of this process's share."""
    unreadable, grey = (
        int(n) for n in parallel.gather_from_processes([len(skipped.unreadable), len(skipped.grey)]).sum(0)
    )
    return {
        "unreadable": unreadable,
        "grey": grey,
        "unreadable_files": dict(sorted(skipped.unreadable.items())),
        "grey_files": sorted(skipped.grey),
    }


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
