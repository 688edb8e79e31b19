"""Evaluates a colorization model on a dataset: `python -m colorjax.evaluate --workdir RUN [options]`.

    python -m colorjax.evaluate --workdir runs/zhang --step best
    python -m colorjax.evaluate --workdir runs/zhang --data folder:../shared/data/intel_scenes_150/test
    python -m colorjax.evaluate --weights eccv16 \\
        --data tfds:imagenet2012 --split "validation[:10000]" --output eval/eccv16
    python -m colorjax.evaluate --workdir runs/zhang --classifier vgg16_weights_tf_dim_ordering_tf_kernels.h5
    python -m colorjax.evaluate --workdir runs/demo --video clip.mp4 --output eval/video
    python -m colorjax.evaluate --weights ddcolor_paper --protocol imagenet-val5k --output eval/ddcolor_val5k

`--protocol imagenet-val5k|cocostuff|folder` evaluates as the colorization papers do (CT2, DDColor; the details in
`colorjax.evaluation.protocols`): the first 5,000 ImageNet validation photos in official order (TFDS
`imagenet2012`), COCO-Stuff's 5,000 validation photos (TFDS `coco/2017`), or any `--data folder:PATH`; the centre
square of the shorter side resized to 256 x 256; grey photos kept; paired FID with torchvision's InceptionV3
(`--inception inception_v3`, downloaded once; `--inception none` skips it), the papers' CF and delta-CF, PSNR, AuC.

`--video CLIP...` scores colour clips instead of a dataset (`colorjax.video.metrics`): each frame is coloured from
its lightness, stabilised and per-frame side by side (`--temporal off`: per-frame only), and scored against the
clip's own colours as photos are, plus Lai et al. 2018's warp error of each output and of the clip itself.

The model comes from a training run's checkpoint (`--workdir`, `--step best|latest|N`, loaded by `runs.load_run`)
or from published weights (`--weights eccv16|siggraph17|FILE [--model NAME]`). `--data` takes the `config.data.source` strings
(`tfds:NAME`, `folder:PATH`, `samples`; default: the run's own data and its `eval_split`). Every image of the split
is evaluated at `--resolution` (shorter side resized, centre crop) by `colorjax.evaluation.evaluator.Evaluator`, the same
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
- metrics.json: the schema in `colorjax.evaluation.report` (read by `python -m colorjax.report`), plus "skipped":
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
`colorjax.models.vgg16`), fed the colour images resized to 224 x 224. FID compares each row's images with the
ground truth of the same photos (paired FID): `--inception inception_v3` (or a torchvision inception_v3 .pth) uses
torchvision's InceptionV3 pool features as CT2 and DDColor do (`fid_inception_v3`, comparable with their tables);
`--inception FILE.h5` (Keras Inception-ResNet-v2 weights) gives colorjax's older `fid` on 1536-d pooled
Inception-ResNet-v2 features, for ranking runs only.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from colorjax import ColorjaxError
from colorjax.cli import common as cli

# JAX, TensorFlow and the models are imported by main() after parsing, so --help answers at once.

# Command line.


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m colorjax.evaluate", description=__doc__.split("\n\n")[0])
    cli.add_model_arguments(parser)
    data_group = parser.add_argument_group("the data")
    data_group.add_argument(
        "--protocol",
        choices=["imagenet-val5k", "cocostuff", "folder"],
        help="the papers' evaluation: their photos, crop, 256 x 256 size and FID (folder: with --data folder:PATH)",
    )
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
        help="FID network: inception_v3 (torchvision's, the papers' FID; default with --protocol) or a torchvision "
        "inception_v3 .pth, or Keras Inception-ResNet-v2 weights (.h5); none: no FID",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import jax

    from colorjax import runs
    from colorjax.evaluation import evaluate as evaluation
    from colorjax.evaluation import protocols
    from colorjax.evaluation.evaluate import EvaluateError
    from colorjax.inference import open_model

    try:
        if args.weights and not args.output:
            raise EvaluateError("--weights needs --output DIR for the results.")
        if args.video:
            return _evaluate_videos(args)
        run = open_model(workdir=args.workdir, step=args.step, weights=args.weights, model=args.model)
        protocol = protocols.get_protocol(args.protocol) if args.protocol else None
        data_source, split_name, resolution = args.data, args.split, args.resolution
        if protocol is not None:
            if args.split or args.resolution:
                raise EvaluateError(
                    f"--protocol {protocol.name} fixes the split and the size; drop --split/--resolution."
                )
            data_source, split_name = protocols.protocol_data(protocol, args.data)
            resolution = protocol.resolution
        inception = args.inception or (protocol.inception if protocol else None)
        classifier = evaluation.load_classifier(args.classifier) if args.classifier else None
        extractor = evaluation.load_feature_extractor(inception) if inception and inception != "none" else None
        resolution = resolution or int(run.config.data.image_size)
        if resolution <= 0:
            raise EvaluateError(f"--resolution must be positive, got {resolution}.")
        data_config, split = evaluation.eval_data_config(
            evaluation.default_data(run), data_source, split_name, resolution, run.config.data.color_space
        )
        if protocol is not None:
            data_config.update(protocol.data)
        if args.max_failed_fraction is not None:
            if not 0 <= args.max_failed_fraction <= 1:
                raise EvaluateError(f"--max-failed-fraction must be between 0 and 1, got {args.max_failed_fraction}.")
            data_config.max_failed_fraction = args.max_failed_fraction
        output = Path(args.output or runs.eval_dir(args.workdir, run.step))
        result = evaluation.evaluate(
            run,
            data_config,
            split,
            output,
            batch_size=args.batch_size,
            max_images=args.max_images,
            num_grid=args.num_grid,
            mean_ab=args.mean_ab,
            classifier=classifier,
            extractor=extractor,
            skip_grey=protocol.skip_grey if protocol else True,
            protocol=protocol.name if protocol else None,
        )
    except (ColorjaxError, FileNotFoundError) as error:
        cli.print_error(error)
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
    from colorjax import files, runs
    from colorjax.inference import open_colorizer
    from colorjax.video import metrics as video_metrics

    colorizer = open_colorizer(workdir=args.workdir, step=args.step, weights=args.weights, model=args.model)
    output = Path(args.output or runs.eval_dir(args.workdir, colorizer.step) / "video")
    files.check_writable(output)
    results, errors = video_metrics.evaluate_clips(
        colorizer, [Path(p) for p in args.video], output, args.temporal, max_frames=args.max_frames
    )
    for line in errors:
        cli.print_error(line)
    print((output / "video_results.md").read_text())
    print(f"Wrote {output}: video_metrics.json, video_results.md")
    return 1 if errors else 0


def run(argv: list[str] | None = None) -> None:
    cli.run_cli(main, argv)
