"""How much colour hints help: `python -m colorjax.hint_sweep --workdir RUN PHOTOS... --num-hints 0 1 10`.

For every photo (files or folders, searched recursively) and every count N, N points are sampled from the photo's
own colours as the authors' evaluation does (`test_sweep.py` in richzhang/colorization-pytorch: centred-Gaussian
positions, each point the mean ab of its patch; `colorjax.hints.hints_from_reference`), the model colours the gray
photo with them (N = 0: the automatic mode) and the mean Euclidean ab error against the truth is taken at the
photo's own size. Prints one line per count; `--picture OUT.png` also writes, for the first `--picture-rows`
photos, the columns gray with the hint patches drawn | no hints | with the largest N | truth.

    python -m colorjax.hint_sweep --workdir runs/sig_hints ../shared/data/intel_scenes_150/test \
        --num-hints 0 1 10 --picture docs/hints_before_after.jpg
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from colorjax import checkpointing, cli, color, hints, visualize
from colorjax.inference import Colorizer, InferenceError, read_image

GUTTER = 4


def sweep(
    colorizer: Colorizer,
    paths: Sequence[Path],
    counts: Sequence[int],
    *,
    hint_size: int,
    seed: int = 0,
    picture_rows: int = 0,
) -> tuple[dict[int, float], list[list[np.ndarray]]]:
    """Mean ab error per count over the photos (each photo weighted by its pixels), and the picture's rows."""
    from tqdm import tqdm

    error_sums = dict.fromkeys(counts, 0.0)
    pixels = 0
    rows = []
    key = jax.random.key(seed)
    for index, path in enumerate(tqdm(paths, unit="photo", file=sys.stderr)):
        rgb = read_image(path)
        truth = np.asarray(color.rgb_to_lab(rgb / np.float32(255.0)))[..., 1:]
        pixels += truth.shape[0] * truth.shape[1]
        predictions = {}
        for count in counts:
            points = hints.hints_from_reference(rgb, count, jax.random.fold_in(key, index), size=hint_size)
            chroma = colorizer.predict_chroma(rgb, hints=points if count else None)
            error_sums[count] += float(np.linalg.norm(chroma - truth, axis=-1).sum())
            predictions[count] = (points, chroma)
        if index < picture_rows:
            rows.append(_picture_row(colorizer, rgb, predictions, max(counts), min(counts)))
    return {count: total / pixels for count, total in error_sums.items()}, rows


def _picture_row(colorizer, rgb, predictions, most, fewest) -> list[np.ndarray]:
    """gray with the hint patches of `most` | colours with `fewest` | with `most` | truth, uint8 images."""
    L = np.asarray(color.rgb_to_lab(rgb / np.float32(255.0)))[..., :1]
    points, _ = predictions[most]
    maps = hints.hint_maps(points, rgb.shape[:2])
    shown = np.where(
        maps.mask > 0,
        np.asarray(color.chroma_to_rgb(L, maps.ab, "lab")),
        visualize.gray_rgb(L),
    )
    # A black outline around each patch, so that small points stay visible.
    for point in points:
        half = point.size // 2 + 1
        top, left = max(point.y - half, 0), max(point.x - half, 0)
        bottom, right = point.y + half, point.x + half
        for rows, cols in (
            (slice(top, bottom + 1), slice(left, left + 1)),
            (slice(top, bottom + 1), slice(right, right + 1)),
            (slice(top, top + 1), slice(left, right + 1)),
            (slice(bottom, bottom + 1), slice(left, right + 1)),
        ):
            shown[rows, cols] = 0.0
    return [
        color.rgb_to_uint8(shown),
        colorizer.combine(rgb, predictions[fewest][1]),
        colorizer.combine(rgb, predictions[most][1]),
        rgb,
    ]


def tile(rows: list[list[np.ndarray]], gutter: int = GUTTER) -> np.ndarray:
    """Rows of same-sized uint8 images -> one uint8 image with white gutters."""
    height, width = rows[0][0].shape[:2]
    columns = len(rows[0])
    grid = np.full(
        (len(rows) * (height + gutter) + gutter, columns * (width + gutter) + gutter, 3),
        255,
        np.uint8,
    )
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = gutter + r * (height + gutter), gutter + c * (width + gutter)
            grid[top : top + height, left : left + width] = image
    return grid


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m colorjax.hint_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="+", metavar="PHOTO", help="colour photos or folders")
    parser.add_argument("--workdir", required=True, help="a run of a model that takes hints")
    parser.add_argument("--step", type=cli.step_arg, default="latest", help="latest, best or N")
    parser.add_argument("--num-hints", type=int, nargs="+", default=[0, 1, 10], help="counts (default 0 1 10)")
    parser.add_argument("--hint-size", type=int, default=5, help="each point's odd patch side, photo pixels")
    parser.add_argument("--max-photos", type=int, help="only the first N photos (sorted)")
    parser.add_argument("--picture", help="write the before/after picture here (.png or .jpg)")
    parser.add_argument("--picture-rows", type=int, default=4, help="photos in the picture")
    args = parser.parse_args(argv)
    if min(args.num_hints) < 0:
        parser.error("--num-hints takes counts >= 0")
    try:
        colorizer = Colorizer.from_run(args.workdir, args.step)
        colorizer.check_takes_hints()
        paths = [path for path, _ in cli.find_inputs(args.photos)][: args.max_photos]
        if args.picture:
            cli.check_writable(Path(args.picture).parent)
        errors, rows = sweep(
            colorizer,
            paths,
            args.num_hints,
            hint_size=args.hint_size,
            picture_rows=args.picture_rows if args.picture else 0,
        )
    except (InferenceError, hints.HintError, cli.OutputError, checkpointing.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{colorizer.description}, {len(paths)} photos, points of {args.hint_size} px:")
    for count, error in errors.items():
        print(f"  {count:4d} hints: mean ab error {error:.2f}")
    if args.picture and rows:
        if Path(args.picture).suffix.lower() in (".jpg", ".jpeg"):  # a quarter of the PNG's size
            from PIL import Image

            Image.fromarray(tile(rows)).save(args.picture, quality=90)
        else:
            visualize.save_png(tile(rows), args.picture)
        print(f"Picture: {args.picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
