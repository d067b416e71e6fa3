"""Config validation, run before anything compiles. Each error names its field."""

from __future__ import annotations

import math

import ml_collections

from gemini_embed import sharding
from gemini_embed.models.model_config import TransformerConfig

_LOGICAL_AXES = {'batch', 'vocab', 'embed', 'mlp', 'heads', 'kv_heads', 'proj_out', 'head_dim',
                 'norm', 'layers'}


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

  if config.loss.temperature <= 0:
    raise ConfigError(f'config.loss.temperature={config.loss.temperature}: must be > 0')

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
  return config
