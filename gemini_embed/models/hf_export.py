"""An Embedder's backbone → a Hugging Face base model (safetensors + config.json).

The reverse of hf_import: the same name table (param_import.hf_name_map), each
Layout inverted, stacked layers unstacked. The tensors are those of the base model
(`LlamaModel`, `Gemma3TextModel`, …: `embed_tokens.weight`, `layers.{i}.…`,
`norm.weight`), what `AutoModel` and sentence-transformers load; an untied LM head is
not part of the embedding and is left out.

Attention: Gemma 3 has transformers' own bidirectional switch
(`use_bidirectional_attention`, EmbeddingGemma's): its sliding layers then attend
within |i - j| < W // 2 + 1 (the config turns the saved window W into W // 2 + 1 on
load), which is our symmetric |i - j| <= W // 2 (models/masks.py). Llama and Qwen have
no switch: config.json's `auto_map` points `AutoModel` at hf_bidirectional.py, copied
beside the weights (`trust_remote_code=True`).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
from flax.traverse_util import flatten_dict

from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.param_import import hf_name_map

# Our family → (model_type, base-model class, activation key and value).
_HF = {
    'gemma3': ('gemma3_text', 'Gemma3TextModel', ('hidden_activation', 'gelu_pytorch_tanh')),
    'llama': ('llama', 'LlamaModel', ('hidden_act', 'silu')),
    'qwen2': ('qwen2', 'Qwen2Model', ('hidden_act', 'silu')),
    'qwen3': ('qwen3', 'Qwen3Model', ('hidden_act', 'silu')),
}
REMOTE_CODE = 'modeling_bidirectional.py'
REMOTE_TOKENIZER = 'modeling_bidirectional.ExportedTokenizer'
_REMOTE_SOURCE = os.path.join(os.path.dirname(__file__), 'hf_bidirectional.py')


def needs_remote_code(cfg: TransformerConfig) -> bool:
  """Whether transformers needs our modeling file to run this family bidirectionally."""
  return not cfg.is_gemma


def hf_tensors(backbone_params: dict, cfg: TransformerConfig, dtype) -> dict[str, np.ndarray]:
  """Base-model tensor name → array (HF layout, `dtype`) from the backbone's pure dict."""
  flat = flatten_dict(backbone_params)
  out = {}
  for path, (name, layout) in hf_name_map(cfg).items():
    if path == ('lm_head',):
      continue
    if path not in flat:
      raise KeyError(f'backbone parameter {"/".join(path)} is missing; is model.json right?')
    value = np.asarray(flat[path])
    base = name[len('model.'):] if name.startswith('model.') else name
    if '{i}' in base:
      for layer in range(cfg.num_layers):
        out[base.format(i=layer)] = np.ascontiguousarray(layout.inverse(value[layer]).astype(dtype))
    else:
      out[base] = np.ascontiguousarray(layout.inverse(value).astype(dtype))
  return out


def _int_if_whole(x: float) -> int | float:
  """transformers' strict configs want an int where the value is one."""
  return int(x) if float(x).is_integer() else float(x)


def _rope(theta: float, scaling: str = 'none', factor: float = 1.0) -> dict:
  if scaling == 'linear':
    return {'rope_type': 'linear', 'rope_theta': theta, 'factor': factor}
  return {'rope_type': 'default', 'rope_theta': theta}


def hf_config(cfg: TransformerConfig, *, dtype: str, max_positions: int,
              special_ids: dict[str, int | None]) -> dict:
  """transformers config.json of the base model (transformers 5 `rope_parameters`)."""
  model_type, cls, (act_key, act) = _HF[cfg.family]
  out = {
      'architectures': [cls if not needs_remote_code(cfg) else 'Bidirectional' + cls],
      'model_type': model_type,
      'vocab_size': cfg.vocab_size,
      'hidden_size': cfg.width,
      'intermediate_size': cfg.mlp_dim,
      'num_hidden_layers': cfg.num_layers,
      'num_attention_heads': cfg.num_heads,
      'num_key_value_heads': cfg.num_kv_heads,
      'head_dim': cfg.head_dim,
      'rms_norm_eps': cfg.norm_eps,
      act_key: act,
      'max_position_embeddings': max_positions,
      'tie_word_embeddings': cfg.tie_embeddings,
      'attention_bias': False,
      'mlp_bias': False,
      'dtype': dtype,
      'use_cache': False,
      **{f'{k}_token_id': v for k, v in special_ids.items()},
  }
  if cfg.is_gemma:
    sliding = cfg.layer_is_sliding()
    out.update(
        layer_types=['sliding_attention' if s else 'full_attention' for s in sliding],
        sliding_window=cfg.sliding_window or max_positions,
        use_bidirectional_attention=True,
        query_pre_attn_scalar=_int_if_whole(cfg.query_pre_attn_scalar or cfg.head_dim),
        attn_logit_softcapping=None, final_logit_softcapping=None,
        rope_parameters={
            'full_attention': _rope(cfg.rope_base, cfg.rope_scaling, cfg.rope_scaling_factor),
            'sliding_attention': _rope(cfg.rope_local_base)})
  else:
    if any(cfg.layer_is_sliding()):
      raise ValueError(f'{cfg.family}: sliding-window layers are exported for Gemma 3 only')
    out['rope_parameters'] = _rope(cfg.rope_base, cfg.rope_scaling, cfg.rope_scaling_factor)
    if cfg.family == 'qwen2':
      out['use_sliding_window'] = False
    out['auto_map'] = {'AutoModel': f'{REMOTE_CODE[:-3]}.Bidirectional{cls}'}
  return out


def write_remote_code(directory: str) -> None:
  shutil.copyfile(_REMOTE_SOURCE, os.path.join(directory, REMOTE_CODE))
