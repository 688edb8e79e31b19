#!/usr/bin/env bash
# Cloud TPU VM lifecycle for colorjax: create, set up, run on every worker, delete.
#
#   TPU_NAME=cj-v4 ZONE=us-central2-b ACCELERATOR_TYPE=v4-32 launch/tpu_vm.sh create
#   TPU_NAME=cj-v4 ZONE=us-central2-b launch/tpu_vm.sh setup          # copies this checkout, pip install '.[tpu]'
#   TPU_NAME=cj-v4 ZONE=us-central2-b CONFIG=configs/zhang_eccv16.py WORKDIR=gs://my-bucket/runs/zhang \
#       launch/tpu_vm.sh run [--config.batch_size=1024 ...]
#   TPU_NAME=cj-v4 ZONE=us-central2-b launch/tpu_vm.sh logs           # tail the run's log on worker 0
#   TPU_NAME=cj-v4 ZONE=us-central2-b launch/tpu_vm.sh delete
#
# Optional: PROJECT (gcloud project), TPU_SOFTWARE (runtime version, default tpu-ubuntu2204-base), SPOT=1 (preemptible
# capacity: a preempted run saves a checkpoint on SIGTERM; `run` again resumes it), TFDS_DATA_DIR (gs:// path of
# prepared TFDS datasets, passed as --config.data.tfds_data_dir).
# WORKDIR must be a gs:// path on a multi-host slice: every worker writes its share of the same checkpoints.
set -euo pipefail

fail() { echo "launch/tpu_vm.sh: $*" >&2; exit 2; }
need() { for v in "$@"; do [[ -n "${!v:-}" ]] || fail "set $v (see the usage at the top of this script)"; done; }

command -v gcloud >/dev/null || fail "gcloud is not installed (https://cloud.google.com/sdk/docs/install)"
need TPU_NAME ZONE
gcloud_args=(--zone "$ZONE")
[[ -n "${PROJECT:-}" ]] && gcloud_args+=(--project "$PROJECT")
remote_dir="colorjax"

on_all_workers() {
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${gcloud_args[@]}" --worker=all --command "$1"
}

case "${1:-}" in
  create)
    need ACCELERATOR_TYPE
    extra=()
    [[ "${SPOT:-0}" == 1 ]] && extra+=(--spot)
    gcloud compute tpus tpu-vm create "$TPU_NAME" "${gcloud_args[@]}" \
      --accelerator-type "$ACCELERATOR_TYPE" --version "${TPU_SOFTWARE:-tpu-ubuntu2204-base}" "${extra[@]}"
    ;;
  setup)
    archive="$(mktemp -d)/colorjax.tar.gz"
    git -C "$(dirname "$0")/.." archive --format=tar.gz -o "$archive" HEAD
    gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:colorjax.tar.gz" "${gcloud_args[@]}" --worker=all
    on_all_workers "rm -rf $remote_dir && mkdir -p $remote_dir && tar -xzf colorjax.tar.gz -C $remote_dir && \
      python3 -m venv ~/cj-venv && ~/cj-venv/bin/pip install -q -U pip && \
      ~/cj-venv/bin/pip install -q -e '$remote_dir[tpu]' && \
      ~/cj-venv/bin/python -c 'import jax; print(jax.process_index(), jax.device_count(), \"devices\")'"
    ;;
  run)
    need CONFIG WORKDIR
    shift
    flags=("$@")
    [[ -n "${TFDS_DATA_DIR:-}" ]] && flags+=("--config.data.tfds_data_dir=$TFDS_DATA_DIR")
    quoted="$(printf ' %q' "${flags[@]}")"
    # Every worker runs the same command; jax.distributed finds the slice's other workers by itself.
    on_all_workers "cd $remote_dir && nohup ~/cj-venv/bin/python -m colorjax.train --config $(printf %q "$CONFIG") \
      --workdir $(printf %q "$WORKDIR") --distributed=on$quoted > ~/colorjax-train.log 2>&1 &"
    echo "Started on every worker; follow with: TPU_NAME=$TPU_NAME ZONE=$ZONE $0 logs"
    ;;
  logs)
    gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${gcloud_args[@]}" --worker=0 --command "tail -f ~/colorjax-train.log"
    ;;
  delete)
    gcloud compute tpus tpu-vm delete "$TPU_NAME" "${gcloud_args[@]}" --quiet
    ;;
  *)
    fail "usage: $0 create|setup|run|logs|delete (with TPU_NAME, ZONE and the variables named at the top)"
    ;;
esac
