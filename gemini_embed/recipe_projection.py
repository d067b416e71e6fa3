"""Projected wall time of the recipe's stages (gemini_embed/recipe.py --dry_run), from
numbers measured on this project's CPU machine, scaled to the size the recipe runs at
and, by model FLOPs at an assumed MFU, to accelerators no session here has held.

Training: the recipe's own train step (configs/recipe.py, Gemma 3 270M at full depth)
timed on the CPU at a small batch; its batch does not fit a 2-core machine's patience,
so the step time and the model FLOPs (gemini_embed/flops.py, as the trainer logs them)
scale by examples per step (the same corpora: the same tokens per example).
Curation: the LLM tools' tokens per row and tokens/s measured in README "Curation".
Accelerators: seconds = model FLOPs / (peak × MFU); the MFU is an assumption, not a
measurement (no GPU or TPU was lent to the session that wrote this).
"""

from __future__ import annotations

import dataclasses

from gemini_embed import flops
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.presets import model_config

# Dense bf16 peak FLOP/s of each target (datasheets) and the MFU assumed there.
TARGETS = {
    'h100/h200': 989e12,      # one H100 / H200 SXM
    'tpu v5e-8': 8 * 197e12,  # 8 chips
    'tpu v5p-8': 4 * 459e12,  # 4 chips (v5p names count TensorCores)
}
TRAIN_MFU = 0.30   # training and LLM scoring (prefill-shaped work)
DECODE_MFU = 0.05  # LLM generation (decode is memory-bound)


@dataclasses.dataclass(frozen=True)
class StepMeasure:
  """One train step on the CPU: examples, seconds, model FLOPs (padded shapes)."""
  batch: int
  seconds: float
  flops: float


# The demo's packed rows hold 83% real tokens on these corpora (configs/demo.py, data.pack).
PACKED_REAL_FRACTION = 0.83


def _as_packed(batch: int, seconds: float, padded_flops: float, real_flops: float
               ) -> StepMeasure:
  """A packed step measured at a fixed worst-case row count, as the recipe's default
  packing (pack_row_counts 8) shapes it: real-token FLOPs / PACKED_REAL_FRACTION, the CPU
  time scaled with the FLOPs."""
  flops = real_flops / PACKED_REAL_FRACTION
  return StepMeasure(batch, seconds * flops / padded_flops, flops)


# Measured 2026-12-01 on this project's machine (2-core AMD EPYC, AVX-512 with
# avx512_bf16, load average 9–11 from other sessions' jobs: this process had about a third
# of a core), `python -m gemini_embed.train --config=configs/recipe.py:stage=S,corpora=C
# --config.batch_size=32 ...` on demo-sized corpora (the same sets, capped): metrics.jsonl's
# step_time and model_flops_per_s × step_time of the first step that did not compile —
# ONE step each, of one dataset (task-homogeneous batches): a rough figure.
CPU_STEPS = {
    # grad_cache_chunk=16, unpacked; step 3, man_pages: 2,621 real tokens (real-token model
    # FLOPs 1.62e12: the buckets pad 4.1×)
    'prefinetune': StepMeasure(batch=32, seconds=357.3, flops=6.654e12),
    # packed, pack_row_counts=1 (one compilation: every step gets the worst-case 20 rows of
    # 256 tokens), batch 8; step 2, code_docstring: 1,486 real tokens, model FLOPs 3.37e12
    # padded, 9.34e11 real-token — see _as_packed
    'finetune': _as_packed(batch=8, seconds=171.4, padded_flops=3.371e12, real_flops=9.34e11),
}


# build_corpora with the recipe's caps (none), this machine, 2026-12-01: 330 s, then 30 s
# for WordNet again after its uncapped category fix (host CPU work on any target).
CORPORA_SECONDS = 330 + 30 - 6


@dataclasses.dataclass(frozen=True)
class ToolMeasure:
  """An LLM tool on the CPU (README "Curation"): tokens per unit of work and tokens/s."""
  unit: str
  tokens_per_unit: float
  tokens_per_s: float
  generates: bool


# SmolLM2-135M, float32, batch 8, shared 2-core AMD EPYC (README "Curation: Throughput").
CPU_TOOLS = {
    'mine': ToolMeasure('row', 2279 / 8, 67.0, False),  # per row per neighbour (k = 8: 2,279)
    'filter': ToolMeasure('row', 157, 50.0, False),
    'synthesize_queries': ToolMeasure('passage', 992 / 2, 46.0, True),  # per query written
    'synthesize_classification': ToolMeasure('text', 63_000 / 360, 23.0, True),  # 45 × 8 texts
}
# Gemma 3 270M scored 40 tok/s where SmolLM2 scored 44 (README "Is the judge worth asking?").
CPU_LLM_SPEED = {'smollm2': 1.0, 'gemma3-270m': 40 / 44}
LLM_CONTEXT = 256  # tokens of a typical tool prompt, for the attention term of FLOPs/token


def train_seconds(stage: str, steps: int, batch: int) -> dict[str, float]:
  """{'cpu': s, target: s, ...} for `steps` steps of `batch` examples."""
  m = CPU_STEPS[stage]
  scale = steps * batch / m.batch
  out = {'cpu (2 cores)': scale * m.seconds}
  out.update({t: scale * m.flops / (peak * TRAIN_MFU) for t, peak in TARGETS.items()})
  return out


def _llm_config(llm: str) -> TransformerConfig:
  preset = {'smollm2': 'smollm2-135m', 'gemma3-270m': 'gemma3-270m'}.get(llm, 'gemma3-1b')
  return TransformerConfig.from_config(model_config(preset))


def tool_seconds(tool: str, units: int, llm: str) -> dict[str, float]:
  """{'cpu': s, target: s, ...} for `units` units of `tool`'s work with `llm`."""
  m = CPU_TOOLS[tool]
  tokens = units * m.tokens_per_unit
  out = {}
  if llm in CPU_LLM_SPEED:
    out['cpu (2 cores)'] = tokens / (m.tokens_per_s * CPU_LLM_SPEED[llm])
  per_token = flops.backbone_flops(_llm_config(llm), LLM_CONTEXT) / LLM_CONTEXT
  mfu = DECODE_MFU if m.generates else TRAIN_MFU
  out.update({t: tokens * per_token / (peak * mfu) for t, peak in TARGETS.items()})
  return out


def fmt(seconds: float | None) -> str:
  if seconds is None:
    return '—'
  for unit, size in (('d', 86400), ('h', 3600), ('min', 60)):
    if seconds >= size:
      return f'{seconds / size:.1f} {unit}'
  return f'{seconds:.0f} s'
