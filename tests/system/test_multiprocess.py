"""Data parallelism over two real processes on this machine (not fake devices): two `python -m colorjax.train`
processes joined by `jax.distributed` over loopback (gloo collectives on CPU) train one run in one workdir.

- both processes finish with bit-identical train states (each process's own copy) and the same evaluation;
- the checkpoint they wrote restores in a single process, and `colorize` colours a photo with it;
- kill -9 of both mid-run, then the same command again, ends bitwise equal to the uninterrupted run.

Every subprocess has a timeout; the coordinator listens on 127.0.0.1 only.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.paths import REPO
from PIL import Image

DRIVER = REPO / "tests" / "helpers" / "multiprocess_driver.py"
STEPS = 24
CHECKPOINT_EVERY = 4
TIMEOUT_S = 300  # per run of both processes; a healthy one takes well under a minute

# The demo's regression variant on the wheel-shipped sample photos, made as small as it goes: 4.6k parameters,
# 24x24 crops, a global batch of 4 (2 per process), one evaluation at the end.
TRAIN_ARGS = [
    "--config",
    str(REPO / "configs" / "demo.py") + ":regression,tiny",
    "--distributed=on",
    "--config.data.image_size=24",
    "--config.model.width=4",
    "--config.batch_size=4",
    f"--config.num_train_steps={STEPS}",
    f"--config.checkpoint_every={CHECKPOINT_EVERY}",
    f"--config.eval_every={STEPS}",
    f"--config.log_every={STEPS}",
    "--config.schedule.warmup_steps=2",
]

pytestmark = pytest.mark.slow  # three two-process runs: about two minutes on 2 CPU cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(workdir: Path, digests: Path) -> list[tuple[subprocess.Popen, Path]]:
    """Starts the two processes of one run; returns (process, log file) pairs."""
    digests.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    started = []
    for i in range(2):
        env = {
            **base,
            "PYTHONPATH": str(REPO),
            "JAX_PLATFORMS": "cpu",
            "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
            "JAX_NUM_PROCESSES": "2",
            "JAX_PROCESS_ID": str(i),
            "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
            "COLORJAX_TEST_DIGESTS": str(digests),
        }
        log = digests / f"log_{i}_{time.monotonic_ns()}.txt"
        with open(log, "w") as out:
            command = [sys.executable, str(DRIVER), *TRAIN_ARGS, "--workdir", str(workdir)]
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        started.append((process, log))
    return started


def kill(processes: list[tuple[subprocess.Popen, Path]]) -> None:
    for process, _ in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    for process, _ in processes:
        process.wait(timeout=60)


def finish(processes: list[tuple[subprocess.Popen, Path]]) -> list[str]:
    """Waits for both processes (killing both past the timeout); each one's output, checked for exit 0."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        for process, _ in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        kill(processes)
        tails = "\n".join(log.read_text()[-2000:] for _, log in processes)
        pytest.fail(f"a two-process run did not finish in {TIMEOUT_S} s:\n{tails}")
    outputs = [log.read_text() for _, log in processes]
    for (process, _), output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    return outputs


def read_digests(digests: Path, process: int) -> dict[int, dict[str, str]]:
    lines = (digests / f"process_{process}.jsonl").read_text().splitlines()
    return {record["step"]: record for record in map(json.loads, lines)}


def eval_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.startswith("  eval ")]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted two-process run: (workdir, digests folder, the two processes' outputs)."""
    root = tmp_path_factory.mktemp("straight")
    outputs = finish(start(root / "run", root / "digests"))
    return root / "run", root / "digests", outputs


def test_both_processes_hold_identical_states_and_evaluations(straight):
    workdir, digests, outputs = straight
    first, second = read_digests(digests, 0), read_digests(digests, 1)
    assert sorted(first) == list(range(CHECKPOINT_EVERY, STEPS + 1, CHECKPOINT_EVERY))
    assert first == second  # every saved step, every leaf, bit for bit
    assert len({record["state"] for record in first.values()}) == len(first)  # it trained
    assert eval_line(outputs[0]) == eval_line(outputs[1])
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir())[-1] == str(STEPS)


def test_the_checkpoint_restores_in_one_process_and_colorizes(straight, tmp_path):
    from helpers.multiprocess_driver import digest
    from helpers.photos import make_photo

    from colorjax.inference import open_colorizer

    workdir, digests, _ = straight
    colorizer = open_colorizer(workdir=workdir, step="latest")
    assert digest(colorizer.variables["params"]) == read_digests(digests, 0)[STEPS]["params"]

    photo = make_photo(np.random.default_rng(1), 40, 56)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    done = subprocess.run(
        [sys.executable, "-m", "colorjax.colorize", "--workdir", str(workdir)]
        + [str(tmp_path / "photo.png"), "--output", str(tmp_path / "out")],
        env={**env, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    colored = np.asarray(Image.open(next((tmp_path / "out").iterdir())).convert("RGB"))
    assert colored.shape == photo.shape
    spread = colored.astype(np.float32).max(-1) - colored.astype(np.float32).min(-1)
    assert spread.mean() > 2.0  # not gray: the model's chroma reached the output


def test_kill_both_processes_and_rerun_resumes_bitwise(straight, tmp_path):
    _, straight_digests, straight_outputs = straight
    workdir, digests = tmp_path / "run", tmp_path / "digests"
    processes = start(workdir, digests)
    first_checkpoint = workdir / "checkpoints" / str(CHECKPOINT_EVERY)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not first_checkpoint.is_dir():
            assert time.monotonic() < deadline, "no checkpoint within the timeout"
            assert all(p.poll() is None for p, _ in processes), processes[0][1].read_text()[-3000:]
            time.sleep(0.05)
    finally:
        kill(processes)  # kill -9, both, as soon as the first checkpoint is committed
    done_before_kill = read_digests(digests, 0)
    assert max(done_before_kill) < STEPS, "the run ended before the kill; the test needs more steps"

    outputs = finish(start(workdir, digests))
    resumed_from = int(outputs[0].split("Resuming from the checkpoint of step ")[1].split()[0])
    assert CHECKPOINT_EVERY <= resumed_from < STEPS
    final = read_digests(straight_digests, 0)[STEPS]
    for process in (0, 1):
        assert read_digests(digests, process)[STEPS] == final, f"process {process}"
    assert eval_line(outputs[0]) == eval_line(straight_outputs[0])
