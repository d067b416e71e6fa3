#!/usr/bin/env bash
# One TPU VM worker's part of a pod run (launch/pod.py `run` starts it on every worker
# under nohup; `babysit` waits for it): run the trainer, keep its log in logs/ and copy
# it to WORKDIR/logs/HOST.log every minute and at the end (a pre-empted VM loses its disk).
#   launch/worker_run.sh --config=configs/pod.py:model=gemma3-4b --workdir=gs://b/run
# GEMINI_EMBED_SINGLE_HOST=1 drops --multiprocess (a one-host stand-in for a slice, as
# in tests/launch/fake_gcloud.py). Exit status: the trainer's (0 finished, 42 pre-empted).
set -uo pipefail
cd "$(dirname "$0")/.."
workdir=
for arg in "$@"; do
  case $arg in --workdir=*) workdir=${arg#--workdir=} ;; esac
done
: "${workdir:?launch/worker_run.sh: the train flags need --workdir=DIR}"
py=${PYTHON:-.venv/bin/python}
mkdir -p logs
log=logs/train-$(hostname).log
copy_log() {
  "$py" - "$log" "$workdir" <<'PY'
import sys
from etils import epath
log, workdir = sys.argv[1:]
out = epath.Path(workdir) / 'logs'
out.mkdir(parents=True, exist_ok=True)
(out / epath.Path(log).name).write_text(epath.Path(log).read_text())
PY
}
multiprocess=--multiprocess
[[ ${GEMINI_EMBED_SINGLE_HOST:-0} == 1 ]] && multiprocess=
"$py" -m gemini_embed.train $multiprocess "$@" > "$log" 2>&1 &
pid=$!
echo "$pid" > logs/train.pid
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT   # a stop or a pre-emption notice reaches the trainer
while kill -0 "$pid" 2>/dev/null; do
  sleep "${LOG_COPY_EVERY_S:-60}" & wait $! 2>/dev/null
  kill -0 "$pid" 2>/dev/null && copy_log
done
wait "$pid"; status=$?
copy_log || echo "worker_run.sh: could not copy $log to $workdir/logs" >&2
rm -f logs/train.pid
exit $status
