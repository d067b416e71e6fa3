"""Mesh construction and the logical-axis → mesh-axis rules.

The model names every parameter dimension with a logical axis ('embed', 'mlp',
'heads', …). A short rule table (in the config, t5x/MaxText style) maps each
logical axis to zero or more mesh axes of the ('data', 'fsdp', 'tensor') mesh:

    batch → (data, fsdp)   embed → fsdp   vocab/mlp/heads/kv_heads/proj_out → tensor

A dimension whose size is not divisible by its mesh axes falls back to fewer
axes (then to replication) — e.g. Gemma 3 270M's single KV head under tensor=2.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ('data', 'fsdp', 'tensor')

DEFAULT_RULES: tuple[tuple[str, Any], ...] = (
    ('batch', ('data', 'fsdp')),
    ('vocab', 'tensor'),
    ('embed', 'fsdp'),
    ('mlp', 'tensor'),
    ('heads', 'tensor'),
    ('kv_heads', 'tensor'),
    ('proj_out', 'tensor'),
    ('head_dim', None),
    ('norm', None),
    ('layers', None),
)


def mesh_shape(sizes: Mapping[str, int], num_devices: int, field: str = 'config.mesh'
               ) -> tuple[int, ...]:
  """Resolves {'data': -1, 'fsdp': 2, 'tensor': 1} (-1 = the rest) to a shape."""
  unknown = set(sizes) - set(MESH_AXES)
  if unknown:
    raise ValueError(f'{field}: unknown mesh axes {sorted(unknown)}; use {MESH_AXES}')
  shape = [int(sizes.get(a, 1)) for a in MESH_AXES]
  if shape.count(-1) > 1:
    raise ValueError(f'{field}={dict(sizes)}: at most one axis may be -1')
  fixed = math.prod(s for s in shape if s != -1)
  if any(s == 0 or s < -1 for s in shape):
    raise ValueError(f'{field}={dict(sizes)}: sizes must be positive or -1')
  if -1 in shape:
    if num_devices % fixed:
      raise ValueError(f'{field}={dict(sizes)}: {num_devices} devices are not divisible by {fixed}')
    shape[shape.index(-1)] = num_devices // fixed
  if math.prod(shape) != num_devices:
    raise ValueError(f'{field}={dict(sizes)}: the mesh needs {math.prod(shape)} devices, '
                     f'there are {num_devices}')
  return tuple(shape)


def make_mesh(sizes: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
  devices = list(devices if devices is not None else jax.devices())
  shape = mesh_shape(sizes, len(devices))
  if devices == list(jax.devices()):
    return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 3)
  return Mesh(np.asarray(devices).reshape(shape), MESH_AXES,
              axis_types=(AxisType.Auto,) * 3)


def _as_tuple(mesh_axes) -> tuple[str, ...]:
  if mesh_axes is None:
    return ()
  return (mesh_axes,) if isinstance(mesh_axes, str) else tuple(mesh_axes)


def logical_to_spec(names: Sequence[str | None], shape: Sequence[int], mesh: Mesh,
                    rules: Sequence[tuple[str, Any]]) -> P:
  """One array's PartitionSpec. Each mesh axis is used at most once; a dim that
  its axes do not divide drops trailing axes until they do."""
  table = dict((k, _as_tuple(v)) for k, v in rules)
  used: set[str] = set()
  spec = []
  for name, size in zip(names, shape):
    axes = tuple(a for a in table.get(name, ()) if a not in used) if name else ()
    while axes and size % math.prod(mesh.shape[a] for a in axes):
      axes = axes[:-1]
    used.update(axes)
    spec.append(None if not axes else axes[0] if len(axes) == 1 else axes)
  while spec and spec[-1] is None:  # canonical form, as jit reports it
    spec.pop()
  return P(*spec)


def _is_var(x) -> bool:
  return isinstance(x, nnx.Variable)


def state_shardings(abstract_state, mesh: Mesh, rules) -> Any:
  """NamedShardings for an (abstract) nnx.State, from each Variable's logical names."""
  def one(var):
    if not hasattr(var.get_value(), 'shape'):  # e.g. optax.MaskedNode of a frozen group
      return var
    names = var.get_metadata().get('out_sharding') or (None,) * len(var.shape)
    return var.replace(NamedSharding(mesh, logical_to_spec(names, var.shape, mesh, rules)))
  return jax.tree.map(one, abstract_state, is_leaf=_is_var)


def sharded_init(make_module: Callable[[], nnx.Module], mesh: Mesh, rules) -> nnx.Module:
  """Builds a module with every parameter created directly in its sharding:
  shapes via eval_shape, shardings from the rules, then a jitted init."""
  abstract = nnx.eval_shape(make_module)
  graphdef, abstract_state = nnx.split(abstract)
  shardings = state_shardings(abstract_state, mesh, rules)

  @jax.jit
  def init():
    state = nnx.state(make_module())
    return jax.lax.with_sharding_constraint(state, shardings)

  return nnx.merge(graphdef, init())


def batch_sharding(mesh: Mesh, rules, ndim: int) -> NamedSharding:
  """Sharding of a [batch, ...] input array: batch over its mesh axes."""
  batch_axes = dict(rules).get('batch', ('data', 'fsdp'))
  return NamedSharding(mesh, P(batch_axes, *([None] * (ndim - 1))))


def describe(state, limit: int = 50) -> str:
  """Human-readable table of parameter paths, shapes and shardings."""
  rows = []
  for path, var in jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_var)[0][:limit]:
    value = var[...] if _is_var(var) else var
    spec = getattr(getattr(value, 'sharding', None), 'spec', None)
    rows.append(f'{jax.tree_util.keystr(path):70s} {str(value.shape):22s} {spec}')
  return '\n'.join(rows)


