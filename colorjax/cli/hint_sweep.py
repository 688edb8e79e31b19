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

import argparse
from pathlib import Path

from colorjax import ColorjaxError
from colorjax.cli import common as cli


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m colorjax.hint_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="+", metavar="PHOTO", help="colour photos or folders")
    cli.add_model_arguments(parser, weights=False)
    parser.add_argument("--num-hints", type=int, nargs="+", default=[0, 1, 10], help="counts (default 0 1 10)")
    parser.add_argument("--hint-size", type=int, default=5, help="each point's odd patch side, photo pixels")
    parser.add_argument("--max-photos", type=int, help="only the first N photos (sorted)")
    parser.add_argument("--picture", help="write the before/after picture here (.png or .jpg)")
    parser.add_argument("--picture-rows", type=int, default=4, help="photos in the picture")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.num_hints) < 0:
        parser.error("--num-hints takes counts >= 0")
    from colorjax import files
    from colorjax.evaluation.hint_sweep import sweep, tile
    from colorjax.inference import open_colorizer

    try:
        colorizer = open_colorizer(workdir=args.workdir, step=args.step)
        colorizer.check_takes_hints()
        paths = [path for path, _ in cli.find_inputs(args.photos)][: args.max_photos]
        if args.picture:
            files.check_writable(Path(args.picture).parent)
        errors, rows = sweep(
            colorizer,
            paths,
            args.num_hints,
            hint_size=args.hint_size,
            picture_rows=args.picture_rows if args.picture else 0,
        )
    except ColorjaxError as e:
        cli.print_error(e)
        return 1
    print(f"{colorizer.description}, {len(paths)} photos, points of {args.hint_size} px:")
    for count, error in errors.items():
        print(f"  {count:4d} hints: mean ab error {error:.2f}")
    if args.picture and rows:
        # By the suffix: .jpg/.jpeg is a quarter of the PNG's size; anything else is PNG.
        files.write_image(tile(rows), args.picture, quality=90)
        print(f"Picture: {args.picture}")
    return 0


def run(argv: list[str] | None = None) -> None:
    cli.run_cli(main, argv)
