"""`python -m colorjax.train --config configs/X.py[:arg] --workdir DIR`: the trainer's command line.

absl flags around `colorjax.train.trainer.train_and_evaluate`; `--config.FIELD=VALUE` overrides any field.
"""

from __future__ import annotations

import os
import sys

from colorjax import ColorjaxError
from colorjax.cli import common as cli

USAGE = """usage: python -m colorjax.train --config configs/X.py[:VARIANT] --workdir DIR
                                [--config.FIELD=VALUE ...] [--distributed auto|on|off] [--verbosity N]

Trains a colorization model as the config says (configs/*.py; every field and its default:
colorjax/config_lib.py). Rerunning the same command with the same --workdir resumes the run."""


def main(argv: list[str] | None = None) -> int:
    """Defines the absl flags and runs absl's app, which exits: --help is usage and exit 0; a config typo or an
    impossible value is one line each and exit 2 (`cli.absl_flags_parser`, `config_lib.validate`); a run stopped by
    SIGTERM or Ctrl-C after saving exits 75 (`INTERRUPTED_EXIT_CODE`); a `ColorjaxError` is one line and exit 1.
    JAX, TensorFlow and the trainer are imported only once the flags parsed, so --help answers at once."""
    from absl import app, flags
    from ml_collections import config_flags

    given = list(sys.argv[1:] if argv is None else argv)
    cleared = cli.none_overrides(given)  # set by cli.parse_absl_flags once the other overrides are applied
    config_flags.DEFINE_config_file(
        "config",
        None,
        "Path to a config file (configs/X.py[:arg]).",
        lock_config=True,
        sys_argv=["colorjax train", *(arg for arg in given if arg not in cleared)],
    )
    flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and images (reused to resume).")
    flags.DEFINE_enum("distributed", "auto", ["auto", "on", "off"], "jax.distributed.initialize() on multi-host.")
    flags.mark_flags_as_required(["config", "workdir"])

    def train_main(argv):
        del argv
        if not flags.FLAGS["verbosity"].present:
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax and TF are chatty at INFO.
        elif flags.FLAGS.verbosity >= 0:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # TensorFlow's C++ notes too (read when TF is imported)
        from colorjax import config_lib, parallel
        from colorjax.train.trainer import INTERRUPTED_EXIT_CODE, TrainingInterrupted, log, train_and_evaluate

        config = flags.FLAGS.config
        try:
            config.get("seed")
        except OSError as e:
            # config_flags defers a failing get_config() (e.g. a missing data folder) to the first attribute access.
            cli.print_error(e.__cause__ or e)
            sys.exit(1)
        try:
            config_lib.validate(config)
        except config_lib.ConfigError as e:
            cli.print_error(e)
            sys.exit(cli.USAGE_ERROR)
        parallel.maybe_initialize_distributed(flags.FLAGS.distributed)
        try:
            train_and_evaluate(config, flags.FLAGS.workdir)
        except TrainingInterrupted as e:
            log.info("%s", e)
            sys.exit(INTERRUPTED_EXIT_CODE)
        except (
            ColorjaxError,  # data, checkpoints, a diverged loss, ...
            ValueError,
            FileNotFoundError,  # A pretrained weights file: the message names it and where to get it.
        ) as e:
            cli.print_error(e)
            sys.exit(1)

    flags_parser = cli.absl_flags_parser(USAGE, ["config", "workdir", "distributed", "verbosity"])
    app.run(train_main, argv=None if argv is None else ["colorjax train", *argv], flags_parser=flags_parser)
    return 0  # not reached: app.run exits


def run(argv: list[str] | None = None) -> None:
    """Command-line entry point: `main` under `cli.run_cli` (Ctrl-C before the trainer runs: one line, 130)."""
    cli.run_cli(main, argv)
