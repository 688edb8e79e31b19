"""Every command's manners: `--help` exits 0 with usage; a mistake the user can fix is one `error:` line."""

import argparse
import os
import subprocess
import sys

import pytest
from helpers.paths import REPO

from colorjax.cli import common as cli


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("command", ["prior", "report", "bench", "colorize", "evaluate"])
def test_every_command_answers_help_with_usage_and_exit_0(command, capsys):
    module = __import__(f"colorjax.cli.{command}", fromlist=["main"])
    try:
        code = module.main(["--help"])
    except SystemExit as e:  # argparse's way
        code = e.code
    assert code in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m colorjax.") and command in out.splitlines()[0]


def test_step_type_accepts_latest_best_or_a_number():
    assert [cli.step_arg(s) for s in ("latest", "best", "0", "1200")] == [
        "latest",
        "best",
        0,
        1200,
    ]
    for bad in ("abc", "-1", "1.5", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="best, latest or a step number"):
            cli.step_arg(bad)


def test_a_usage_error_is_one_line_and_exit_2(capsys):
    parser = cli.ArgumentParser(prog="python -m colorjax.x")
    parser.add_argument("--step", type=cli.step_arg, default="latest")
    parser.add_argument("--output", required=True)
    with pytest.raises(SystemExit) as caught:
        parser.parse_args(["--step", "abc", "--output", "o"])
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "error: argument --step: --step must be best, latest or a step number, got 'abc'; "
        "see python -m colorjax.x --help\n"
    )


def test_run_cli_turns_user_errors_into_one_line(capsys, monkeypatch):
    def fails(argv):
        raise FileNotFoundError("photo.jpg does not exist;\n  check the path")

    with pytest.raises(SystemExit) as caught:
        cli.run_cli(fails)
    assert caught.value.code == 1
    assert capsys.readouterr().err == "error: photo.jpg does not exist; check the path\n"

    def interrupted(argv):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as caught:
        cli.run_cli(interrupted)
    assert caught.value.code == 130

    def bug(argv):
        raise ZeroDivisionError  # not a user error: the traceback stays

    with pytest.raises(ZeroDivisionError):
        cli.run_cli(bug)
    monkeypatch.setenv("COLORJAX_TRACEBACK", "1")  # developers see user errors' tracebacks too
    with pytest.raises(FileNotFoundError):
        cli.run_cli(fails)
    with pytest.raises(SystemExit) as caught:
        cli.run_cli(lambda argv: 3)
    assert caught.value.code == 3


def test_prior_config_typo_is_one_line_with_the_suggestion(tmp_path, capsys):
    from colorjax.cli import prior

    code = prior.main(
        [
            f"--config={REPO / 'configs' / 'zhang_eccv16.py'}",
            "--config.batch_sise=8",
            "--config.learning_rate=0.1",
            f"--out={tmp_path / 'p.npy'}",
        ]
    )
    assert code == 2
    assert error_lines(capsys.readouterr().err) == [
        "error: unknown config field --config.batch_sise; did you mean --config.batch_size?",
        "error: unknown config field --config.learning_rate; did you mean --config.optimizer.learning_rate?",
    ]
    assert not (tmp_path / "p.npy").exists()


# ---------------------------------------------------------------------------------- train (absl flags)


def run_train(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    return subprocess.run(
        [sys.executable, "-m", "colorjax.train", *args],
        env={**env, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def test_train_help_is_usage_and_exit_0():
    done = run_train("--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: python -m colorjax.train --config")
    assert "--workdir" in done.stdout and "--config.FIELD=VALUE" in done.stdout


def test_train_config_typos_are_one_line_each_with_the_suggestion(tmp_path):
    workdir = tmp_path / "run"
    done = run_train(
        "--config",
        "configs/demo.py",
        "--config.batch_sise=8",
        "--config.learning_rate=0.1",
        "--workdir",
        str(workdir),
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert error_lines(done.stderr) == [
        "error: unknown config field --config.batch_sise; did you mean --config.batch_size?",
        "error: unknown config field --config.learning_rate; did you mean --config.optimizer.learning_rate?",
    ]
    assert not workdir.exists()


def test_train_impossible_values_are_one_line_each(tmp_path):
    workdir = tmp_path / "run"
    done = run_train(
        "--config",
        "configs/demo.py",
        "--config.batch_size=0",
        "--config.data.image_size=0",
        "--config.num_train_steps=-5",
        "--workdir",
        str(workdir),
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert error_lines(done.stderr) == [
        "error: config.batch_size must be a positive integer (the global batch), got 0.",
        "error: config.num_train_steps must be an integer >= 0, got -5.",
        "error: config.data.image_size must be a positive integer (pixels), got 0.",
    ]
    assert not workdir.exists()


@pytest.mark.parametrize("command", ["colorize", "evaluate"])
def test_a_bad_step_is_one_line(command, capsys):
    module = __import__(f"colorjax.cli.{command}", fromlist=["main"])
    with pytest.raises(SystemExit) as caught:
        module.main(
            ["--workdir", "x", "--step", "abc", "photo.png", "--output", "o"][: 4 + (command == "colorize") * 3]
        )
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: argument --step: --step must be best, latest")
