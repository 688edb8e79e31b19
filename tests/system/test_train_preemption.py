"""Preemption: a live `python -m colorjax.train` process sent SIGTERM mid-run saves a checkpoint at the current step
and exits with the "interrupted" code, and the checkpoint restores."""

import os
import signal
import subprocess
import sys
import time

from helpers.paths import REPO

from colorjax import runs
from colorjax.train import trainer as train


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(photo_folder, tmp_path):
    """Preemption: SIGTERM mid-run -> checkpoint at the current step, exit 0, and a rerun resumes from it."""
    workdir = tmp_path / "run"
    overrides = [
        f"--config.data.source=folder:{photo_folder}",
        "--config.num_train_steps=100000",
        "--config.checkpoint_every=5",
        "--config.eval_every=0",
        "--config.data.image_size=24",
        "--config.model.width=4",
        "--config.batch_size=4",
        "--config.data.max_failed_fraction=0.5",
    ]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "colorjax.train",
            "--config",
            str(REPO / "configs" / "demo.py") + ":regression",
            "--workdir",
            str(workdir),
            *overrides,
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not (workdir / "checkpoints" / "5").exists():
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == train.INTERRUPTED_EXIT_CODE, output[-3000:]  # not finished: not 0
    assert "Stopped at step" in output
    stopped_at = int(output.split("Stopped at step ")[1].split(";")[0])
    checkpoints = runs.open_checkpoints(workdir, read_only=True)
    assert checkpoints.latest_step() == stopped_at >= 5
    _, meta = checkpoints.restore(stopped_at)
    assert meta["step"] == stopped_at
