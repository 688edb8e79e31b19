#!/usr/bin/env bash
# Train on one GPU host (all of its GPUs, data parallel), or on several hosts (run this script on each of them).
#
# One host, every GPU:
#   CONFIG=configs/zhang_eccv16.py WORKDIR=/data/runs/zhang launch/gpu.sh [--config.batch_size=320 ...]
# Several hosts (a shared WORKDIR: an NFS path or gs://bucket/run), on host i of N:
#   CONFIG=... WORKDIR=... COORDINATOR=host0.example:12345 NUM_HOSTS=N HOST_ID=i launch/gpu.sh
#
# Optional: PYTHON (default python3), GPUS (e.g. "0,1,2,3" -> CUDA_VISIBLE_DEVICES).
# Install first: pip install -e '.[cuda]'  (CUDA 12; '.[cuda13]' for CUDA 13).
set -euo pipefail

fail() { echo "launch/gpu.sh: $*" >&2; exit 2; }

[[ -n "${CONFIG:-}" ]] || fail "set CONFIG to a config file, e.g. CONFIG=configs/zhang_eccv16.py"
[[ -n "${WORKDIR:-}" ]] || fail "set WORKDIR to the run directory (reused to resume), e.g. WORKDIR=runs/zhang"
[[ -f "${CONFIG%%:*}" ]] || fail "config file ${CONFIG%%:*} not found (run from the colorjax checkout)"
PYTHON="${PYTHON:-python3}"
NUM_HOSTS="${NUM_HOSTS:-1}"

if [[ -n "${GPUS:-}" ]]; then
  export CUDA_VISIBLE_DEVICES="$GPUS"
fi
# JAX may take most of the GPU memory; tf.data runs on the CPU only.
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}"

distributed=off
if (( NUM_HOSTS > 1 )); then
  [[ -n "${COORDINATOR:-}" ]] || fail "NUM_HOSTS=$NUM_HOSTS needs COORDINATOR=host:port (host 0's address)"
  [[ -n "${HOST_ID:-}" ]] || fail "NUM_HOSTS=$NUM_HOSTS needs HOST_ID (0..$((NUM_HOSTS - 1))) on each host"
  (( HOST_ID >= 0 && HOST_ID < NUM_HOSTS )) || fail "HOST_ID=$HOST_ID is outside 0..$((NUM_HOSTS - 1))"
  export JAX_COORDINATOR_ADDRESS="$COORDINATOR" JAX_NUM_PROCESSES="$NUM_HOSTS" JAX_PROCESS_ID="$HOST_ID"
  distributed=on
fi

"$PYTHON" -c "import jax; d = jax.local_devices(); print(f'{len(d)} local device(s): {d[0].device_kind}')" \
  || fail "JAX cannot start here; install with pip install -e '.[cuda]'"
exec "$PYTHON" -m colorjax.train --config "$CONFIG" --workdir "$WORKDIR" --distributed="$distributed" "$@"
