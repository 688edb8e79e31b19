"""Colours photos with a trained model: `python -m colorjax.colorize --workdir RUN INPUT... --output DIR`.

INPUT is any number of image files and folders (searched recursively), or `samples` for the photos that ship with
scikit-image and scikit-learn. Any size and aspect ratio: the model predicts chroma at its working resolution, the
chroma is upsampled to the photo's own size and recombined with the photo's full-resolution lightness, so the
output has exactly the input's size and all of its detail. Colour inputs are turned gray first (their CIE L).

    python -m colorjax.colorize --workdir runs/demo --step best samples --output runs/demo/colorized
    python -m colorjax.colorize --workdir runs/zhang old_photos/ --output coloured/ --resolution 256
    python -m colorjax.colorize --weights eccv16 photo.jpg --output out/     # the authors' model, downloaded once
    python -m colorjax.colorize --weights ddcolor_modelscope photo.jpg --output out/ --resolution 256

Published weights colour as their authors' own pipeline does (DDColor: the photo at 512 x 512, `--resolution`
choosing that side, OpenCV Lab, nearest-neighbour chroma; `--chroma-upsampling bilinear` smooths the chroma instead).

`--runtime onnx` runs the model in onnxruntime instead of XLA (exported once into the weights cache).

Outputs keep the folder structure of the inputs and never lose or overwrite a file:
- Names: the input's file name with its last extension replaced, `sub/img.1.jpg` -> `sub/img.1.jpg` (JPEG) or
  `sub/img.1.png`; with `--side-by-side` a gray | colour panel `sub/img.1_side.png` beside it. When two inputs
  would get the same name in one folder (`a.jpg` + `a.png` as PNG, `photo.webp` + `photo.tif`), each of them keeps
  its whole file name instead: `a.jpg.png`, `a.png.png` (compared ignoring case, as macOS and Windows do); a clash
  left after that takes `_2`, `_3`, ... in the sorted order of the inputs. Names depend only on the input list,
  so a rerun writes the same files.
- Format: `--format png|jpg`; by default JPEG for JPEG inputs (.jpg/.jpeg: the source is already lossy, and a
  PNG of a camera photo is 5-10x its size for no visible gain) and PNG for every other input (PNG, TIFF, BMP,
  WebP, GIF: a lossless source keeps a lossless output). `--quality N` is the JPEG quality (default 95).
- An `--output` folder that is an input folder or lies inside one (a rerun would colour its own outputs), or an
  output that would replace an input file, stops the command before any work, with one line naming it. An output that exists already is skipped with one line (pass
  `--overwrite` to replace it); the summary counts written, skipped and failed images, exactly what is on disk.
  Every file is written to a temporary name in its folder and renamed into place, so an interrupted run leaves
  no half-written image. An output folder inside an input folder is not read as input.
- Exit code: 1 when any input failed (each named on its own `error:` line, the others still written), else 0;
  skipped inputs are not failures.

Models that run natively at any size (e.g. iizuka) see each photo at its own size (resolution 0 unless `--resolution`
or the run's `config.inference` says otherwise); past `--max-pixels` they tile the photo (or downscale it,
`--large-image downscale`), and one line per photo says which happened. The colouring itself is
`colorjax.inference.Colorizer` (also the Python API); this module is the command line.
Models with a global path (an `encode_global` method, e.g. iizuka) also take

    --global-from REF.jpg   colour every input with the global features of REF (the paper's style transfer)
    --labels                print each photo's top-5 classes, named from the run's `class_names`

SIGGRAPH17 models (`--model siggraph17` weights, or runs of configs/siggraph17.py) take the user's colour points
(Zhang et al. 2017), in each photo's own pixel coordinates:

    --hints hints.json                  a JSON list of points: [{"x": 120, "y": 40, "color": "#3a7bd5"},
                                        {"x": 30, "y": 200, "ab": [20, 60], "size": 5}] (see colorjax.hints)
    --hints-from REF.jpg --num-hints N  N points sampled from a colour reference photo (resized to each input)

Videos (mp4, mov, mkv, avi, webm, ...: by extension, else by asking FFmpeg) can be mixed with photos in one call
(needs the `colorjax[video]` extra). Each is coloured frame by frame in bounded memory into OUTPUT/NAME.mp4
(H.264, the input's size, frame timestamps and audio track), stabilised over time unless `--temporal off`;
`--frames` also writes every frame as a PNG into OUTPUT/NAME_frames/. The method: docs/video.md.

    python -m colorjax.colorize --workdir runs/demo old_film.mp4 photos/ --output coloured/ --frames
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from colorjax import ColorjaxError, files
from colorjax.cli import common as cli

if TYPE_CHECKING:  # JAX and the models are imported by main() after parsing, so --help answers at once.
    import jax
    import numpy as np

    from colorjax import hints
    from colorjax.inference.colorizer import Colorizer

DEFAULT_NUM_HINTS = 10  # --hints-from without --num-hints
DEFAULT_JPEG_QUALITY = files.DEFAULT_JPEG_QUALITY  # --quality
FORMATS = {"png": ".png", "jpg": ".jpg"}
JPEG_SUFFIXES = (".jpg", ".jpeg")
VIDEO_SUFFIX = ".mp4"


@dataclasses.dataclass(frozen=True)
class Target:
    """Where one input's outputs go, relative to --output: `image` (and the `side` panel with --side-by-side),
    in `format` ("png" | "jpg"; "mp4" for a video)."""

    image: Path
    side: Path | None
    format: str


def default_format(path: Path) -> str:
    """JPEG for a JPEG input (already lossy), PNG for every other (a lossless source keeps a lossless output)."""
    return "jpg" if path.suffix.lower() in JPEG_SUFFIXES else "png"


def plan_outputs(
    relatives: Sequence[Path],
    formats: Sequence[str],
    side_by_side: bool = False,
) -> list[Target]:
    """Unique output names for inputs at these paths relative to --output (the module docstring's rules).

    `formats[i]` is "png", "jpg" or "mp4" (a video: no panel). Decided from the sorted input list alone, so the
    same inputs always get the same names.
    """
    suffixes = [FORMATS.get(f, VIDEO_SUFFIX) for f in formats]
    order = sorted(range(len(relatives)), key=lambda i: (str(relatives[i]), i))
    stems = {i: relatives[i].stem for i in order}

    def names(i: int, stem: str) -> list[Path]:
        parent, suffix = relatives[i].parent, suffixes[i]
        panel = [parent / f"{stem}_side{suffix}"] if side_by_side and formats[i] in FORMATS else []
        return [parent / f"{stem}{suffix}", *panel]

    def key(path: Path) -> str:
        return str(path).casefold()

    def clashing() -> set[int]:
        owners: dict[str, set[int]] = {}
        for i in order:
            for name in names(i, stems[i]):
                owners.setdefault(key(name), set()).add(i)
        return {i for group in owners.values() if len(group) > 1 for i in group}

    for i in clashing():
        stems[i] = relatives[i].name  # a.jpg + a.png -> a.jpg.png + a.png.png
    if clashing():
        taken: set[str] = set()
        for i in order:
            stem, count = stems[i], 1
            while any(key(n) in taken for n in names(i, stem)):
                count += 1
                stem = f"{stems[i]}_{count}"
            stems[i] = stem
            taken.update(key(n) for n in names(i, stem))
    targets = []
    for i in range(len(relatives)):
        image, *panel = names(i, stems[i])
        targets.append(Target(image, panel[0] if panel else None, formats[i]))
    return targets


def check_inputs_kept(inputs: Sequence[Path], targets: Sequence[Target], output: Path) -> None:
    """OutputError (one line) when an output would replace an input file: nothing is written then."""
    originals = {path.resolve() for path in inputs if path.exists()}
    hits = [
        output / name
        for target in targets
        for name in (target.image, target.side)
        if name is not None and (output / name).resolve() in originals
    ]
    if hits:
        from colorjax import files

        more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
        raise files.OutputError(
            f"Writing {hits[0]} would overwrite that input file{more}; choose another --output folder."
        )


@dataclasses.dataclass
class Counts:
    """What happened to the inputs: written, skipped (an output was there already) and failed."""

    written: int = 0
    skipped: int = 0
    failed: int = 0


def colorize_files(
    colorizer: Colorizer,
    inputs: list[tuple[Path, Target]],
    output: Path,
    *,
    overwrite: bool = False,
    quality: int = DEFAULT_JPEG_QUALITY,
    global_features: jax.Array | None = None,
    labels: bool = False,
    hints_for: Callable[[np.ndarray], list[hints.Hint]] | None = None,
    hints_source: str = "hints",
) -> Counts:
    """Colours every (input, `Target`) into `output`; returns the counts (each skip or failure reported on one line).

    An input whose output exists already is skipped unless `overwrite`. Prints one line per photo saying how a
    native-size model ran on it and, with `labels`, one with its top-5 classes. `global_features` (from
    `Colorizer.encode_global`) colour every photo with another photo's; `hints_for(rgb)` gives each photo's colour
    points (named `hints_source` in errors).
    """
    import numpy as np
    from tqdm import tqdm

    from colorjax import hints
    from colorjax.inference.colorizer import InferenceError, read_image, top_k_labels

    counts = Counts()
    progress = tqdm(inputs, unit="image", disable=len(inputs) < 2, file=sys.stderr)
    for path, target in progress:
        paths = [output / name for name in (target.image, target.side) if name is not None]
        existing = [file for file in paths if file.exists() or file.is_symlink()]
        if existing and not overwrite:
            progress.write(f"{path}: skipped, {existing[0]} exists (pass --overwrite to replace it)")
            counts.skipped += 1
            continue
        try:
            rgb = read_image(path, colorizer.max_pixels)
        except InferenceError as e:
            progress.write(f"error: {e}", file=sys.stderr)
            counts.failed += 1
            continue
        points = None
        if hints_for is not None:
            try:
                points = hints.check_inside(hints_for(rgb), rgb.shape[:2], source=hints_source)
            except hints.HintError as e:
                progress.write(f"error: {path}: {e}", file=sys.stderr)
                counts.failed += 1
                continue
        prediction = colorizer.predict(rgb, global_features=global_features, labels=labels, hints=points)
        colorized = prediction.rgb
        if prediction.message:
            progress.write(f"{path}: {prediction.message}")
        if labels:
            best = top_k_labels(prediction.class_logits, colorizer.class_names, k=5)[0]
            names = ", ".join(f"{name} {probability:.1%}" for name, probability in best)
            progress.write(f"{path}: top-{len(best)} classes: {names}")
        images = [colorized]
        if target.side is not None:
            images.append(np.concatenate([prediction.gray(), colorized], axis=1))
        try:
            for image, file in zip(images, paths, strict=True):
                files.write_image(image, file, target.format, quality)
        except OSError as e:
            progress.write(f"error: {path}: cannot write {file} ({e.strerror or e})", file=sys.stderr)
            counts.failed += 1
            continue
        counts.written += 1
    return counts


def _existing_videos(videos: list[tuple[Path, Target]], output: Path, overwrite: bool) -> list[tuple[Path, Target]]:
    """The videos whose output is already there (each reported on one line), unless `overwrite`."""
    if overwrite:
        return []
    there = [(path, target) for path, target in videos if (output / target.image).exists()]
    for path, target in there:
        print(f"{path}: skipped, {output / target.image} exists (pass --overwrite to replace it)")
    return there


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m colorjax.colorize", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders, or 'samples'")
    cli.add_model_arguments(parser)
    parser.add_argument(
        "--runtime",
        choices=["xla", "onnx"],
        default="xla",
        help="run the model in JAX/XLA (default) or export it once to ONNX and run it in onnxruntime "
        "(`pip install 'colorjax[onnx]'`; models without an any-size routine)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        help="ECCV16 annealed-mean temperature (default 0.38; 1 = plain mean)",
    )
    parser.add_argument("--output", required=True, help="folder for the colorized images (and videos' mp4s)")
    parser.add_argument(
        "--format",
        choices=sorted(FORMATS),
        help="output image format (default: jpg for JPEG inputs, png for every other)",
    )
    parser.add_argument(
        "--quality",
        type=int,
        help=f"JPEG quality of jpg outputs, 1-100 (default {DEFAULT_JPEG_QUALITY})",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that exist already (default: skip those inputs, one line each)",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        help="shorter side the model works at (0: full size; default: the run's config.inference, e.g. DDColor's "
        "512, with --square its side S)",
    )
    parser.add_argument("--square", action="store_true", default=None, help="work at resolution x resolution")
    parser.add_argument(
        "--chroma-upsampling",
        choices=["bilinear", "nearest"],
        help="how the predicted chroma is brought to the photo's size (default: the run's, as the model's authors "
        "do: nearest for DDColor, bilinear for the others); bilinear gives smoother colour edges on photos larger "
        "than the working size",
    )
    parser.add_argument("--side-by-side", action="store_true", help="also write gray | colour panels")
    parser.add_argument(
        "--max-pixels",
        type=int,
        help="most pixels the model sees in one pass; larger photos are tiled (models that run at any size, "
        "e.g. iizuka) or downscaled (default: the run's config.inference.max_pixels, else 4096*4096); photos of up "
        "to 8192*8192 pixels are read, or up to this many where it is more",
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
    hint_source = parser.add_mutually_exclusive_group()
    hint_source.add_argument(
        "--hints",
        metavar="FILE",
        help='colour points for every input (siggraph17): a JSON list like [{"x": 10, "y": 20, '
        '"color": "#ff8800"}], in the photo\'s pixels; optional "size" (odd) or "ab": [a, b] instead of "color"',
    )
    hint_source.add_argument(
        "--hints-from",
        metavar="REF",
        help="sample colour points from this colour photo, resized to each input (siggraph17)",
    )
    parser.add_argument(
        "--num-hints",
        type=int,
        help=f"how many points --hints-from samples (default {DEFAULT_NUM_HINTS})",
    )
    parser.add_argument(
        "--temporal",
        choices=["on", "off"],
        default="on",
        help="videos: stabilise colours over time (on, default) or colour each frame as a photo (off)",
    )
    parser.add_argument("--frames", action="store_true", help="videos: also write every frame as a PNG")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import jax

    from colorjax import files, hints
    from colorjax.inference import onnx_runtime
    from colorjax.inference.colorizer import InferenceError, open_colorizer, prefer_fast_cpu_kernels, read_image
    from colorjax.video import io as video

    prefer_fast_cpu_kernels()
    if args.num_hints is not None and (args.hints_from is None or args.num_hints < 0):
        parser.error("--num-hints takes a count >= 0 and goes with --hints-from")
    if args.quality is not None and (args.format == "png" or not 1 <= args.quality <= 100):
        parser.error("--quality takes 1-100 and applies to JPEG outputs, not --format png")
    quality = DEFAULT_JPEG_QUALITY if args.quality is None else args.quality
    output, created = Path(args.output), None
    try:
        cli.check_output_outside_inputs(args.inputs, output)
        created = files.check_writable(output)
        found = cli.find_inputs(args.inputs)
        is_video = [video.is_video(path) for path, _ in found]
        formats = [
            "mp4" if moving else (args.format or default_format(path))
            for (path, _), moving in zip(found, is_video, strict=True)
        ]
        targets = plan_outputs([relative for _, relative in found], formats, args.side_by_side)
        check_inputs_kept([path for path, _ in found], targets, output)
        planned = [(path, target) for (path, _), target in zip(found, targets, strict=True)]
        videos = [item for item, moving in zip(planned, is_video, strict=True) if moving]
        inputs = [item for item, moving in zip(planned, is_video, strict=True) if not moving]
        skipped_videos = _existing_videos(videos, output, args.overwrite)
        videos = [item for item in videos if item not in skipped_videos]
        if videos and args.labels:
            raise InferenceError("--labels names the classes of photos; leave the videos out.")
        colorizer = open_colorizer(
            workdir=args.workdir,
            step=args.step,
            weights=args.weights,
            model=args.model,
            temperature=args.temperature,
            resolution=args.resolution,
            square=args.square,
            max_pixels=args.max_pixels,
            large_image_strategy=args.large_image,
            chroma_upsampling=args.chroma_upsampling,
        )
        if args.runtime == "onnx":
            colorizer = onnx_runtime.onnx_colorizer(colorizer)
        if args.labels:
            colorizer.check_classifier()
        global_features = None
        if args.global_from:
            reference = Path(args.global_from)
            if not reference.is_file():
                raise InferenceError(f"--global-from {reference} does not exist.")
            global_features = colorizer.encode_global(read_image(reference, colorizer.max_pixels))["global_features"]
            print(f"Colouring every input with the global features of {reference}.")
        hints_for, hints_source = None, "hints"
        if args.hints or args.hints_from:
            colorizer.check_takes_hints()
        if args.hints:
            points = hints.read_hints(args.hints)
            hints_for, hints_source = (lambda rgb: points), f"hints file {args.hints}"
            print(f"Colouring with the {len(points)} colour point(s) of {args.hints}.")
        elif args.hints_from:
            reference = read_image(args.hints_from, colorizer.max_pixels)
            count = DEFAULT_NUM_HINTS if args.num_hints is None else args.num_hints

            def hints_for(rgb):
                # The same draw for every input (key 0), in that input's own coordinates.
                size = rgb.shape[:2]
                return hints.hints_from_reference(reference, count, jax.random.key(0), photo_size=size)

            print(f"Colouring with {count} colour point(s) sampled from {args.hints_from}.")
        counts = colorize_files(
            colorizer,
            inputs,
            output,
            overwrite=args.overwrite,
            quality=quality,
            global_features=global_features,
            labels=args.labels,
            hints_for=hints_for,
            hints_source=hints_source,
        )
        video_failures = 0
        if videos:
            failures = video.colorize_video_files(
                colorizer,
                [(path, target.image) for path, target in videos],
                output,
                video.TemporalSettings(enabled=args.temporal == "on"),
                frames=args.frames,
                global_features=global_features,
            )
            for failure in failures:
                cli.print_error(failure)
            video_failures = len(failures)
    except ColorjaxError as e:
        files.remove_if_unused(output, created)
        cli.print_error(e)
        return 1
    except BaseException:
        files.remove_if_unused(output, created)
        raise
    done = f"{counts.written} image(s)"
    if videos or skipped_videos:
        done += f" and {len(videos) - video_failures} video(s)"
    line = f"Colorized {done} with {colorizer.description}: {output}"
    skipped = counts.skipped + len(skipped_videos)
    if skipped:
        line += f"; {skipped} skipped (output exists; --overwrite replaces it)"
    if counts.failed or video_failures:
        line += f"; {counts.failed + video_failures} failed"
    print(line)
    return 1 if counts.failed or video_failures else 0


def run(argv: list[str] | None = None) -> None:
    cli.run_cli(main, argv)
