"""The train state (embedder + optimiser) and how it comes to exist on the mesh:
shapes first (`eval_shape`), shardings from the logical rules, then either a
jitted sharded init, an import from `init_from`, or a checkpoint restore.
"""

from __future__ import annotations

import os
from typing import Callable

import jax
import optax
from flax import nnx

from gemini_embed import sharding as sharding_lib
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig


class TrainState(nnx.Module):
  """What a training step reads and writes: the model and its optimiser."""

  def __init__(self, model: Embedder, tx: optax.GradientTransformation):
    self.model = model
    self.optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)


def abstract_train_state(make_model: Callable[[], Embedder], tx, mesh, rules):
  """(graphdef, abstract state, shardings) without allocating anything."""
  abstract = nnx.eval_shape(lambda: TrainState(make_model(), tx))
  graphdef, state = nnx.split(abstract)
  return graphdef, state, sharding_lib.state_shardings(state, mesh, rules)


def fresh_train_state(make_model, tx, shardings):
  """Random init, every array created directly in its sharding."""
  @jax.jit
  def init():
    return jax.lax.with_sharding_constraint(nnx.state(TrainState(make_model(), tx)), shardings)
  return init()


def train_state_from_model(model: Embedder, tx, shardings):
  """Wraps pretrained weights (already placed) with a fresh optimiser state."""
  graphdef, params = nnx.split(model)

  @jax.jit
  def init(params):
    return jax.lax.with_sharding_constraint(
        nnx.state(TrainState(nnx.merge(graphdef, params), tx)), shardings)
  return init(params)


# --------------------------------------------------------------------------- init_from

def classify_source(path: str) -> str:
  """'workdir' (a gemini_embed run or soup), 'hf' (safetensors) or 'gguf'."""
  from gemini_embed.models import gguf_import  # noqa: PLC0415  (optional importer)
  if os.path.exists(os.path.join(path, 'model.json')) and os.path.isdir(
      os.path.join(path, 'checkpoints')):
    return 'workdir'
  if os.path.exists(os.path.join(path, 'config.json')) and (
      os.path.exists(os.path.join(path, 'model.safetensors')) or
      os.path.exists(os.path.join(path, 'model.safetensors.index.json'))):
    return 'hf'
  if gguf_import.is_gguf_model_dir(path):
    return 'gguf'
  raise ValueError(f'config.init_from={path!r}: not a gemini_embed workdir (model.json + '
                   'checkpoints/), a Hugging Face directory (config.json + *.safetensors) or a '
                   'GGUF model directory (see gemini_embed.models.fetch_offline)')


POLICY_FIELDS = ('attention_mode', 'dtype', 'param_dtype', 'remat')


def adapt_backbone(cfg: TransformerConfig, config) -> TransformerConfig:
  """A checkpoint's architecture under this run's policies (attention mode, dtypes,
  remat) and optional `config.truncate_layers` (keep the first N layers; 0 = all)."""
  cfg = cfg.replace(**{f: config.model[f] for f in POLICY_FIELDS})
  keep = int(config.get('truncate_layers', 0) or 0)
  if keep:
    try:
      cfg = cfg.with_layers(keep)
    except ValueError as e:
      raise ValueError(f'config.truncate_layers={keep}: {e}') from None
  return cfg


def load_pretrained(config, mesh, rules) -> tuple[Embedder, TransformerConfig]:
  """The embedder from `config.init_from`, placed into its shardings."""
  path = config.init_from
  kind = classify_source(path)
  if kind == 'hf':
    from gemini_embed.models.hf_import import hf_model_config, load_hf_embedder
    cfg = adapt_backbone(hf_model_config(path), config)
    return load_hf_embedder(path, config.embed_dim, mesh, rules, seed=config.seed, cfg=cfg)
  if kind == 'gguf':
    from gemini_embed.models import gguf_import
    cfg = adapt_backbone(gguf_import.gguf_model_config(path), config)
    return gguf_import.load_gguf_embedder(path, config.embed_dim, mesh, rules,
                                          seed=config.seed, cfg=cfg)
  from gemini_embed.checkpoint import read_model_info, restore_params
  info = read_model_info(path)
  cfg, embed_dim = info.model, info.embed_dim
  if embed_dim != config.embed_dim:
    raise ValueError(f'config.embed_dim={config.embed_dim}: init_from={path} was trained with '
                     f'embed_dim={embed_dim}')
  cfg = cfg.replace(**{f: config.model[f] for f in POLICY_FIELDS})
  abstract = nnx.eval_shape(lambda: Embedder(cfg, embed_dim, nnx.Rngs(0)))
  graphdef, state = nnx.split(abstract)
  params, _ = restore_params(path, sharded_targets(state, mesh, rules))
  nnx.replace_by_pure_dict(state, params)
  return nnx.merge(graphdef, state), cfg


def sharded_targets(abstract_state, mesh, rules):
  """Pure-dict tree of ShapeDtypeStructs carrying their target shardings (orbax restore)."""
  shardings = sharding_lib.state_shardings(abstract_state, mesh, rules)
  return jax.tree.map(lambda v, s: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=s),
                      nnx.to_pure_dict(abstract_state), nnx.to_pure_dict(shardings))
