"""`python -m colorjax.bench [NAME ...] [--quick] [--data SOURCE] [--out results.json]`: run benchmarks, print rows.

With no NAME every registered benchmark runs. `--data folder:PATH` points the input-pipeline benchmark at real photos
(default: the team's ../shared scene photos when present, else the wheel-shipped samples). `--models`, `--sizes`,
`--batches`, `--budget-s` and `--skip` choose what the `ddcolor` benchmark times (colorjax/bench/ddcolor.py); `--levers` makes
`zhang` time issue 25's CPU levers for ECCV16 (or `--model siggraph17`) instead (colorjax/bench/zhang.py);
`train_step --model ddcolor` times DDColor's training step against the authors' (colorjax/bench/train_step.py);
`--clips` adds real clips to the `video` benchmark (colorjax/bench/video.py); `serve --photo-megapixels N` times one
big photo through the app (colorjax/bench/serve.py).
"""

import os
import time

from colorjax import files
from colorjax.bench import BENCHMARKS, get_benchmark
from colorjax.cli import common as cli


def format_rows(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(prog="python -m colorjax.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of well under a minute each")
    parser.add_argument("--data", help="photos for the pipeline benchmark (folder:PATH or samples)")
    parser.add_argument("--out", help="also write the rows as JSON here")
    parser.add_argument(
        "--model",
        help="train_step: the model whose step is timed against its authors' PyTorch step (ddcolor); "
        "zhang --levers: eccv16 (default) or siggraph17",
    )
    parser.add_argument("--models", help="ddcolor: networks to time, of test, tiny, large (default tiny,large)")
    parser.add_argument("--sizes", help="ddcolor: square sizes S, multiples of 32 (default 256,512)")
    parser.add_argument("--batches", help="ddcolor: batch sizes (default 1,8)")
    parser.add_argument(
        "--budget-s",
        type=float,
        help="ddcolor: seconds at most; settings that would not fit are skipped (default 1800)",
    )
    parser.add_argument(
        "--skip",
        help="ddcolor: leave out the contenders whose label or precision holds one of these words (e.g. autocast)",
    )
    parser.add_argument(
        "--photo-megapixels",
        type=float,
        help="serve: time one photo of this many megapixels through the app, stage by stage (e.g. 20)",
    )
    parser.add_argument("--clips", help="video: real clips to score too, joined by the OS's path separator (:)")
    parser.add_argument(
        "--levers", action="store_true", help="zhang: the CPU lever table of ECCV16 (or --model) inference instead"
    )
    args = parser.parse_args(argv)
    if args.levers:
        os.environ["COLORJAX_BENCH_LEVERS"] = "1"
    if args.data:
        os.environ["COLORJAX_BENCH_DATA"] = args.data
    for option in ("model", "models", "sizes", "batches", "budget_s", "skip", "photo_megapixels", "clips"):
        if getattr(args, option) is not None:
            os.environ[f"COLORJAX_BENCH_{option.upper()}"] = str(getattr(args, option))
    from colorjax.bench.devices import describe_device

    print(f"Device: {describe_device()}", flush=True)
    all_rows = []
    for name in args.names or list(BENCHMARKS):
        try:
            benchmark = get_benchmark(name)
        except ValueError as e:
            cli.print_error(e)
            return cli.USAGE_ERROR
        start = time.perf_counter()
        rows = benchmark(args.quick)
        print(f"\n== {name} ({time.perf_counter() - start:.0f} s)\n{format_rows(rows)}", flush=True)
        all_rows += [{"benchmark": name, **row} for row in rows]
    if args.out:
        files.write_json(args.out, all_rows)
    return 0


def run(argv: list[str] | None = None) -> None:
    cli.run_cli(main, argv)
