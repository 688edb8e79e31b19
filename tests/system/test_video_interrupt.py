"""Ctrl-C on a live `python -m colorjax.colorize` colouring a video: one line and exit 130, no traceback, and
neither the partial mp4 nor the `--frames` PNGs written so far are left behind."""

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

from helpers.paths import REPO  # noqa: E402
from helpers.videos import marked_frames, write_video  # noqa: E402


def test_ctrl_c_mid_video_leaves_nothing_and_prints_no_traceback(trained_run, tmp_path):
    clip = write_video(tmp_path / "long.mp4", marked_frames(400, 64, 48), 10)
    output = tmp_path / "out"
    # Ctrl-C as in a terminal: a suite started in the background (`cmd &` without job control) ignores SIGINT, a
    # child inherits that, Python keeps ignoring it, and the command would colour on to the end. A handled signal is
    # reset to the default in the child, where Python installs its own.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    process = subprocess.Popen(
        [
            sys.executable, "-m", "colorjax.colorize", "--workdir", str(trained_run), str(clip),
            "--output", str(output), "--frames",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    signal.signal(signal.SIGINT, inherited)

    def pngs_so_far() -> int:
        return sum(1 for _ in output.rglob("*.png")) if output.is_dir() else 0

    deadline = time.time() + 300  # a bound on waiting for the command to start, not a speed check
    while time.time() < deadline and process.poll() is None and pngs_so_far() < 3:
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()[1][-3000:]
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == "Interrupted."
    # No mp4, no PNG folder, no hidden partial; the --output folder the command made goes too (nothing was written).
    assert not output.exists()
