#!/usr/bin/env bash
# Run N training processes on this machine (CPU), as a multi-host pod would:
#   launch/local_multiprocess.sh 2 --config=configs/prefinetune.py:tiny --workdir=runs/mp
# Each process sees its own CPU devices; jax.distributed joins them into one mesh.
set -euo pipefail
n=${1:?usage: $0 NUM_PROCESSES TRAIN_FLAGS...}; shift
port=${PORT:-$((20000 + RANDOM % 20000))}
py=${PYTHON:-python}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' INT TERM
for ((i = 0; i < n; i++)); do
  $py -m gemini_embed.train --coordinator_address="127.0.0.1:$port" \
      --num_processes="$n" --process_id="$i" "$@" &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  rc=0; wait "${pids[$i]}" || rc=$?
  echo "local_multiprocess.sh: process $i exited with $rc" >&2
  ((rc)) && status=$rc
done
exit $status
