#!/usr/bin/env bash
# The GPU measurements of issue 15 in one prepared run (about 6 of the device's 15 minutes; no TensorFlow needed):
# ECCV16 inference at batch 64 (float32 / bf16, plain and space-to-batch dilated blocks) and the
# configs/zhang_eccv16.py trainer step at batch 40 and 256 (float32 / bf16), each against PyTorch on the same GPU,
# with lowered-program FLOPs and MFU; then a jax.profiler trace of the bf16 batch-256 step and its top kernels.
#
# Once, here in the repo root (the device image has jax, flax, optax, orbax, torch, absl-py, pyyaml, but no
# ml_collections and no TensorFlow; colorjax's bench and trainer-step imports need neither TF nor clu):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl ml-collections==1.1.0
# Then the device tool's `run` with carry [".whl"], timeout_s 540 and this command:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; bash colorjax/bench/gpu_check.sh
# Rows land in $OUT/bench_gpu.json and the log in $OUT/bench_gpu.log; the trace's summary is in the log.
set -uo pipefail
OUT=${OUT:-/tmp/colorjax_gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export COLORJAX_BENCH_TRACE_DIR=/tmp/colorjax_trace
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$OUT/bench_gpu.log"
timeout 420 python3 -m colorjax.bench zhang --out "$OUT/bench_gpu.json" 2>&1 | grep -v "^W0000\|^I0000" | tee -a "$OUT/bench_gpu.log"
timeout 100 python3 -m colorjax.bench profile --out "$OUT/profile_gpu.json" 2>&1 | grep -v "^W0000\|^I0000" | tee -a "$OUT/bench_gpu.log"
