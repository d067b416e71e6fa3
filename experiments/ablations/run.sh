#!/usr/bin/env bash
# The paper's two data-side ablations on the demo's pre-finetuned model, one run each way:
#   - duplicate-target mask off  → look at classification (targets are a few label texts)
#   - hard negatives off         → look at retrieval
# Both are compared with the demo's finetune-a (same seed, so the same example order).
# The decision (is an effect real?) is read on the suite's select half, the table's numbers
# on its report half; both print paired bootstrap comparisons (P(A > B) and the interval
# of the difference), and an effect is called only when the interval excludes 0 on select.
#   make demo && experiments/ablations/run.sh [DEMO_WORKDIR]
set -euo pipefail
W=${1:-runs/demo}
PY=${PYTHON:-.venv/bin/python}
# the demo's LLM (demo.json: gemma3-270m by default, smollm2 with --llm=smollm2)
LLM=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['llm'])" "$W/demo.json")
common="corpora=$W/corpora,llm=$LLM,stage=finetune,seed=1,init_from=$W/prefinetune"
$PY -m gemini_embed.train --config="configs/demo.py:$common,duplicate_mask=false" \
    --workdir="$W/ablate-no-dup-mask"
$PY -m gemini_embed.train --config="configs/demo.py:$common,hard_negatives=0" \
    --workdir="$W/ablate-no-hard-neg"
for half in select report; do
  $PY -m gemini_embed.evaluate --suite="$W/corpora/dev" --half=$half --peers=none --dims=768 \
      --workdir="full=$W/finetune-a,no-dup-mask=$W/ablate-no-dup-mask,no-hard-neg=$W/ablate-no-hard-neg" \
      --compare=full@768,no-dup-mask@768 --compare=full@768,no-hard-neg@768 \
      --output="$W/ablations/results-$half.json"
done
