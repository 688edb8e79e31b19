"""`colorjax CMD [ARGS...]` and `python -m colorjax CMD [ARGS...]`: every command of colorjax by name.

Each command is a thin module in `colorjax/cli/` with `run(argv)`; it is imported only when it runs, so
`colorjax --help` answers at once (no JAX, no TensorFlow). The `python -m colorjax.CMD` entry points
(`colorjax/train/__main__.py`, `colorjax/colorize.py`, ...) and the `colorjax-CMD` console scripts come here too,
through `run_command`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# name -> (module in colorjax/cli, one line for `colorjax --help`)
COMMANDS = {
    "train": ("train", "train a model from a config; rerun the same command to resume"),
    "colorize": ("colorize", "colour photos, folders and videos with a trained run or published weights"),
    "evaluate": ("evaluate", "score a model on a dataset (or clips) with the papers' metrics"),
    "report": ("report", "compare evaluated runs side by side in the papers' tables"),
    "prior": ("prior", "count a dataset's ab prior for class rebalancing"),
    "weights": ("weights", "list, download and convert the authors' published weights"),
    "export": ("export", "export a model as StableHLO or ONNX"),
    "serve": ("serve", "the web app: upload photos, get them coloured, keep a history"),
    "bench": ("bench", "benchmarks: speed against PyTorch, the input pipeline, the app, video"),
    "hint-sweep": ("hint_sweep", "how much colour hints help a hint model (SIGGRAPH17)"),
}

USAGE = "usage: colorjax COMMAND [ARGS...]   (or python -m colorjax COMMAND, python -m colorjax.COMMAND)"


def run_command(name: str, argv: Sequence[str] | None = None) -> None:
    """Runs command `name` with `argv` (default: this process's arguments after the program name)."""
    module = importlib.import_module(f"colorjax.cli.{COMMANDS[name][0]}")
    module.run(list(sys.argv[1:] if argv is None else argv))


def _help() -> str:
    width = max(map(len, COMMANDS))
    lines = [USAGE, "", "Fully automatic image colorization in JAX/Flax.", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "colorjax COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_help())
        sys.exit(0 if argv else 2)
    if argv[0] in ("-V", "--version"):
        from colorjax import __version__

        print(f"colorjax {__version__}")
        sys.exit(0)
    name = argv[0].replace("_", "-")
    if name not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
    run_command(name, argv[1:])


# One function per console script (pyproject.toml's [project.scripts]).
def train() -> None:
    run_command("train")


def colorize() -> None:
    run_command("colorize")


def evaluate() -> None:
    run_command("evaluate")


def report() -> None:
    run_command("report")


def prior() -> None:
    run_command("prior")


def weights() -> None:
    run_command("weights")


def export() -> None:
    run_command("export")


def serve() -> None:
    run_command("serve")


def bench() -> None:
    run_command("bench")


def hint_sweep() -> None:
    run_command("hint-sweep")


if __name__ == "__main__":
    main()
