#!/usr/bin/env bash
# The prepared GPU check of the LLM runtime (bench/llm_decode.py): decode tokens/s at batch
# 1, 8, 32 of a Gemma 3 270M-shaped and a Gemma 3 1B-shaped model (random weights, bf16:
# the GGUF files are larger than what can be carried there) against the H200's HBM
# bandwidth bound (4.8 TB/s). A few minutes on an H200.
#
#   bench/llm_decode_gpu.sh      # on the GPU machine, from the repository root
#
# Carry flax/optax/ml_collections as for bench/gpu_step.sh (.gpu_site).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/.gpu_site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for model in gemma3-270m gemma3-1b; do
  python3 bench/llm_decode.py --random "$model" --no_torch --bandwidth_gbs 4800 \
    --batches 1,8,32 --prompt_len 128 --new 64 --repeats 2 "$@"
done
