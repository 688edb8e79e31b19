"""Manners shared by every command line: `--help` exits 0 with usage, a mistake the user can fix is one line.

- `ArgumentParser`: argparse whose usage errors are one line, `error: ...; see PROG --help`, exit 2.
- `add_model_arguments(parser)`: the one `--workdir RUN [--step S] | --weights NAME|FILE [--model M]` group every
  command that runs a model takes; `--step` defaults to `DEFAULT_STEP` (best) everywhere, `--model` choices come
  from the weights registry. `step_arg`: the `--step` type: `latest`, `best` or a step number.
- `run_cli(main)`: every command's `run(argv)`: runs its `main(argv) -> int`; a `ColorjaxError` (and the OSError and
  ValueError a command has always shown as one line) prints as `error: <one line>` and exits 1, a `UsageError`
  exits 2, Ctrl-C prints one line and exits 130. `COLORJAX_TRACEBACK=1` re-raises them, for developers.
- `absl_flags_parser(usage, flag_names)`: for absl commands (`app.run(main, flags_parser=...)`): `--help` prints
  usage and the named flags and exits 0, a bad flag or a `--config.FIELD` that does not exist (with the nearest
  field, `config_lib.unknown_override_errors`) is one line and exit 2, instead of absl's exit 1 and traceback.
  `parse_absl_flags` is the same for a command with its own FlagValues (`prior`): HelpShown / UsageError.

Library modules never import this module; only the commands (`python -m colorjax.X`) do.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from colorjax import ColorjaxError

USAGE_ERROR = 2  # a command line that cannot be run as written (argparse's code too)
RUN_ERROR = 1  # a run that started and failed for a reason the message names
INTERRUPTED = 130  # Ctrl-C: the shell's code for SIGINT

HELP_FLAGS = ("-h", "--help", "-help", "--helpshort", "--helpfull", "-?")


def one_line(error: BaseException) -> str:
    """The message of an exception as a single line: its text (a KeyError's key without quotes), or its cause's
    when it has none, whitespace and newlines collapsed."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    if not str(text).strip() and error.__cause__ is not None:
        return one_line(error.__cause__)
    return " ".join(str(text).split()) or type(error).__name__


def print_error(error: BaseException | str) -> None:
    """`error: ...` on stderr: one line per problem (an exception with `problems` lists several), else one."""
    problems = getattr(error, "problems", None) or [error if isinstance(error, str) else one_line(error)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr, flush=True)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line usage errors: `error: MESSAGE; see PROG --help` on stderr, exit 2. An unknown flag
    is named first (with the nearest known one), before argparse's check of required arguments could blame a
    misspelled `--outptu` as "--output is required"."""

    def parse_known_args(self, args=None, namespace=None):
        tokens = sys.argv[1:] if args is None else list(args)
        if self._subparsers is not None:  # the flags after the subcommand are its own parser's to check
            tokens = tokens[: next((i for i, token in enumerate(tokens) if not token.startswith("-")), len(tokens))]
        for token in tokens:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if not name.startswith("--") or name == "--":
                continue
            known = [option for option in self._option_string_actions if option.startswith("--")]
            if name in known or (self.allow_abbrev and any(option.startswith(name) for option in known)):
                continue
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            self.error(f"unrecognized argument {name}" + (f" (did you mean {close[0]}?)" if close else ""))
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        print_error(f"{message}; see {self.prog} --help")
        sys.exit(USAGE_ERROR)


def step_arg(text: str) -> str | int:
    """argparse type of `--step`: latest, best or a step number >= 0 (one-line error otherwise)."""
    if text in ("best", "latest"):
        return text
    try:
        step = int(text)
    except ValueError:
        step = -1
    if step < 0:
        raise argparse.ArgumentTypeError(f"--step must be best, latest or a step number, got {text!r}")
    return step


# The --step of every command: the run's best checkpoint by its own metric (the newest where it kept none, e.g. a run
# that never evaluated, or a `weights to-run` directory). `inference.open_model` defaults to the same.
DEFAULT_STEP = "best"


def add_model_arguments(parser: argparse.ArgumentParser, *, weights: bool = True, several: bool = False) -> None:
    """The model a command runs: `--workdir RUN [--step S]`, or (with `weights`) `--weights NAME|FILE [--model M]`,
    exactly one of the two; with `several`, `--workdir` may be repeated (a list) and `--weights` may name several,
    comma-separated. Light: the registry it reads imports no JAX, so `--help` stays instant."""
    from colorjax.weights.registry import KNOWN_WEIGHTS, published_models

    group = parser.add_argument_group("the model" + (" (--workdir or --weights)" if weights else ""))
    source = group.add_mutually_exclusive_group(required=True) if weights else group
    source.add_argument(
        "--workdir",
        required=not weights,
        action="append" if several else "store",
        help="a training run's --workdir (or a `weights to-run` directory)"
        + ("; repeat it for several" if several else ""),
    )
    group.add_argument(
        "--step",
        type=step_arg,
        default=DEFAULT_STEP,
        help=f"with --workdir: best, latest or a step number (default: {DEFAULT_STEP}, the run's best checkpoint by "
        "its own metric; the newest where it kept none)",
    )
    if weights:
        source.add_argument(
            "--weights",
            metavar="NAME|PATH",
            help=f"published weights instead of a run: {', '.join(n for n, w in KNOWN_WEIGHTS.items() if w.colorizer)} "
            "(downloaded once into the cache), "
            "or a .pth/.npz file" + ("; several, comma-separated" if several else ""),
        )
        group.add_argument(
            "--model",
            choices=published_models(),
            help="the model of a --weights file whose name is not a known one (a known name knows its model)",
        )


def run_cli(
    main: Callable[[Sequence[str] | None], int | None],
    argv: Sequence[str] | None = None,
    errors: tuple[type[BaseException], ...] = (ValueError, OSError),
) -> NoReturn:
    """Runs `main(argv)` and exits with its return code; a `ColorjaxError` or one of `errors` (exceptions whose
    message tells the user what to fix) prints as one `error:` line and exits 1 (a `UsageError`: its lines, exit
    2); Ctrl-C exits 130 with one line. Anything else is a bug and keeps its traceback."""
    try:
        code = main(argv)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr, flush=True)
        sys.exit(INTERRUPTED)
    except (ColorjaxError, *errors) as e:
        if os.environ.get("COLORJAX_TRACEBACK"):
            raise
        print_error(e)
        sys.exit(USAGE_ERROR if isinstance(e, UsageError) else RUN_ERROR)
    sys.exit(code or 0)


# Shorter words for absl's own flags than absl's.
_HELP = {"verbosity": "-1 warnings and errors only; 0 also info (the libraries' notes); 1 debug"}


def absl_help(usage: str, flag_values: Any, flag_names: Sequence[str]) -> str:
    """`usage`, then one line per named flag: `--name  help (default: ...)`."""
    lines = [usage.rstrip(), "", "flags:"]
    for name in flag_names:
        flag = flag_values[name]
        text = _HELP.get(name, flag.help)
        default = "" if flag.default is None else f" (default: {flag.default})"
        lines.append(f"  --{name}: {text}{default}")
    return "\n".join(lines)


class UsageError(ColorjaxError, ValueError):
    """A command line that cannot be run as written; `problems` holds one line each."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class HelpShown(Exception):
    """`--help` was asked for and printed: the command should exit 0."""


def parse_absl_flags(
    argv: Sequence[str],
    usage: str,
    flag_names: Sequence[str],
    flag_values: Any = None,
    config_flag: str = "config",
) -> list[str]:
    """Parses `argv` into absl `flag_values` (default: absl's FLAGS); returns the remaining arguments.

    `--help` (and absl's other help flags) print `absl_help` and raise HelpShown. Any `--CONFIG_FLAG.FIELD`
    override that names no field of the config file raises UsageError (`unknown config field --config.FIELD; did
    you mean ...?`), checked before absl applies the overrides (which fails with a 40-line traceback); so do
    absl's own flag errors (a missing required flag, a value that does not parse), each as one line.
    """
    from absl import flags

    flag_values = flags.FLAGS if flag_values is None else flag_values
    argv = list(argv)
    if any(arg in HELP_FLAGS for arg in argv[1:]):
        print(absl_help(usage, flag_values, flag_names))
        raise HelpShown
    try:
        problems = _override_problems(argv, config_flag)
    except (OSError, ValueError, SyntaxError, ImportError) as e:
        problems = [f"--{config_flag}: {one_line(e)}"]
    if problems:
        raise UsageError(problems)
    cleared = none_overrides(argv, config_flag)
    try:
        remaining = flag_values([arg for arg in argv if arg not in cleared])
        if cleared:
            config = flag_values[config_flag].value
            config.update_from_flattened_dict({arg[len(config_flag) + 3 : -len("=None")]: None for arg in cleared})
        return remaining
    except (flags.Error, KeyError, AttributeError, TypeError, ValueError, OSError) as e:
        # absl's own errors, and config_flags failing to apply an override the pre-check passed (a value of
        # the wrong type, a config file that raises).
        raise UsageError([f"{one_line(e).rstrip('.')}; see --help"]) from e


def none_overrides(argv: Sequence[str], config_flag: str = "config") -> list[str]:
    """The `--config.FIELD=None` arguments of `argv`. config_flags parses an override by the field's type (float
    ("None") fails), so `parse_absl_flags` sets these after the others, and the command leaves them out of the
    `sys_argv` it gives `DEFINE_config_file` (a field that may be None is a placeholder: grad_clip_norm, ...)."""
    return [arg for arg in argv if arg.startswith(f"--{config_flag}.") and arg.endswith("=None")]


def absl_flags_parser(
    usage: str, flag_names: Sequence[str], config_flag: str = "config"
) -> Callable[[list[str]], list[str]]:
    """`parse_absl_flags` for `app.run(main, flags_parser=...)` (absl's global FLAGS): help exits 0, a usage
    error prints its lines and exits 2."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return parse_absl_flags(argv, usage, flag_names, config_flag=config_flag)
        except HelpShown:
            sys.exit(0)
        except UsageError as e:
            print_error(e)
            sys.exit(USAGE_ERROR)

    return parse


def _config_value(argv: Sequence[str], config_flag: str) -> str | None:
    """The value of `--CONFIG_FLAG` in `argv` (`--config=X` or `--config X`), else None."""
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{config_flag}="):
            return arg.split("=", 1)[1]
        if arg == f"--{config_flag}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _override_problems(argv: Sequence[str], config_flag: str) -> list[str]:
    """One line per `--config.FIELD` of `argv` that the config file does not have."""
    from colorjax import config_lib

    overrides = config_lib.override_paths(argv, config_flag)
    value = _config_value(argv, config_flag)
    if value is None:
        return []
    path, _, arg = value.partition(":")
    if not Path(path).is_file():
        return [f"--{config_flag}: config file {path!r} not found"]
    # Loaded here too (absl loads it again), so that a get_config() that raises is one line, not absl's
    # message with the traceback inside it.
    config = config_lib.load_config(path, arg or None)
    return config_lib.unknown_override_errors(config, overrides, flag=config_flag)


def check_output_outside_inputs(inputs: Iterable[str], output: str | Path) -> None:
    """OutputError (one line) when `output` is an input folder or lies inside one: a rerun would take the outputs
    for inputs and colour its own results. Called before anything is read or written."""
    from colorjax import files

    target = Path(output).resolve()
    for spec in inputs:
        path = Path(spec)
        if spec != "samples" and path.is_dir() and target.is_relative_to(path.resolve()):
            where = "is the input folder" if target == path.resolve() else "is inside the input folder"
            raise files.OutputError(
                f"--output {output} {where} {path}: a rerun would colour its own outputs; choose a folder outside "
                "the inputs."
            )


def find_inputs(inputs: Iterable[str]) -> list[tuple[Path, Path]]:
    """(image or video path, its path relative to --output) for every file, folder (recursive: photos and videos by
    extension) or `samples` given. The relative path keeps the file's whole name (`sub/img.1.jpg`); the command
    chooses the output name from it. Folder walks keep links to missing files, so that reading them reports them
    (an --output folder inside a walked folder is refused before, `check_output_outside_inputs`)."""
    from colorjax import data
    from colorjax.inference.colorizer import InferenceError
    from colorjax.video import io as video

    found = []
    for spec in inputs:
        if spec == "samples":
            found += [(p, Path(p.name)) for p in data.sample_photo_paths().values()]
            continue
        path = Path(spec)
        if path.is_dir():
            images = sorted(
                p
                for p in path.rglob("*")
                if (p.is_file() or (p.is_symlink() and not p.exists()))
                and (p.suffix.lower() in data.IMAGE_EXTENSIONS or p.suffix.lower() in video.VIDEO_EXTENSIONS)
            )
            if not images:
                raise InferenceError(f"No images or videos found in folder {path}.")
            found += [(p, p.relative_to(path)) for p in images]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise InferenceError(f"Input {path} does not exist.")
    return found
