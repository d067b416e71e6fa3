#!/usr/bin/env bash
# One fine-tune lever of the demo, decided with three seeds (README "What each lever
# bought"): the demo's fine-tune with extra `--config.` overrides against the default
# fine-tune, seed by seed, from the demo's pre-finetune; both halves of the dev suite at
# 768 dims; paired bootstrap per seed and pooled over the seeds (`eval.compare --pooled`).
# Read the decision on select, state the effect from report.
#   make demo && experiments/levers/run.sh DEMO_WORKDIR NAME [--config.FIELD=VALUE ...]
#   experiments/levers/run.sh runs/demo cosine --config.optim.schedule=cosine
# SEEDS="1 2 3" (default) picks the seeds; ARGS=k=v,... adds configs/demo.py arguments to
# the lever's runs only (ARGS=steps=28). Runs go to DEMO/levers/{base,NAME}-sS; finished
# runs are not retrained (rerun to resume), so several levers share the baselines.
set -euo pipefail
W=${1:?usage: run.sh DEMO_WORKDIR NAME [--config.FIELD=VALUE ...]}
NAME=${2:?usage: run.sh DEMO_WORKDIR NAME [--config.FIELD=VALUE ...]}
shift 2
PY=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-1 2 3}
[ "$NAME" != base ] || { echo "run.sh: NAME 'base' is the baseline's; pick another" >&2; exit 2; }
# the demo's LLM and size (demo.json: gemma3-270m by default; quick for a `make demo-quick` run)
MODE=$($PY -c "import json, sys; m = json.load(open(sys.argv[1]))
print(m['llm'] + (',quick' if m['quick'] else ''))" "$W/demo.json")
common="corpora=$W/corpora,llm=$MODE,stage=finetune,init_from=$W/prefinetune"
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$W/jax_cache}
runs=""; compare=()
for s in $SEEDS; do
  $PY -m gemini_embed.train --config="configs/demo.py:$common,seed=$s" --workdir="$W/levers/base-s$s"
  $PY -m gemini_embed.train --config="configs/demo.py:$common,seed=$s${ARGS:+,$ARGS}" "$@" \
      --workdir="$W/levers/$NAME-s$s"
  runs="$runs$NAME-s$s=$W/levers/$NAME-s$s,base-s$s=$W/levers/base-s$s,"
  compare+=("--compare=$NAME-s$s@768,base-s$s@768")
done
for half in select report; do
  out="$W/levers/$NAME-$half.json"
  $PY -m gemini_embed.evaluate --suite="$W/corpora/dev" --half=$half --peers=none --dims=768 \
      --workdir="${runs%,}" --output="$out"
  $PY -m gemini_embed.eval.compare --results="$out" "${compare[@]}" --pooled \
      | tee "$W/levers/$NAME-$half.txt"
done
