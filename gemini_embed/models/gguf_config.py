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


class _Keys:
  """One architecture's metadata keys (`{arch}.{key}`), read and checked."""

  def __init__(self, meta: Metadata, arch: str, source: str):
    self.meta, self.arch, self.source = meta, arch, source

  def need(self, key):
    value = self.meta(f'{self.arch}.{key}', None)
    if value is None:
      raise ValueError(f'{self.source}: metadata key {self.arch}.{key} is missing')
    return value

  def opt(self, key, default):
    return self.meta(f'{self.arch}.{key}', default)

  def integer(self, key, default=None):
    return _int(self.need(key) if default is None else self.opt(key, default),
                f'{self.arch}.{key}', self.source)

  def real(self, key, default=None):
    return _f32(self.need(key) if default is None else self.opt(key, default),
                f'{self.arch}.{key}', self.source)

  def uniform(self, key, default=None):
    return _uniform(self.need(key) if default is None else self.opt(key, default),
                    f'{self.arch}.{key}', self.source)

  def refuse(self, why: str):
    raise ValueError(f'{self.source}: {self.arch}.{why}')


def model_config_from_gguf(meta: Metadata, tensor_shapes: dict[str, tuple[int, ...]],
                           source: str) -> TransformerConfig:
  """meta(key, default) reads one metadata value; tensor_shapes: GGUF name → numpy shape."""
  arch = meta('general.architecture', None)
  if arch not in ARCHITECTURES:
    raise ValueError(f'{source}: general.architecture={arch!r} is not supported; supported '
                     f'GGUF architectures: {sorted(ARCHITECTURES)}')
  family = ARCHITECTURES[arch]
  keys = _Keys(meta, arch, source)
  width, layers = keys.integer('embedding_length'), keys.integer('block_count')
  heads = keys.uniform('attention.head_count')
  head_dim = _check_unsupported(keys, width // heads)
  _check_tensors(tensor_shapes, source)
  rope_base, scaling, factor = _rope(keys)
  fields = (_gemma3_fields(keys, layers, width // heads, head_dim) if family == 'gemma3'
            else dict(rope_local_base=rope_base))
  return TransformerConfig(
      family=family,
      vocab_size=int(tensor_shapes['token_embd.weight'][0]),
      num_layers=layers,
      width=width,
      num_heads=heads,
      num_kv_heads=keys.uniform('attention.head_count_kv', heads),
      head_dim=head_dim,
      mlp_dim=keys.uniform('feed_forward_length'),
      norm_eps=keys.real('attention.layer_norm_rms_epsilon'),
      rope_base=rope_base,
      rope_scaling=scaling,
      rope_scaling_factor=factor,
      qk_norm=family == 'gemma3',
      tie_embeddings='output.weight' not in tensor_shapes,
      **fields,
  )


def _check_unsupported(keys: _Keys, default_head_dim: int) -> int:
  """The head dim, after refusing what the model code does not implement: value heads
  of another size, partial rotary embeddings, soft-capping."""
  head_dim = keys.integer('attention.key_length', default_head_dim)
  if keys.integer('attention.value_length', head_dim) != head_dim:
    keys.refuse('attention.value_length differs from key_length; not supported')
  rotary = keys.integer('rope.dimension_count', head_dim)
  if rotary != head_dim:
    keys.refuse(f'rope.dimension_count={rotary} < head_dim={head_dim} '
                '(partial rotary embeddings) is not supported')
  for key in ('attn_logit_softcapping', 'final_logit_softcapping'):
    if keys.opt(key, 0.0):
      keys.refuse(f'{key}={keys.opt(key, 0.0)} (soft-capping) is not supported')
  return head_dim


def _rope(keys: _Keys) -> tuple[float, str, float]:
  """(rope base, scaling kind, scaling factor); only linear scaling is supported."""
  kind = keys.opt('rope.scaling.type', 'none') or 'none'
  if kind not in ('none', 'linear'):
    keys.refuse(f'rope.scaling.type={kind!r} is not supported (supported: none, linear)')
  factor = keys.real('rope.scaling.factor', 1.0) if kind == 'linear' else 1.0
  return (keys.real('rope.freq_base', 10_000.0), 'linear' if factor != 1.0 else 'none',
          factor)


def _gemma3_fields(keys: _Keys, layers: int, width_per_head: int, head_dim: int
                   ) -> dict[str, Any]:
  """Gemma 3's sliding-window layout, local RoPE base and query scaling."""
  layer_types = _gemma3_layer_types(keys.opt('attention.sliding_window_pattern', None),
                                    layers, keys.source)
  if 'sliding' not in layer_types:
    layer_types, window = (), 0
  else:
    window = keys.integer('attention.sliding_window')
  return dict(
      layer_types=layer_types, sliding_window=window,
      rope_local_base=keys.real('rope.freq_base_swa', _GEMMA3_LOCAL_ROPE_BASE),
      query_pre_attn_scalar=float(width_per_head if layers == _GEMMA3_27B_LAYERS else head_dim))


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
