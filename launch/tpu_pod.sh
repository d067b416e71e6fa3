#!/usr/bin/env bash
# Launch the same command on every worker of a Cloud TPU VM pod slice:
#   TPU=my-v5e-256 ZONE=us-west4-a launch/tpu_pod.sh \
#       --config=configs/finetune.py --workdir=gs://bucket/runs/ft1
# Every host runs `python -m gemini_embed.train --multiprocess ...`; jax.distributed
# discovers the pod, grain gives each host its slice of every global batch, orbax
# writes one checkpoint. Re-running the same line resumes from the workdir.
set -euo pipefail
: "${TPU:?set TPU to the TPU VM name}" "${ZONE:?set ZONE}"
repo=${REPO_DIR:-gemini_embed}
args=$(printf '%q ' "$@")
gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="
  cd $repo && (test -d .venv || (python3 -m venv .venv && .venv/bin/pip install -q -e '.[tpu]')) &&
  .venv/bin/python -m gemini_embed.train --multiprocess $args"
