"""Every command's manners, each in a fresh process: `--help` answers before JAX or TensorFlow is imported, a typo is
one `error:` line and exit 2, a mistake the user can fix is one `error:` line and exit 1, never a traceback."""

import os
import subprocess
import sys

import pytest
from helpers.paths import REPO

from colorjax.__main__ import COMMANDS

# The commands that parse with argparse (`cli.ArgumentParser`); train and prior use absl flags.
ARGPARSE_COMMANDS = [name for name in COMMANDS if name not in ("train", "prior")]

# `run_command(NAME, ARGV)`, then what it imported: "imported: jax=True tensorflow=False" on stdout.
PROBE = """
import sys
from colorjax.__main__ import run_command
try:
    run_command(sys.argv[1], sys.argv[2:])
except SystemExit as e:
    code = e.code
else:
    code = None
print(f"imported: jax={'jax' in sys.modules} tensorflow={'tensorflow' in sys.modules}")
sys.exit(code)
"""


def python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_", "COLORJAX_"))}
    return subprocess.run(
        [sys.executable, *args],
        env={**env, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_answers_before_jax_or_tensorflow_is_imported(command):
    done = python("-c", PROBE, command, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()
    assert "imported: jax=False tensorflow=False" in done.stdout, done.stdout[-500:]


def test_colorjax_help_lists_every_command():
    done = python("-m", "colorjax", "--help")
    assert done.returncode == 0
    listed = {line.split()[0] for line in done.stdout.split("commands:")[1].splitlines() if line.startswith("  ")}
    assert listed == set(COMMANDS)


def test_an_unknown_command_is_one_line_and_exit_2():
    done = python("-m", "colorjax", "colourise")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: unknown command 'colourise'; choose one of: train, colorize")


@pytest.mark.parametrize("command", ARGPARSE_COMMANDS)
def test_a_typo_option_is_one_line_and_exit_2(command):
    module = f"colorjax.{COMMANDS[command][0]}"  # `python -m colorjax.CMD`, as README writes it
    done = python("-m", module, "--outptu", "x")
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert lines[0].endswith(f"see python -m {module} --help")
    # The flag is named, not a required one it hides ("--output is required" once answered `colorize --outptu`).
    assert "unrecognized argument --outptu" in lines[0], lines[0]


def test_a_typo_flag_of_an_absl_command_is_one_line_and_exit_2(tmp_path):
    done = python("-m", "colorjax.prior", "--config=configs/demo.py", f"--out={tmp_path / 'p.npy'}", "--max-imgs=3")
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "max-imgs" in lines[0], done.stderr


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("colorjax.evaluate", ["--workdir", "/nonexistent/run"]),
        ("colorjax.colorize", ["--workdir", "/nonexistent/run", "samples", "--output", "{tmp}/out"]),
        ("colorjax.export", ["--workdir", "/nonexistent/run", "--format", "onnx", "--output", "{tmp}/out"]),
        ("colorjax.report", ["/nonexistent/run"]),
    ],
)
def test_a_run_that_is_not_there_is_one_line_without_a_traceback(module, args, tmp_path):
    done = python("-m", module, *[arg.format(tmp=tmp_path) for arg in args])
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "/nonexistent/run" in lines[0], done.stderr
    assert done.returncode == (2 if module == "colorjax.report" else 1)  # report: 2 for what it cannot read


def test_a_library_error_that_escapes_main_is_one_line(capsys, monkeypatch):
    from colorjax import ColorjaxError
    from colorjax.cli import common as cli

    def fails(argv):
        raise ColorjaxError("weights.npz is not a weights file;\n  download it again")

    monkeypatch.delenv("COLORJAX_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as caught:
        cli.run_cli(fails, [], errors=())
    assert caught.value.code == 1
    assert capsys.readouterr().err == "error: weights.npz is not a weights file; download it again\n"

    def usage(argv):
        raise cli.UsageError(["--config is required", "--out is required"])

    with pytest.raises(SystemExit) as caught:
        cli.run_cli(usage, [])
    assert caught.value.code == 2
    assert capsys.readouterr().err == "error: --config is required\nerror: --out is required\n"


def test_the_constants_written_out_for_a_light_help_agree_with_the_library():
    from colorjax.cli import export as export_command
    from colorjax.cli import prior as prior_command
    from colorjax.inference import export
    from colorjax.train import prior

    assert export_command.FORMATS == export.FORMATS
    assert prior_command.DEFAULT_BATCH_SIZE == prior.DEFAULT_BATCH_SIZE


def test_every_user_error_class_is_a_colorjax_error():
    from colorjax import ColorjaxError, checkpointing, config_lib, data, files, hints
    from colorjax.cli import common
    from colorjax.data import decode
    from colorjax.evaluation import evaluate, evaluator
    from colorjax.inference import colorizer, export, onnx_runtime
    from colorjax.train import trainer
    from colorjax.video import io as video
    from colorjax.weights import pth, registry

    errors = [
        evaluator.EvaluationError,
        evaluate.EvaluateError,
        checkpointing.CheckpointError,
        checkpointing.DamagedCheckpoint,
        config_lib.ConfigError,
        onnx_runtime.OnnxRuntimeError,
        export.ExportError,
        colorizer.InferenceError,
        registry.WeightsError,
        pth.PthError,
        trainer.TrainingDiverged,
        common.UsageError,
        data.DataError,
        decode.ImageError,
        video.VideoError,
        hints.HintError,
        files.OutputError,
    ]
    try:  # the app's, where its extra is installed
        from colorjax.serve import db, storage

        errors += [db.DatabaseError, storage.UploadError]
    except ImportError:
        pass
    assert [error for error in errors if not issubclass(error, ColorjaxError)] == []
    # Those that were ValueErrors still are: code that caught ValueError still catches them.
    assert issubclass(registry.WeightsError, ValueError) and issubclass(colorizer.InferenceError, ValueError)


def test_every_model_command_takes_one_model_group_with_one_step_default():
    """--workdir/--step/--weights/--model are one group (cli.common.add_model_arguments): the same --step default
    everywhere, the same as inference.open_model's, and --model's choices are the registry's published models."""
    import importlib
    import inspect

    from colorjax.cli import common as cli
    from colorjax.inference import open_model
    from colorjax.weights.registry import published_models

    assert inspect.signature(open_model).parameters["step"].default == cli.DEFAULT_STEP == "best"
    for name in ("colorize", "evaluate", "serve", "export", "hint_sweep"):
        parser = importlib.import_module(f"colorjax.cli.{name}").build_parser()
        actions = {action.dest: action for action in parser._actions}
        assert actions["step"].default == cli.DEFAULT_STEP, name
        if name != "hint_sweep":
            assert list(actions["model"].choices) == published_models(), name
