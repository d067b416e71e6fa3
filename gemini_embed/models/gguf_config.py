"""GGUF metadata → TransformerConfig (llama.cpp's `llama` and `gemma3` architectures).

GGUF keys are `{arch}.block_count`, `{arch}.attention.head_count`, … What a
Gemma 3 file leaves implicit follows llama.cpp's own defaults for that
architecture: every 6th layer global (the rest sliding-window), local RoPE base
10k, queries scaled by 1/sqrt(head_dim) (1/sqrt(d/heads) for the 62-layer 27B).
Anything this model does not implement (partial rotary, RoPE frequency tables,
soft-capping, attention biases) is an error naming the file and the key.
"""

from __future__ import annotations

from typing import Any, Callable, Collection

import numpy as np

from gemini_embed.models.model_config import TransformerConfig, sliding_pattern

# GGUF `general.architecture` → our family.
ARCHITECTURES = {'llama': 'llama', 'gemma3': 'gemma3'}

_GEMMA3_PERIOD = 6              # llama.cpp: hparams.set_swa_pattern(6)
_GEMMA3_LOCAL_ROPE_BASE = 10_000.0
_GEMMA3_27B_LAYERS = 62         # llama.cpp scales queries by 1/sqrt(d/heads) only there

Metadata = Callable[[str, Any], Any]   # (key, default) → value


def _int(value, key: str, source: str) -> int:
  """A size or count from the metadata (GGUF stores these as u32): a positive integer."""
  if isinstance(value, (int, float)) and not isinstance(value, bool) and (
      float(value).is_integer() and value >= 1):
    return int(value)
  raise ValueError(f'{source}: {key}={value!r} is not a positive integer; the file is corrupt')


def _f32(value, key: str, source: str) -> float:
  """GGUF stores floats as float32: 1e-5 reads back as 9.99999974e-06. Keep the short form."""
  if isinstance(value, (int, float)) and not isinstance(value, bool):
    return float(str(np.float32(value)))
  raise ValueError(f'{source}: {key}={value!r} is not a number; the file is corrupt')


def _uniform(value, key: str, source: str) -> int:
  """A per-layer list must hold one value (we have one shape for all layers)."""
  if isinstance(value, (list, tuple)):
    if len(set(value)) != 1:
      raise ValueError(f'{source}: {key}={list(value)[:8]}… varies per layer; not supported')
    value = value[0]
  return _int(value, key, source)


def model_config_from_gguf(meta: Metadata, tensor_shapes: dict[str, tuple[int, ...]],
                           source: str) -> TransformerConfig:
  """meta(key, default) reads one metadata value; tensor_shapes: GGUF name → numpy shape."""
  arch = meta('general.architecture', None)
  if arch not in ARCHITECTURES:
    raise ValueError(f'{source}: general.architecture={arch!r} is not supported; supported '
                     f'GGUF architectures: {sorted(ARCHITECTURES)}')
  family = ARCHITECTURES[arch]

  def need(key):
    value = meta(f'{arch}.{key}', None)
    if value is None:
      raise ValueError(f'{source}: metadata key {arch}.{key} is missing')
    return value

  def opt(key, default):
    return meta(f'{arch}.{key}', default)

  def integer(value, key):
    return _int(value, f'{arch}.{key}', source)

  def real(value, key):
    return _f32(value, f'{arch}.{key}', source)

  width = integer(need('embedding_length'), 'embedding_length')
  layers = integer(need('block_count'), 'block_count')
  heads = _uniform(need('attention.head_count'), f'{arch}.attention.head_count', source)
  kv_heads = _uniform(opt('attention.head_count_kv', heads), f'{arch}.attention.head_count_kv',
                      source)
  head_dim = integer(opt('attention.key_length', width // heads), 'attention.key_length')
  if integer(opt('attention.value_length', head_dim), 'attention.value_length') != head_dim:
    raise ValueError(f'{source}: {arch}.attention.value_length differs from key_length; '
                     'not supported')
  rotary = integer(opt('rope.dimension_count', head_dim), 'rope.dimension_count')
  if rotary != head_dim:
    raise ValueError(f'{source}: {arch}.rope.dimension_count={rotary} < head_dim={head_dim} '
                     '(partial rotary embeddings) is not supported')
  for key in ('attn_logit_softcapping', 'final_logit_softcapping'):
    if opt(key, 0.0):
      raise ValueError(f'{source}: {arch}.{key}={opt(key, 0.0)} (soft-capping) is not supported')
  _check_tensors(tensor_shapes, source)

  scaling_kind = opt('rope.scaling.type', 'none') or 'none'
  if scaling_kind not in ('none', 'linear'):
    raise ValueError(f'{source}: {arch}.rope.scaling.type={scaling_kind!r} is not supported '
                     '(supported: none, linear)')
  factor = (real(opt('rope.scaling.factor', 1.0), 'rope.scaling.factor')
            if scaling_kind == 'linear' else 1.0)
  rope_base = real(opt('rope.freq_base', 10_000.0), 'rope.freq_base')

  fields: dict[str, Any] = {}
  if family == 'gemma3':
    fields['layer_types'] = _gemma3_layer_types(opt('attention.sliding_window_pattern', None),
                                                layers, source)
    fields['sliding_window'] = integer(need('attention.sliding_window'),
                                       'attention.sliding_window')
    fields['rope_local_base'] = real(opt('rope.freq_base_swa', _GEMMA3_LOCAL_ROPE_BASE),
                                     'rope.freq_base_swa')
    fields['query_pre_attn_scalar'] = float(
        width // heads if layers == _GEMMA3_27B_LAYERS else head_dim)
    if 'sliding' not in fields['layer_types']:
      fields.update(layer_types=(), sliding_window=0)
  else:
    fields['rope_local_base'] = rope_base

  return TransformerConfig(
      family=family,
      vocab_size=int(tensor_shapes['token_embd.weight'][0]),
      num_layers=layers,
      width=width,
      num_heads=heads,
      num_kv_heads=kv_heads,
      head_dim=head_dim,
      mlp_dim=_uniform(need('feed_forward_length'), f'{arch}.feed_forward_length', source),
      norm_eps=real(need('attention.layer_norm_rms_epsilon'),
                    'attention.layer_norm_rms_epsilon'),
      rope_base=rope_base,
      rope_scaling='linear' if factor != 1.0 else 'none',
      rope_scaling_factor=factor,
      qk_norm=family == 'gemma3',
      tie_embeddings='output.weight' not in tensor_shapes,
      **fields,
  )


def _gemma3_layer_types(pattern, layers: int, source: str) -> tuple[str, ...]:
  """An int period (every period-th layer global) or one bool per layer (True = sliding)."""
  if pattern is None:
    return sliding_pattern(layers, _GEMMA3_PERIOD)
  if isinstance(pattern, (list, tuple)):
    if len(pattern) != layers:
      raise ValueError(f'{source}: gemma3.attention.sliding_window_pattern has {len(pattern)} '
                       f'entries for {layers} layers')
    return tuple('sliding' if p else 'full' for p in pattern)
  return sliding_pattern(layers,
                         _int(pattern, 'gemma3.attention.sliding_window_pattern', source))


def _check_tensors(shapes: Collection[str], source: str) -> None:
  if 'token_embd.weight' not in shapes:
    raise ValueError(f'{source}: no token_embd.weight tensor; is this a decoder LLM?')
  if 'rope_freqs.weight' in shapes:
    raise ValueError(f'{source}: has rope_freqs.weight (Llama-3-style RoPE frequency scaling), '
                     'which is not supported')
  for bias in ('attn_q.bias', 'attn_k.bias', 'attn_v.bias', 'attn_output.bias'):
    if f'blk.0.{bias}' in shapes:
      raise ValueError(f'{source}: blk.0.{bias}: attention biases are not supported for this '
                       'architecture')
