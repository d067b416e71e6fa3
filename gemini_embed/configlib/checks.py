"""Config validation, run before anything compiles. Each error names its field."""

from __future__ import annotations

import math

import ml_collections

from gemini_embed import sharding
from gemini_embed.data.spec import check_data_config
from gemini_embed.models.model_config import TransformerConfig

_LOGICAL_AXES = {'batch', 'vocab', 'embed', 'mlp', 'heads', 'kv_heads', 'proj_out', 'head_dim',
                 'norm', 'layers', 'length', 'activation_embed'}


class ConfigError(ValueError):
  """A config field holds a value the code cannot run with."""


def check_config(config: ml_collections.ConfigDict, num_devices: int | None = None
                 ) -> ml_collections.ConfigDict:
  """Raises ConfigError naming the first bad field; returns the config otherwise."""
  try:
    TransformerConfig.from_config(config.model)
  except ValueError as e:
    raise ConfigError(str(e)) from None

  dims = tuple(config.mrl_dims)
  if config.embed_dim <= 0:
    raise ConfigError(f'config.embed_dim={config.embed_dim}: must be positive')
  if not dims:
    raise ConfigError('config.mrl_dims: needs at least one dimension (use (embed_dim,) for no MRL)')
  if any(b <= a for a, b in zip(dims, dims[1:])) or dims[0] <= 0:
    raise ConfigError(f'config.mrl_dims={dims}: must be positive and strictly increasing')
  if dims[-1] > config.embed_dim:
    raise ConfigError(f'config.mrl_dims={dims}: the largest prefix exceeds '
                      f'config.embed_dim={config.embed_dim}')

  _check_loss(config.loss, dims)
  _check_schedule(config)
  try:
    check_data_config(config)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  chunk = config.grad_cache_chunk
  if not isinstance(chunk, int) or chunk < 0:
    raise ConfigError(f'config.grad_cache_chunk={chunk!r}: must be an integer >= 0 '
                      '(0 = no gradient caching)')
  if 0 < chunk < config.batch_size and config.batch_size % chunk:
    raise ConfigError(f'config.grad_cache_chunk={chunk}: must divide '
                      f'config.batch_size={config.batch_size}')

  if config.data.pack and 0 < chunk < config.batch_size:
    raise ConfigError(f'config.data.pack=True with config.grad_cache_chunk={chunk}: gradient '
                      'caching chunks examples, packing mixes them in rows; turn one off')

  for i, rule in enumerate(config.sharding_rules):
    logical, mesh_axes = rule
    if logical not in _LOGICAL_AXES:
      raise ConfigError(f'config.sharding_rules[{i}]: unknown logical axis {logical!r}; '
                        f'known: {sorted(_LOGICAL_AXES)}')
    for a in (mesh_axes,) if isinstance(mesh_axes, str) else (mesh_axes or ()):
      if a not in sharding.MESH_AXES:
        raise ConfigError(f'config.sharding_rules[{i}]: unknown mesh axis {a!r}; '
                          f'use {sharding.MESH_AXES}')

  if num_devices is not None:
    try:
      shape = dict(zip(sharding.MESH_AXES, sharding.mesh_shape(config.mesh, num_devices)))
    except ValueError as e:
      raise ConfigError(str(e)) from None
    batch_axes = dict(config.sharding_rules).get('batch', ())
    batch_axes = (batch_axes,) if isinstance(batch_axes, str) else tuple(batch_axes or ())
    dp = math.prod(shape[a] for a in batch_axes)
    if config.batch_size % dp:
      raise ConfigError(f'config.batch_size={config.batch_size}: not divisible by the '
                        f'data-parallel size {dp} (mesh {shape}, batch axes {batch_axes})')
    if 0 < chunk < config.batch_size and chunk % dp:
      raise ConfigError(f'config.grad_cache_chunk={chunk}: not divisible by the data-parallel '
                        f'size {dp}; every device embeds its share of each chunk')
  if config.eval.every < 0:
    raise ConfigError(f'config.eval.every={config.eval.every}: must be >= 0 (0 = off)')
  if config.eval.get('half', 'select') not in ('select', 'report'):
    raise ConfigError(f'config.eval.half={config.eval.half!r}: must be select (choices made '
                      'during training) or report')
  if config.eval.every and not config.eval.suite:
    raise ConfigError('config.eval.suite: empty, but config.eval.every > 0 needs a dev suite '
                      '(build one with python -m gemini_embed.data.build_corpora)')
  return config


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _check_schedule(config: ml_collections.ConfigDict) -> None:
  """How long and how fast the run trains, and how often it logs and saves."""
  lr = config.optim.learning_rate
  if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
    raise ConfigError(f'config.optim.learning_rate={lr!r}: must be > 0 (and finite)')
  if not _is_int(config.total_steps) or config.total_steps < 0:
    raise ConfigError(f'config.total_steps={config.total_steps!r}: must be >= 0 '
                      '(0 = export the initial model)')
  for field, value in (('checkpoint.every', config.checkpoint.every),
                       ('log_every', config.log_every)):
    if not _is_int(value) or value < 1:
      raise ConfigError(f'config.{field}={value!r}: must be >= 1 (a run always saves and logs '
                        'its last step; set it to config.total_steps for that step only)')


def _check_loss(loss: ml_collections.ConfigDict, dims: tuple[int, ...]) -> None:
  if loss.temperature <= 0:
    raise ConfigError(f'config.loss.temperature={loss.temperature}: must be > 0')
  for field in ('learn_temperature', 'mask_duplicates', 'cross_negatives'):
    if not isinstance(loss[field], bool):
      raise ConfigError(f'config.loss.{field}={loss[field]!r}: must be True or False')
  if loss.hardness_alpha < 0:
    raise ConfigError(f'config.loss.hardness_alpha={loss.hardness_alpha}: must be >= 0 '
                      '(0 = off; EmbeddingGemma uses 5.0)')
  weights = tuple(loss.mrl_weights)
  if weights and len(weights) != len(dims):
    raise ConfigError(f'config.loss.mrl_weights={weights}: needs one weight per '
                      f'config.mrl_dims={dims}, or () for all 1')
  if weights and (min(weights) < 0 or sum(weights) <= 0):
    raise ConfigError(f'config.loss.mrl_weights={weights}: must be >= 0 and not all 0')
