"""`python -m colorjax.weights list | download NAME | to-run NAME|FILE --workdir DIR`: published weights by name.

`list` shows the known weights (`colorjax.weights.registry`), their model and size, where they come from and what is
cached; `download` fetches one into the cache (resuming an interrupted download), checked by its SHA-256; `to-run`
writes a run directory (config.json and a step-0 checkpoint, the layout the trainer writes) holding the published
model, so `colorize --workdir`, `evaluate --workdir` and `config.model_init` (fine-tuning the published network on
your own photos) treat it like a trained run. Its `config.inference` holds the authors' pipeline (Zhang et al.'s
demo: 256 x 256, square; DDColor's: 512 x 512, OpenCV Lab, nearest chroma), so it colours exactly as
`colorize --weights` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from colorjax import ColorjaxError
from colorjax.cli import common as cli
from colorjax.weights import registry
from colorjax.weights.registry import KNOWN_WEIGHTS, WeightsError, cache_dir, cached_path, download, megabytes


def to_run(name_or_path: str | Path, workdir: str | Path, model: str | None = None) -> Path:
    """Writes `workdir` (config.json + a step-0 checkpoint) from published weights (`runs.published_run`); returns
    the workdir. Refuses a workdir that already holds a run."""
    from colorjax import runs  # imports JAX: not at module level, so --help answers at once

    workdir = Path(workdir)
    if (workdir / runs.CHECKPOINT_DIR).exists() or (workdir / runs.CONFIG_FILE).exists():
        raise WeightsError(f"{workdir} already holds a run; choose a new --workdir.")
    run = runs.published_run(name_or_path, model)
    runs.write_run(workdir, run.config, run.variables, run.meta["model_kwargs"], weights=run.published)
    return workdir


def listing() -> str:
    """`list`'s lines: per known name its model, size in MB ("~" where it is estimated from the parameter count), whether it is cached
    (or how much of it an interrupted download kept), its URL, then its description."""
    names = list(registry.KNOWN_WEIGHTS.values())  # looked up now: the tests add entries
    name_width = max(len(weights.name) for weights in names)
    model_width = max(len(weights.model) for weights in names)
    lines = [f"cache: {cache_dir()}"]
    for weights in names:
        partial = registry.partial_path(weights.name)
        if cached_path(weights.name).is_file():
            state = "cached"
        elif partial.is_file():
            state = f"partial {megabytes(partial.stat().st_size)} MB of {weights.size_text}"
        else:
            state = "not downloaded"
        size = weights.size_text
        lines.append(
            f"{weights.name:<{name_width}}  model {weights.model:<{model_width}}  {size:>7}  {state:<16}  {weights.url}"
        )
        lines.append(f"{'':<{name_width}}  {weights.description}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m colorjax.weights", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the known weights, where they come from, and whether they are cached")
    fetch = commands.add_parser("download", help="download known weights into the cache (once)")
    fetch.add_argument("name", help=", ".join(KNOWN_WEIGHTS))
    run = commands.add_parser("to-run", help="write a colorjax run directory holding published weights")
    run.add_argument("weights", metavar="NAME|PATH", help="a known name or a weights file")
    run.add_argument("--workdir", required=True, help="the run directory to create")
    run.add_argument("--model", help="the model of a weights file with an unknown name")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            print(listing())
        elif args.command == "download":
            print(download(args.name))
        else:
            workdir = to_run(args.weights, args.workdir, args.model)
            print(
                f"Wrote {workdir}: colour with `python -m colorjax.colorize --workdir {workdir} PHOTOS --output "
                "DIR`, or fine-tune with --config.model_init=" + str(workdir)
            )
    except ColorjaxError as error:
        cli.print_error(error)
        return 1
    return 0


def run(argv: list[str] | None = None) -> None:
    cli.run_cli(main, argv)
