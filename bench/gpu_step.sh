#!/usr/bin/env bash
# The prepared GPU check of the train step (bench/gpu_step.py): MFU of ours and of the
# same step in PyTorch, gemma3-1b, bf16 compute, sequence 512. Under 5 min on an H200.
#
#   bench/gpu_step.sh            # on the GPU machine, from the repository root
#
# That machine's image has jax, torch and transformers but not ml_collections; flax and
# optax may differ from our pins. Carry ours as plain source beside the repository:
#   rm -rf .gpu_site && mkdir .gpu_site && cp -r .venv/lib/python3*/site-packages/{ml_collections,flax,optax} .gpu_site/
# (.gpu_site is git-ignored; pass it in the device tool's `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/.gpu_site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
python3 -c 'import jax, flax, optax, torch, transformers as t; print("jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__, "torch", torch.__version__, "transformers", t.__version__)'
python3 bench/gpu_step.py --model gemma3-1b --batch 32 --seq 512 --negatives 1 --remat full "$@"
