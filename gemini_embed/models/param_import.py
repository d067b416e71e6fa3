"""Streaming placement of pretrained tensors into a sharded Embedder.

A checkpoint source answers `tensor(name) -> np.ndarray` in Hugging Face
naming (`model.layers.3.self_attn.q_proj.weight`, …); other formats (GGUF)
translate to these names. `load_embedder` walks the model's *abstract* state,
builds each parameter on the host one at a time (stacked over layers for the
scanned blocks), checks its shape, and places it straight into its target
sharding. Parameters the checkpoint does not have (the projection head) are
freshly initialised by a jitted init from which XLA prunes everything else.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

import jax
import numpy as np
from flax import nnx
from flax.traverse_util import flatten_dict, unflatten_dict

from gemini_embed import sharding as sharding_lib
from gemini_embed.models.model_config import TransformerConfig

Path = tuple[str, ...]


class TensorSource(Protocol):
  description: str

  def names(self) -> list[str]: ...

  def tensor(self, name: str) -> np.ndarray: ...


def _t(x):
  return np.asarray(x).T


def hf_name_map(cfg: TransformerConfig) -> dict[Path, tuple[str, Callable[[np.ndarray], np.ndarray]]]:
  """Our parameter path → (HF tensor name, HF layout → our layout).

  Names under `blocks` contain `{i}` (the layer index): they are stacked.
  """
  d, h, k, hd = cfg.width, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
  L = 'model.layers.{i}.'
  m: dict[Path, tuple[str, Callable]] = {
      ('embedding',): ('model.embed_tokens.weight', np.asarray),
      ('final_norm', 'scale'): ('model.norm.weight', np.asarray),
      ('blocks', 'attn', 'q_proj'): (L + 'self_attn.q_proj.weight', lambda w: _t(w).reshape(d, h, hd)),
      ('blocks', 'attn', 'k_proj'): (L + 'self_attn.k_proj.weight', lambda w: _t(w).reshape(d, k, hd)),
      ('blocks', 'attn', 'v_proj'): (L + 'self_attn.v_proj.weight', lambda w: _t(w).reshape(d, k, hd)),
      ('blocks', 'attn', 'o_proj'): (L + 'self_attn.o_proj.weight', lambda w: _t(w).reshape(h, hd, d)),
      ('blocks', 'attn_norm', 'scale'): (L + 'input_layernorm.weight', np.asarray),
      ('blocks', 'mlp', 'gate'): (L + 'mlp.gate_proj.weight', _t),
      ('blocks', 'mlp', 'up'): (L + 'mlp.up_proj.weight', _t),
      ('blocks', 'mlp', 'down'): (L + 'mlp.down_proj.weight', _t),
  }
  if not cfg.tie_embeddings:
    m[('lm_head',)] = ('lm_head.weight', _t)
  if cfg.qkv_bias:
    m[('blocks', 'attn', 'q_bias')] = (L + 'self_attn.q_proj.bias', lambda b: np.reshape(b, (h, hd)))
    m[('blocks', 'attn', 'k_bias')] = (L + 'self_attn.k_proj.bias', lambda b: np.reshape(b, (k, hd)))
    m[('blocks', 'attn', 'v_bias')] = (L + 'self_attn.v_proj.bias', lambda b: np.reshape(b, (k, hd)))
  if cfg.qk_norm:
    m[('blocks', 'attn', 'q_norm', 'scale')] = (L + 'self_attn.q_norm.weight', np.asarray)
    m[('blocks', 'attn', 'k_norm', 'scale')] = (L + 'self_attn.k_norm.weight', np.asarray)
  if cfg.sandwich_norms:  # Gemma: post_attention_layernorm normalises the attention output
    m[('blocks', 'post_attn_norm', 'scale')] = (L + 'post_attention_layernorm.weight', np.asarray)
    m[('blocks', 'mlp_norm', 'scale')] = (L + 'pre_feedforward_layernorm.weight', np.asarray)
    m[('blocks', 'post_mlp_norm', 'scale')] = (L + 'post_feedforward_layernorm.weight', np.asarray)
  else:  # Llama/Qwen: post_attention_layernorm is the pre-MLP norm
    m[('blocks', 'mlp_norm', 'scale')] = (L + 'post_attention_layernorm.weight', np.asarray)
  return m


def load_embedder(make_module: Callable[[], nnx.Module], cfg: TransformerConfig,
                  source: TensorSource, mesh, rules, prefix: Path = ('backbone',)) -> nnx.Module:
  """Builds the module with backbone weights from `source`, each placed directly
  into its sharding; everything else (the projection) is freshly initialised."""
  graphdef, abstract, shardings = sharding_lib.abstract_state(make_module, mesh, rules)
  names = hf_name_map(cfg)
  shapes = flatten_dict(nnx.to_pure_dict(abstract))     # path → ShapeDtypeStruct
  targets = flatten_dict(nnx.to_pure_dict(shardings))   # path → NamedSharding

  def ours(path: Path) -> Path | None:
    return path[len(prefix):] if path[:len(prefix)] == prefix and path[len(prefix):] in names else None

  # Fresh values for the parameters the checkpoint lacks; XLA prunes the rest of the init.
  missing = [p for p in shapes if ours(p) is None]
  values = {}
  if missing:
    fresh = sharding_lib.jit_init(
        lambda: [flatten_dict(nnx.to_pure_dict(nnx.state(make_module())))[p] for p in missing],
        [targets[p] for p in missing])
    values = dict(zip(missing, fresh))

  used: set[str] = set()
  for path, shape in shapes.items():
    if path in values:
      continue
    hf_name, convert = names[ours(path)]
    host = _host_array(source, hf_name, convert, shape, cfg.num_layers, path, used)
    values[path] = jax.make_array_from_callback(host.shape, targets[path],
                                                lambda idx, h=host: h[idx])
    del host
  unused = sorted(set(source.names()) - used)
  if unused:
    logging.info('%s: %d tensors not used by the embedder (e.g. %s)', source.description,
                 len(unused), unused[:3])
  nnx.replace_by_pure_dict(abstract, unflatten_dict(values))
  return nnx.merge(graphdef, abstract)


def _host_array(source: TensorSource, hf_name: str, convert, var: jax.ShapeDtypeStruct,
                num_layers: int, path: Path, used: set[str]) -> np.ndarray:
  dtype = var.dtype
  where = '/'.join(path)
  if '{i}' not in hf_name:
    used.add(hf_name)
    return _converted(_get(source, hf_name, where), convert, var.shape, hf_name, source, where).astype(dtype)
  out = np.empty(var.shape, dtype)
  for layer in range(num_layers):
    name = hf_name.format(i=layer)
    used.add(name)
    out[layer] = _converted(_get(source, name, where), convert, var.shape[1:], name, source, where)
  return out


def _get(source: TensorSource, name: str, where: str) -> np.ndarray:
  try:
    return source.tensor(name)
  except KeyError:
    raise KeyError(f'{source.description}: missing tensor {name!r} (needed for parameter {where}); '
                   'is the config family/num_layers right for this checkpoint?') from None


def _converted(raw: np.ndarray, convert, shape, name: str, source: TensorSource, where: str
               ) -> np.ndarray:
  try:
    x = convert(raw)
  except ValueError:
    x = None
  if x is None or tuple(x.shape) != tuple(shape):
    raise ValueError(f'{source.description}: tensor {name!r} has shape {tuple(raw.shape)}, which '
                     f'does not fit parameter {where} of shape {tuple(shape)}; does the model '
                     'config match the checkpoint?')
  return x
