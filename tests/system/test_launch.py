"""The launch scripts check their variables and build the right command (a fake python records it)."""

import os
import stat
import subprocess
from pathlib import Path

from helpers.paths import REPO


def fake_python(tmp_path: Path) -> Path:
    """A stand-in interpreter that prints its arguments and the distributed environment."""
    script = tmp_path / "python"
    script.write_text(
        "#!/usr/bin/env bash\n"
        'if [[ "$1" == "-c" ]]; then echo "1 local device(s): fake"; exit 0; fi\n'
        'echo "ARGS $*"\n'
        'echo "ENV ${JAX_COORDINATOR_ADDRESS:-} ${JAX_NUM_PROCESSES:-} ${JAX_PROCESS_ID:-}"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def run_gpu(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("CONFIG", "WORKDIR", "NUM_HOSTS")}
    environment.update(PYTHON=str(fake_python(tmp_path)), **env)
    return subprocess.run(
        ["bash", "launch/gpu.sh", "--config.batch_size=64"],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
    )


def test_gpu_launch_requires_config_and_workdir(tmp_path):
    done = run_gpu(tmp_path)
    assert done.returncode == 2 and "set CONFIG" in done.stderr
    done = run_gpu(tmp_path, CONFIG="configs/demo.py")
    assert done.returncode == 2 and "set WORKDIR" in done.stderr
    done = run_gpu(tmp_path, CONFIG="configs/nope.py", WORKDIR="w")
    assert done.returncode == 2 and "not found" in done.stderr


def test_gpu_launch_single_host_command(tmp_path):
    done = run_gpu(tmp_path, CONFIG="configs/demo.py:tiny", WORKDIR="runs/x")
    assert done.returncode == 0, done.stderr
    assert (
        "ARGS -m colorjax.train --config configs/demo.py:tiny --workdir runs/x --distributed=off "
        "--config.batch_size=64" in done.stdout
    )


def test_gpu_launch_multi_host_sets_the_coordinator(tmp_path):
    done = run_gpu(tmp_path, CONFIG="configs/demo.py", WORKDIR="w", NUM_HOSTS="4")
    assert done.returncode == 2 and "COORDINATOR" in done.stderr
    done = run_gpu(
        tmp_path,
        CONFIG="configs/demo.py",
        WORKDIR="w",
        NUM_HOSTS="4",
        COORDINATOR="h0:1234",
        HOST_ID="7",
    )
    assert done.returncode == 2 and "outside 0..3" in done.stderr
    done = run_gpu(
        tmp_path,
        CONFIG="configs/demo.py",
        WORKDIR="w",
        NUM_HOSTS="4",
        COORDINATOR="h0:1234",
        HOST_ID="2",
    )
    assert done.returncode == 0, done.stderr
    assert "--distributed=on" in done.stdout and "ENV h0:1234 4 2" in done.stdout


def test_tpu_launch_checks_its_variables(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    gcloud = fake_bin / "gcloud"
    gcloud.write_text('#!/usr/bin/env bash\necho "GCLOUD $*"\n')
    gcloud.chmod(gcloud.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "TPU_NAME": "cj", "ZONE": "z1"}
    done = subprocess.run(["bash", "launch/tpu_vm.sh", "create"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "set ACCELERATOR_TYPE" in done.stderr
    env["ACCELERATOR_TYPE"] = "v4-8"
    done = subprocess.run(["bash", "launch/tpu_vm.sh", "create"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0
    assert "GCLOUD compute tpus tpu-vm create cj --zone z1 --accelerator-type v4-8" in done.stdout
    done = subprocess.run(["bash", "launch/tpu_vm.sh", "run"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "set CONFIG" in done.stderr
    env.update(CONFIG="configs/demo.py", WORKDIR="gs://b/run")
    done = subprocess.run(
        ["bash", "launch/tpu_vm.sh", "run", "--config.batch_size=1024"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    assert (
        "--worker=all" in done.stdout
        and "--workdir gs://b/run --distributed=on --config.batch_size=1024" in done.stdout
    )
