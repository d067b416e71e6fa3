#!/usr/bin/env bash
# The paper's two data-side ablations on the demo's pre-finetuned model, one run each way:
#   - duplicate-target mask off  → look at classification (targets are a few label texts)
#   - hard negatives off         → look at retrieval
# Both are compared with the demo's finetune-a (same seed, so the same example order).
#   make demo && experiments/ablations/run.sh [DEMO_WORKDIR]
set -euo pipefail
W=${1:-runs/demo}
PY=${PYTHON:-.venv/bin/python}
common="corpora=$W/corpora,llm=smollm2,stage=finetune,seed=1,init_from=$W/prefinetune"
$PY -m gemini_embed.train --config="configs/demo.py:$common,duplicate_mask=false" \
    --workdir="$W/ablate-no-dup-mask"
$PY -m gemini_embed.train --config="configs/demo.py:$common,hard_negatives=0" \
    --workdir="$W/ablate-no-hard-neg"
$PY -m gemini_embed.evaluate --suite="$W/corpora/dev" --peers=none --dims=768 \
    --workdir="full=$W/finetune-a,no-dup-mask=$W/ablate-no-dup-mask,no-hard-neg=$W/ablate-no-hard-neg" \
    --output="$W/ablations/results.json"
