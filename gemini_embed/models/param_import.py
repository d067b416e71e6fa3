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

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class Layout:
  """One HF tensor ↔ one of our parameters (per layer for stacked blocks).

  HF → ours (`__call__`): transposed when `transpose` (a torch Linear weight is
  [out, in], ours [in, out]), then reshaped to `shape` (None: kept). Ours → HF
  (`inverse`, the exporter's direction): the same steps undone; `split` is how many
  of our leading axes form the Linear's input (q_proj [d, h, hd]: 1, o_proj [h, hd, d]: 2).
  """
  transpose: bool = False
  shape: tuple[int, ...] | None = None
  split: int = 1

  def __call__(self, w) -> np.ndarray:
    x = np.asarray(w)
    x = x.T if self.transpose else x
    return x.reshape(self.shape) if self.shape is not None else x

  def inverse(self, x) -> np.ndarray:
    x = np.asarray(x)
    if self.transpose:
      return x.reshape(int(np.prod(x.shape[:self.split])), -1).T
    return x.reshape(-1) if self.shape is not None else x


AS_IS = Layout()
LINEAR = Layout(transpose=True)


def hf_name_map(cfg: TransformerConfig) -> dict[Path, tuple[str, Layout]]:
  """Our parameter path → (HF tensor name, its Layout), both directions (import, export).

  Names under `blocks` contain `{i}` (the layer index): they are stacked.
  """
  d, h, k, hd = cfg.width, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
  L = 'model.layers.{i}.'
  m: dict[Path, tuple[str, Layout]] = {
      ('embedding',): ('model.embed_tokens.weight', AS_IS),
      ('final_norm', 'scale'): ('model.norm.weight', AS_IS),
      ('blocks', 'attn', 'q_proj'): (L + 'self_attn.q_proj.weight', Layout(True, (d, h, hd))),
      ('blocks', 'attn', 'k_proj'): (L + 'self_attn.k_proj.weight', Layout(True, (d, k, hd))),
      ('blocks', 'attn', 'v_proj'): (L + 'self_attn.v_proj.weight', Layout(True, (d, k, hd))),
      ('blocks', 'attn', 'o_proj'): (L + 'self_attn.o_proj.weight', Layout(True, (h, hd, d), 2)),
      ('blocks', 'attn_norm', 'scale'): (L + 'input_layernorm.weight', AS_IS),
      ('blocks', 'mlp', 'gate'): (L + 'mlp.gate_proj.weight', LINEAR),
      ('blocks', 'mlp', 'up'): (L + 'mlp.up_proj.weight', LINEAR),
      ('blocks', 'mlp', 'down'): (L + 'mlp.down_proj.weight', LINEAR),
  }
  if not cfg.tie_embeddings:
    m[('lm_head',)] = ('lm_head.weight', LINEAR)
  if cfg.qkv_bias:
    m[('blocks', 'attn', 'q_bias')] = (L + 'self_attn.q_proj.bias', Layout(shape=(h, hd)))
    m[('blocks', 'attn', 'k_bias')] = (L + 'self_attn.k_proj.bias', Layout(shape=(k, hd)))
    m[('blocks', 'attn', 'v_bias')] = (L + 'self_attn.v_proj.bias', Layout(shape=(k, hd)))
  if cfg.qk_norm:
    m[('blocks', 'attn', 'q_norm', 'scale')] = (L + 'self_attn.q_norm.weight', AS_IS)
    m[('blocks', 'attn', 'k_norm', 'scale')] = (L + 'self_attn.k_norm.weight', AS_IS)
  if cfg.sandwich_norms:  # Gemma: post_attention_layernorm normalises the attention output
    m[('blocks', 'post_attn_norm', 'scale')] = (L + 'post_attention_layernorm.weight', AS_IS)
    m[('blocks', 'mlp_norm', 'scale')] = (L + 'pre_feedforward_layernorm.weight', AS_IS)
    m[('blocks', 'post_mlp_norm', 'scale')] = (L + 'post_feedforward_layernorm.weight', AS_IS)
  else:  # Llama/Qwen: post_attention_layernorm is the pre-MLP norm
    m[('blocks', 'mlp_norm', 'scale')] = (L + 'post_attention_layernorm.weight', AS_IS)
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
