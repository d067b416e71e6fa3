"""Hugging Face `config.json` → TransformerConfig (Gemma 3 text, Llama, Qwen2, Qwen3).

Reads both the transformers 5 `rope_parameters` layout and the older
`rope_theta` / `rope_scaling` / `rope_local_base_freq` keys. Anything this
model does not implement (other RoPE types, soft-capping, MLP bias) is an
error naming the key, never silently ignored.
"""

from __future__ import annotations

import json
import os
from typing import Any

from gemini_embed.models.model_config import TransformerConfig, normalise_layer_types

_FAMILY = {'gemma3_text': 'gemma3', 'gemma3': 'gemma3', 'llama': 'llama',
           'qwen2': 'qwen2', 'qwen3': 'qwen3'}
_ACTIVATION = {'gemma3': ('gelu_pytorch_tanh',), 'llama': ('silu',), 'qwen2': ('silu',),
               'qwen3': ('silu',)}


def read_hf_config(directory: str) -> dict[str, Any]:
  path = os.path.join(directory, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: missing; a Hugging Face checkpoint needs its config.json')
  with open(path) as f:
    return json.load(f)


def _rope(params: dict | None, where: str) -> tuple[float | None, str, float]:
  """(theta, scaling kind, factor) from one rope-parameters dict."""
  if not params:
    return None, 'none', 1.0
  kind = params.get('rope_type', params.get('type', 'default'))
  theta = params.get('rope_theta')
  if kind == 'default':
    return theta, 'none', 1.0
  if kind == 'linear':
    return theta, 'linear', float(params['factor'])
  raise ValueError(f'{where}: rope type {kind!r} is not supported (supported: default, linear)')


def model_config_from_hf(hf: dict[str, Any], source: str = 'config.json') -> TransformerConfig:
  if hf.get('model_type') == 'gemma3' and 'text_config' in hf:
    hf = {**hf['text_config'], 'model_type': 'gemma3_text'}
  model_type = hf.get('model_type')
  if model_type not in _FAMILY:
    raise ValueError(f'{source}: model_type={model_type!r} is not supported; '
                     f'supported: {sorted(_FAMILY)}')
  family = _FAMILY[model_type]
  act = hf.get('hidden_activation') or hf.get('hidden_act')
  if act not in _ACTIVATION[family]:
    raise ValueError(f'{source}: activation {act!r} is not supported for {model_type}')
  for key in ('attn_logit_softcapping', 'final_logit_softcapping'):
    if hf.get(key):
      raise ValueError(f'{source}: {key}={hf[key]} is not supported')
  if hf.get('mlp_bias'):
    raise ValueError(f'{source}: mlp_bias=true is not supported')
  if hf.get('attention_bias') and family != 'qwen2':
    raise ValueError(f'{source}: attention_bias=true (biases on q/k/v/o) is not supported')

  heads = hf['num_attention_heads']
  rope_params = hf.get('rope_parameters')
  if family == 'gemma3':
    if rope_params and 'full_attention' in rope_params:
      g_theta, scaling, factor = _rope(rope_params['full_attention'], f'{source}: rope_parameters.full_attention')
      l_theta, l_kind, _ = _rope(rope_params.get('sliding_attention'), f'{source}: rope_parameters.sliding_attention')
      if l_kind != 'none':
        raise ValueError(f'{source}: scaled RoPE on sliding layers is not supported')
    else:
      g_theta, scaling, factor = _rope(hf.get('rope_scaling'), f'{source}: rope_scaling')
      g_theta = hf.get('rope_theta', g_theta)
      l_theta = hf.get('rope_local_base_freq')
    g_theta = g_theta or 1_000_000.0
    l_theta = l_theta or 10_000.0
  else:
    if rope_params:
      g_theta, scaling, factor = _rope(rope_params, f'{source}: rope_parameters')
    else:
      g_theta, scaling, factor = _rope(hf.get('rope_scaling'), f'{source}: rope_scaling')
      g_theta = hf.get('rope_theta', g_theta)
    g_theta = g_theta or 10_000.0
    l_theta = g_theta

  layer_types = normalise_layer_types(hf.get('layer_types'))
  if family == 'gemma3' and not layer_types:
    period = hf.get('sliding_window_pattern', 6)
    layer_types = tuple('full' if (i + 1) % period == 0 else 'sliding'
                        for i in range(hf['num_hidden_layers']))
  if 'sliding' not in layer_types:
    layer_types = ()
  tie_default = family == 'gemma3'
  return TransformerConfig(
      family=family,
      vocab_size=hf['vocab_size'],
      num_layers=hf['num_hidden_layers'],
      width=hf['hidden_size'],
      num_heads=heads,
      num_kv_heads=hf.get('num_key_value_heads') or heads,
      head_dim=hf.get('head_dim') or hf['hidden_size'] // heads,
      mlp_dim=hf['intermediate_size'],
      norm_eps=hf.get('rms_norm_eps', 1e-6),
      rope_base=float(g_theta),
      rope_local_base=float(l_theta),
      rope_scaling=scaling,
      rope_scaling_factor=factor,
      sliding_window=int(hf.get('sliding_window') or 0) if layer_types else 0,
      layer_types=layer_types,
      qkv_bias=family == 'qwen2',
      qk_norm=family in ('gemma3', 'qwen3'),
      query_pre_attn_scalar=float(hf.get('query_pre_attn_scalar') or 0.0),
      tie_embeddings=bool(hf.get('tie_word_embeddings', tie_default)),
  )
