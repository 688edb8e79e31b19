"""Colours photos with a trained model: `python -m colorjax.colorize --workdir RUN INPUT... --output DIR`.

INPUT is any number of image files and folders (searched recursively), or `samples` for the photos that ship with
scikit-image and scikit-learn. Any size and aspect ratio: the model predicts chroma at its working resolution, the
chroma is upsampled to the photo's own size and recombined with the photo's full-resolution lightness, so the
output has exactly the input's size and all of its detail. Colour inputs are turned gray first (their CIE L).

    python -m colorjax.colorize --workdir runs/demo --step best samples --output runs/demo/colorized
    python -m colorjax.colorize --workdir runs/zhang old_photos/ --output coloured/ --resolution 256

Outputs are PNG files named after the inputs (folder structure kept), plus, with `--side-by-side`, a gray | colour
panel next to each.

Models that run natively at any size (e.g. iizuka) see each photo at its own size (resolution 0 unless `--resolution`
or the run's `config.inference` says otherwise); past `--max-pixels` they tile the photo (or downscale it,
`--large-image downscale`), and one line per photo says which happened. The colouring itself is
`colorjax.inference.Colorizer` (also the Python API); this module is the command line.
Models with a global path (an `encode_global` method, e.g. iizuka) also take

    --global-from REF.jpg   colour every input with the global features of REF (the paper's style transfer)
    --labels                print each photo's top-5 classes, named from the run's `class_names`
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import jax
import numpy as np

from colorjax import checkpointing, cli, color, data, visualize
from colorjax.inference import Colorizer, InferenceError, read_image, top_k_labels


def find_inputs(inputs: Iterable[str]) -> list[tuple[Path, Path]]:
    """(image path, output path relative to --output) for every file, folder (recursive) or `samples` given."""
    found = []
    for spec in inputs:
        if spec == "samples":
            found += [(p, Path(p.stem)) for p in data.sample_photo_paths().values()]
            continue
        path = Path(spec)
        if path.is_dir():
            images = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in data.IMAGE_EXTENSIONS
            )
            if not images:
                raise InferenceError(f"No images found in folder {path}.")
            found += [(p, p.relative_to(path).with_suffix("")) for p in images]
        elif path.is_file():
            found.append((path, Path(path.stem)))
        else:
            raise InferenceError(f"Input {path} does not exist.")
    return found


def colorize_files(
    colorizer: Colorizer,
    inputs: list[tuple[Path, Path]],
    output: Path,
    side_by_side: bool,
    *,
    global_features: jax.Array | None = None,
    labels: bool = False,
) -> int:
    """Colours every input into `output`; returns how many could not be read (each reported on one line).

    Prints one line per photo saying how a native-size model ran on it and, with `labels`, one with its top-5
    classes. `global_features` (from `Colorizer.encode_global`) colour every photo with another photo's.
    """
    from tqdm import tqdm

    failures = 0
    progress = tqdm(inputs, unit="image", disable=len(inputs) < 2, file=sys.stderr)
    for path, relative in progress:
        try:
            rgb = read_image(path)
        except InferenceError as e:
            progress.write(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        prediction = colorizer.predict(rgb, global_features=global_features, labels=labels)
        colorized = prediction.rgb
        if prediction.message:
            progress.write(f"{path}: {prediction.message}")
        if labels:
            best = top_k_labels(prediction.class_logits, colorizer.class_names, k=5)[0]
            names = ", ".join(f"{name} {probability:.1%}" for name, probability in best)
            progress.write(f"{path}: top-{len(best)} classes: {names}")
        target = output / relative.with_suffix(".png")
        visualize.save_png(colorized, target)
        if side_by_side:
            gray = color.rgb_to_uint8(
                visualize.gray_rgb(np.asarray(color.rgb_to_lab(rgb / 255.0))[..., :1])
            )
            visualize.save_png(
                np.concatenate([gray, colorized], axis=1),
                target.with_name(target.stem + "_side.png"),
            )
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(
        prog="python -m colorjax.colorize", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders, or 'samples'"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="a training run's --workdir")
    source.add_argument(
        "--weights", help="published weights (.pth or .npz) instead of a run; needs --model"
    )
    parser.add_argument(
        "--model", choices=["eccv16", "siggraph17"], help="the architecture of --weights"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        help="ECCV16 annealed-mean temperature (default 0.38; 1 = plain mean)",
    )
    parser.add_argument(
        "--step",
        type=cli.step_arg,
        default="latest",
        help="latest, best, or a step number (default: latest)",
    )
    parser.add_argument("--output", required=True, help="folder for the colorized PNGs")
    parser.add_argument(
        "--resolution", type=int, help="shorter side the model works at (0: full size)"
    )
    parser.add_argument(
        "--square", action="store_true", default=None, help="work at resolution x resolution"
    )
    parser.add_argument(
        "--side-by-side", action="store_true", help="also write gray | colour panels"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        help="most pixels the model sees in one pass; larger photos are tiled (models that run at any size, "
        "e.g. iizuka) or downscaled (default: the run's config.inference.max_pixels, else 4096*4096)",
    )
    parser.add_argument(
        "--large-image",
        choices=["tile", "downscale"],
        help="past --max-pixels, tile the photo at full resolution (default) or downscale it (any-size models)",
    )
    parser.add_argument(
        "--global-from",
        metavar="REF",
        help="colour every input with the global features of this photo (style transfer; iizuka)",
    )
    parser.add_argument(
        "--labels",
        action="store_true",
        help="print each photo's top-5 classes (models with a classifier, e.g. iizuka)",
    )
    args = parser.parse_args(argv)
    try:
        output = Path(args.output)
        cli.check_writable(output)
        inputs = find_inputs(args.inputs)
        if args.weights:
            if not args.model:
                raise InferenceError("--weights needs --model eccv16 or --model siggraph17.")
            colorizer = Colorizer.from_published(
                args.weights,
                args.model,
                args.temperature,
                resolution=args.resolution,
                square=args.square,
                max_pixels=args.max_pixels,
            )
        else:
            colorizer = Colorizer.from_run(
                args.workdir,
                args.step,
                resolution=args.resolution,
                square=args.square,
                max_pixels=args.max_pixels,
                large_image_strategy=args.large_image,
            )
            colorizer = colorizer.with_temperature(args.temperature)
        if args.labels:
            colorizer.check_classifier()
        global_features = None
        if args.global_from:
            reference = Path(args.global_from)
            if not reference.is_file():
                raise InferenceError(f"--global-from {reference} does not exist.")
            global_features = colorizer.encode_global(read_image(reference))["global_features"]
            print(f"Colouring every input with the global features of {reference}.")
        failures = colorize_files(
            colorizer,
            inputs,
            output,
            args.side_by_side,
            global_features=global_features,
            labels=args.labels,
        )
    except (InferenceError, cli.OutputError, checkpointing.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Colorized {len(inputs) - failures} image(s) with {colorizer.description}: {output}")
    return 1 if failures else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
