"""Evaluates a colorization model on a dataset: `python -m colorjax.evaluate --workdir RUN [options]`.

    python -m colorjax.evaluate --workdir runs/zhang --step best
    python -m colorjax.evaluate --workdir runs/zhang --data folder:../shared/data/intel_scenes_150/test
    python -m colorjax.evaluate --weights eccv16 \\
        --data tfds:imagenet2012 --split "validation[:10000]" --output eval/eccv16
    python -m colorjax.evaluate --workdir runs/zhang --classifier vgg16_weights_tf_dim_ordering_tf_kernels.h5
    python -m colorjax.evaluate --workdir runs/demo --video clip.mp4 --output eval/video

`--video CLIP...` scores colour clips instead of a dataset (`colorjax.video_metrics`): each frame is coloured from
its lightness, stabilised and per-frame side by side (`--temporal off`: per-frame only), and scored against the
clip's own colours as photos are, plus Lai et al. 2018's warp error of each output and of the clip itself.

The model comes from a training run's checkpoint (`--workdir`, `--step best|latest|N`, loaded by `runs.load_run`)
or from published weights (`--weights eccv16|siggraph17|FILE [--model NAME]`). `--data` takes the `config.data.source` strings
(`tfds:NAME`, `folder:PATH`, `samples`; default: the run's own data and its `eval_split`). Every image of the split
is evaluated at `--resolution` (shorter side resized, centre crop) by `colorjax.evaluator.Evaluator`, the same
evaluation the trainer runs at its evaluation steps, sharded over every device.

Rows, all on the same images: the prediction, and the baselines ground truth, gray (a = b = 0) and mean colour
(the mean ab of the evaluated ground truth at every pixel). The mean-colour row's metrics are not linear in that
mean (errors are norms, PSNR a logarithm, AuC a count under thresholds), so no statistic gathered in the same pass
can give them: a first, data-only pass (decoding, no model) computes the mean; `--mean-ab A B` supplies one
instead (e.g. the training set's) and skips it.

Skipped files: an unreadable file is skipped with one line naming it (the first 20; the rest are counted), and
the command stops when more than `config.data.max_failed_fraction` (default 1%; `--max-failed-fraction F`, the same
field training reads) of the split's files cannot be read, counted over the whole split. Photos without colour
(grey: every pixel's |a|, |b| <= config.data.min_chroma, the rule training skips them by) have no colour to score
a colorization against: they are left out of every row and counted apart. The last line counts both, and
metrics.json's "skipped" lists them.

Outputs in `--output` (default RUN/eval/step_N):
- metrics.json: the schema in `colorjax.report` (read by `python -m colorjax.report`), plus "skipped":
  {"unreadable": N, "grey": N, "unreadable_files": {name: why}, "grey_files": [names]} (counts over every
  process; names from process 0's share on multi-host runs);
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
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from colorjax import (
    checkpointing,
    cli,
    color,
    config_lib,
    data,
    evaluator,
    metrics,
    parallel,
    report,
    runs,
)
from colorjax.evaluator import Classifier, FeatureExtractor
from colorjax.inference import InferenceError

DEFAULT_RESOLUTION = 256  # Zhang et al.'s evaluation size, for published weights.
DEFAULT_IMAGES_PER_DEVICE = 16
VGG16_INPUT_SIZE = 224


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


def load_model_from_run(workdir: str | Path, step: str | int = "latest") -> LoadedModel:
    """A training run's model at `step` ("latest", "best" or a number), rebuilt from its checkpoint alone."""
    run = runs.load_run(workdir, step)
    data_config = run.config.data
    return LoadedModel(
        model=run.model,
        variables=run.variables,
        color_space=data_config.color_space,
        resolution=int(data_config.image_size),
        data=data_config.to_dict(),
        run={"name": run.name, "workdir": str(workdir), "model": run.model_name, "step": run.step},
    )


def load_published_model(weights: str | Path, model_name: str | None = None) -> LoadedModel:
    """A model with the authors' published weights: a known name (downloaded once, `colorjax.weights`) or a
    file, through the published-weights importer; `model_name` defaults to the known name's model."""
    from colorjax import weights as known_weights
    from colorjax.published_weights import load_published

    try:
        weights, model_name = known_weights.published_model(weights, model_name)
    except known_weights.WeightsError as e:
        raise EvaluateError(str(e)) from None

    try:
        module, variables = load_published(model_name, weights)
    except (FileNotFoundError, ImportError, ValueError) as e:
        raise EvaluateError(str(e)) from e
    return LoadedModel(
        model=module,
        variables=variables,
        color_space="lab",
        resolution=DEFAULT_RESOLUTION,
        data=None,
        run={"name": f"{model_name} (published)", "weights": str(weights), "model": model_name},
    )


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
    if split == "all" and fields["source"].startswith("folder:"):
        split, fields["holdout_fraction"] = "test", 1.0  # every file falls in the held-out share
    return ml_collections.ConfigDict(fields), split


# ----------------------------------------------------------------------------------------------------------------
# The evaluation.


@dataclasses.dataclass
class EvaluationResult:
    """What `evaluate` computed: the metrics.json document and the paths written."""

    document: dict[str, Any]
    written: dict[str, Path]


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
        cli.check_writable(output)
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
    color_space = loaded.color_space

    skipped = data.SkippedFiles()  # Shared by both passes: each skipped file is named once.
    mean_from = "the evaluated ground truth (a first, data-only pass)"
    if mean_ab is None:
        total, host_batches = evaluator.batches(source, data_config, local_batch, max_images, skipped)
        mean_ab = evaluator.compute_mean_ab(color_space, mesh, host_batches, total)
    else:
        mean_from = "--mean-ab"
    mean_ab = np.asarray(mean_ab, np.float32)

    evaluation = evaluator.Evaluator(
        loaded.model,
        color_space,
        mesh,
        classifier=classifier,
        extractor=extractor,
        num_grid=num_grid,
    )
    total, host_batches = evaluator.batches(source, data_config, local_batch, max_images, skipped)
    variables = jax.device_put(loaded.variables, parallel.replicated(mesh))
    results = evaluation.run(variables, host_batches, total, mean_ab=mean_ab, progress=True)
    for numbers in results.rows.values():
        if classifier is not None and source.class_names is None:
            numbers.pop("top1_colorized_percent", None)  # No labels: only the agreement is defined.
            numbers.pop("top1_ground_truth_percent", None)

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
        seconds=round(results.seconds, 3),
    )
    if classifier is not None:
        run["classifier"] = classifier.name
    if extractor is not None:
        run["feature_extractor"] = extractor.name
    document = {
        "schema_version": report.SCHEMA_VERSION,
        "run": run,
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
# Command line.


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m colorjax.evaluate", description=__doc__.split("\n\n")[0])
    model = parser.add_argument_group("the model (one of)")
    model.add_argument("--workdir", help="a training run's --workdir")
    model.add_argument("--step", type=cli.step_arg, default="best", help="best, latest or N (default best)")
    model.add_argument(
        "--weights",
        metavar="NAME|PATH",
        help="published weights: eccv16 or siggraph17 (downloaded once) or a .pth/.npz file",
    )
    model.add_argument("--model", help="model of a --weights file (default: the known name's)")
    data_group = parser.add_argument_group("the data")
    data_group.add_argument("--data", help="tfds:NAME, folder:PATH or samples (default: the run's own data)")
    data_group.add_argument(
        "--split",
        help="split to evaluate (default: the run's eval_split for its own data; otherwise validation/test, "
        "a folder's test/ or validation/ subfolder, or 'all' images)",
    )
    data_group.add_argument("--resolution", type=int, help="image size (default: the run's image_size)")
    data_group.add_argument("--batch-size", type=int, help="global batch (default 16 per device)")
    data_group.add_argument("--max-images", type=int, help="evaluate at most this many images")
    data_group.add_argument(
        "--max-failed-fraction",
        type=float,
        metavar="F",
        help="stop when more than this fraction of the files cannot be read (config.data.max_failed_fraction; "
        "default: the run's, else 0.01)",
    )
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
    extra.add_argument("--classifier", help="semantic interpretability: a run with class_logits or VGG16 weights")
    clips = parser.add_argument_group("video (instead of --data)")
    clips.add_argument(
        "--video",
        nargs="+",
        metavar="CLIP",
        help="colour clips: per-frame metrics against their own colours and Lai et al.'s warp error",
    )
    clips.add_argument(
        "--temporal",
        choices=["on", "off"],
        default="on",
        help="on: score stabilised and per-frame side by side (default); off: per-frame only",
    )
    clips.add_argument("--max-frames", type=int, help="score at most this many frames per clip")
    extra.add_argument(
        "--inception",
        help="Keras Inception-ResNet-v2 weights (.h5, full or _notop) for FID on its pooled features",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if bool(args.workdir) == bool(args.weights):
            raise EvaluateError("Give either --workdir RUN or --weights NAME|PATH.")
        if args.weights and not args.output:
            raise EvaluateError("--weights needs --output DIR for the results.")
        if args.video:
            return _evaluate_videos(args)
        if args.weights:
            loaded = load_published_model(args.weights, args.model)
        else:
            loaded = load_model_from_run(args.workdir, args.step)
        classifier = load_classifier(args.classifier) if args.classifier else None
        extractor = load_feature_extractor(args.inception) if args.inception else None
        resolution = args.resolution or loaded.resolution
        if resolution <= 0:
            raise EvaluateError(f"--resolution must be positive, got {resolution}.")
        data_config, split = eval_data_config(loaded.data, args.data, args.split, resolution, loaded.color_space)
        if args.max_failed_fraction is not None:
            if not 0 <= args.max_failed_fraction <= 1:
                raise EvaluateError(f"--max-failed-fraction must be between 0 and 1, got {args.max_failed_fraction}.")
            data_config.max_failed_fraction = args.max_failed_fraction
        output = Path(args.output or runs.eval_dir(args.workdir, loaded.run["step"]))
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
        evaluator.EvaluationError,
        cli.OutputError,
        checkpointing.CheckpointError,
        data.DataError,
        FileNotFoundError,
        InferenceError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if jax.process_index() == 0:
        print(result.written["markdown"].read_text())
        print(f"Wrote {output}: " + ", ".join(p.name for p in result.written.values()))
        skipped = result.document["skipped"]
        print(
            f"Evaluated {result.document['prediction']['images']} image(s) of {data_config.source} split {split}; "
            f"skipped {skipped['unreadable']} unreadable and {skipped['grey']} grey (no colour to score)."
        )
    return 0


def _evaluate_videos(args: argparse.Namespace) -> int:
    """`--video`: colour each clip from its lightness and score it against its own colours."""
    from colorjax import video_metrics
    from colorjax.inference import Colorizer

    if args.weights:
        colorizer = Colorizer.from_published(args.weights, args.model)
    else:
        colorizer = Colorizer.from_run(args.workdir, args.step)
    output = Path(args.output or runs.eval_dir(args.workdir, colorizer.step) / "video")
    cli.check_writable(output)
    results, errors = video_metrics.evaluate_clips(
        colorizer, [Path(p) for p in args.video], output, args.temporal, max_frames=args.max_frames
    )
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    print((output / "video_results.md").read_text())
    print(f"Wrote {output}: video_metrics.json, video_results.md")
    return 1 if errors else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
