"""Mesh construction and the logical-axis → mesh-axis rules.

The model names every parameter dimension with a logical axis ('embed', 'mlp',
'heads', …). A short rule table (in the config, t5x/MaxText style) maps each
logical axis to zero or more mesh axes of the ('data', 'fsdp', 'tensor') mesh:

    batch → (data, fsdp)   embed → fsdp   vocab/mlp/heads/kv_heads/proj_out → tensor

A dimension whose size is not divisible by its mesh axes falls back to fewer
axes (then to replication) — e.g. Gemma 3 270M's single KV head under tensor=2.

Activations are pinned the same way (MaxText style): inside `activation_sharding`
(the train step, the encoder), the transformer constrains its residual stream
[batch, length, activation_embed] between layers, so GSPMD keeps it split over the
batch axes instead of inferring a layout per layer. On one device it adds nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
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
    ('length', None),             # activations: the sequence (no sequence parallelism)
    ('activation_embed', None),   # activations: the model width (whole on each device)
)

# The transformer's residual stream [B, S, D] (models/transformer.py).
RESIDUAL = ('batch', 'length', 'activation_embed')

# (mesh, rules) while an `activation_sharding` block traces; None elsewhere.
_ACTIVATIONS: contextvars.ContextVar = contextvars.ContextVar('activation_sharding',
                                                              default=None)


def num_slices(sizes: Mapping[str, int], field: str = 'config.mesh') -> int:
  """`sizes['slices']` (default 1): TPU slices joined over the data-centre network."""
  slices = int(sizes.get('slices', 1))
  if slices < 1:
    raise ValueError(f'{field}.slices={slices}: must be >= 1')
  return slices


def mesh_shape(sizes: Mapping[str, int], num_devices: int, field: str = 'config.mesh'
               ) -> tuple[int, ...]:
  """Resolves {'data': -1, 'fsdp': 2, 'tensor': 1} (-1 = the rest) to a shape.

  With `slices: S > 1` the sizes are those of one slice (num_devices / S devices,
  over ICI) and the data axis is S times longer: the slices split the batch over DCN."""
  unknown = set(sizes) - set(MESH_AXES) - {'slices'}
  if unknown:
    raise ValueError(f'{field}: unknown mesh axes {sorted(unknown)}; use {MESH_AXES} '
                     '(and slices)')
  slices = num_slices(sizes, field)
  if num_devices % slices:
    raise ValueError(f'{field}.slices={slices}: {num_devices} devices do not split into '
                     f'{slices} equal slices')
  ici = _slice_shape(sizes, num_devices // slices, field)
  return (ici[0] * slices, *ici[1:])


def _slice_shape(sizes: Mapping[str, int], num_devices: int, field: str) -> tuple[int, ...]:
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


def make_mesh(sizes: Mapping[str, int], devices: Sequence[jax.Device] | None = None, *,
              field: str = 'config.mesh') -> Mesh:
  """field: where `sizes` came from, for the error when they do not fit the devices."""
  devices = list(devices if devices is not None else jax.devices())
  shape = mesh_shape(sizes, len(devices), field)
  slices = num_slices(sizes, field)
  if slices > 1:
    return hybrid_mesh(shape, slices, devices, field)
  if devices == list(jax.devices()):
    return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 3)
  return Mesh(np.asarray(devices).reshape(shape), MESH_AXES,
              axis_types=(AxisType.Auto,) * 3)


def hybrid_mesh(shape: tuple[int, ...], slices: int, devices: Sequence[jax.Device],
                field: str = 'config.mesh') -> Mesh:
  """A multi-slice mesh: within a slice the axes follow the chips' ICI links, and the
  data axis steps across slices (DCN) outermost, so only the gradient reduction of
  data parallelism crosses the slower network (MaxText's dcn_data_parallelism)."""
  from jax.experimental import mesh_utils
  found = {getattr(d, 'slice_index', None) for d in devices}
  if len(found) != slices:
    raise ValueError(f'{field}.slices={slices}: the devices come from {len(found)} slice(s) '
                     f'({sorted(map(str, found))}); set {field}.slices to the number of '
                     'slices the job was launched on (launch/pod.py --num_slices)')
  ici = (shape[0] // slices, *shape[1:])
  grid = mesh_utils.create_hybrid_device_mesh(ici, (slices, 1, 1), devices)
  return Mesh(grid, MESH_AXES, axis_types=(AxisType.Auto,) * 3)


def parse_mesh(text: str, field: str = '--mesh') -> dict[str, int]:
  """'data:-1,fsdp:2,tensor:1' → {'data': -1, 'fsdp': 2, 'tensor': 1} (a tool's --mesh flag)."""
  sizes = {}
  for item in filter(None, (part.strip() for part in text.split(','))):
    axis, _, size = item.partition(':')
    if axis.strip() not in MESH_AXES or not size.strip().lstrip('-').isdigit():
      raise ValueError(f'{field}={text!r}: {item!r} is not AXIS:SIZE with AXIS one of '
                       f'{MESH_AXES}; write e.g. data:-1,fsdp:2,tensor:1')
    sizes[axis.strip()] = int(size)
  return sizes


def as_rules(rules) -> tuple[tuple[str, Any], ...]:
  """A rule table as tuples: config.json stores `(('batch', ('data', 'fsdp')), …)` as lists."""
  return tuple((name, tuple(axes) if isinstance(axes, list) else axes) for name, axes in rules)


def _as_tuple(mesh_axes) -> tuple[str, ...]:
  if mesh_axes is None:
    return ()
  return (mesh_axes,) if isinstance(mesh_axes, str) else tuple(mesh_axes)


def _resolve(names: Sequence[str | None], shape: Sequence[int], mesh: Mesh,
             rules: Sequence[tuple[str, Any]]) -> tuple[P, list[str]]:
  """The PartitionSpec, and why any dimension is split fewer ways than its rule says."""
  table = dict((k, _as_tuple(v)) for k, v in rules)
  used: set[str] = set()
  spec, why = [], []
  for dim, (name, size) in enumerate(zip(names, shape)):
    wanted = table.get(name, ()) if name else ()
    axes = tuple(a for a in wanted if a not in used)
    while axes and size % math.prod(mesh.shape[a] for a in axes):
      axes = axes[:-1]
    dropped = [a for a in wanted if a not in axes]
    if math.prod(mesh.shape[a] for a in dropped) > 1:
      reason = ('already split another dimension' if set(dropped) <= used else
                f'{math.prod(mesh.shape[a] for a in wanted)} devices do not divide {size}')
      why.append(f'dim {dim} ({name}) not over {dropped}: {reason}')
    used.update(axes)
    spec.append(None if not axes else axes[0] if len(axes) == 1 else axes)
  while spec and spec[-1] is None:  # canonical form, as jit reports it
    spec.pop()
  return P(*spec), why


def logical_to_spec(names: Sequence[str | None], shape: Sequence[int], mesh: Mesh,
                    rules: Sequence[tuple[str, Any]]) -> P:
  """One array's PartitionSpec. Each mesh axis is used at most once; a dim that
  its axes do not divide drops trailing axes until they do.

  Flax's `nnx.get_partition_spec` applies the same rule table but has no such
  fallback (Gemma 3 270M's one KV head under tensor=2 would fail), hence this."""
  return _resolve(names, shape, mesh, rules)[0]


def _is_var(x) -> bool:
  return isinstance(x, nnx.Variable)


def state_shardings(state, mesh: Mesh, rules) -> Any:
  """NamedShardings for an (abstract) nnx.State, from each Variable's logical names.

  Logs (once) every array that falls back to fewer mesh axes than its rules name,
  and why: on a pod that is memory the run did not plan for."""
  fallbacks = []

  def one(path, var):
    if not hasattr(var.get_value(), 'shape'):  # e.g. optax.MaskedNode of a frozen group
      return var
    names = var.get_metadata().get('out_sharding') or (None,) * len(var.shape)
    spec, why = _resolve(names, var.shape, mesh, rules)
    if why:
      name = '/'.join(map(str, path))
      fallbacks.append(f'{name} {tuple(var.shape)} → {spec}: {"; ".join(why)}')
    return var.replace(NamedSharding(mesh, spec))

  shardings = nnx.map_state(one, state)
  if fallbacks:
    logging.info('sharding: %d arrays get fewer mesh axes than the rules name (mesh %s):\n  %s',
                 len(fallbacks), dict(mesh.shape), '\n  '.join(fallbacks))
  return shardings


def abstract_state(make_module: Callable[..., nnx.Module], mesh: Mesh, rules, *args
                   ) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
  """(graphdef, abstract state, shardings) of `make_module(*args)`, allocating nothing:
  shapes via eval_shape, shardings from the logical rules."""
  graphdef, state = nnx.split(nnx.eval_shape(make_module, *args))
  return graphdef, state, state_shardings(state, mesh, rules)


def jit_init(fn: Callable[..., Any], shardings, *args) -> Any:
  """fn(*args) under jit, its output constrained to `shardings` (a tree like it): every
  array is created directly in its shard, never whole on one device."""
  @jax.jit
  def init(*args):
    return jax.lax.with_sharding_constraint(fn(*args), shardings)
  return init(*args)


def sharded_init(make_module: Callable[[], nnx.Module], mesh: Mesh, rules) -> nnx.Module:
  """Builds a module with every parameter created directly in its sharding:
  shapes via eval_shape, shardings from the rules, then a jitted init."""
  graphdef, _, shardings = abstract_state(make_module, mesh, rules)
  return nnx.merge(graphdef, jit_init(lambda: nnx.state(make_module()), shardings))


def batch_axes(rules) -> tuple[str, ...]:
  """The mesh axes a [batch, ...] array is split over (the 'batch' rule)."""
  return _as_tuple(dict(rules).get('batch', ('data', 'fsdp')))


def data_parallel_size(mesh: Mesh, rules) -> int:
  """How many ways a batch is split: a global batch must be a multiple of it."""
  return math.prod(mesh.shape[a] for a in batch_axes(rules))


def config_data_parallel_size(config, num_devices: int) -> int:
  """`data_parallel_size` of the mesh `config.mesh` makes over `num_devices` (no Mesh built)."""
  shape = dict(zip(MESH_AXES, mesh_shape(config.mesh, num_devices)))
  return math.prod(shape[a] for a in batch_axes(config.sharding_rules))


def batch_sharding(mesh: Mesh, rules, ndim: int) -> NamedSharding:
  """Sharding of a [batch, ...] input array: batch over its mesh axes."""
  return NamedSharding(mesh, P(batch_axes(rules) or None, *([None] * (ndim - 1))))


def describe(state, limit: int = 50) -> str:
  """Human-readable table of parameter paths, shapes and shardings."""
  rows = []
  for path, var in list(nnx.to_flat_state(state))[:limit]:
    value = var[...] if _is_var(var) else var
    spec = getattr(getattr(value, 'sharding', None), 'spec', None)
    rows.append(f'{"/".join(map(str, path)):70s} {str(value.shape):22s} {spec}')
  return '\n'.join(rows)


@contextlib.contextmanager
def activation_sharding(mesh, rules):
  """While a function traces inside this block, `constrain` pins its activations to
  their logical axes on `mesh` under `rules`. A 1-device mesh sets nothing: there is
  nothing to split, and the program stays exactly as without it."""
  token = _ACTIVATIONS.set((mesh, as_rules(rules)) if mesh.size > 1 else None)
  try:
    yield
  finally:
    _ACTIVATIONS.reset(token)


def active_activation_sharding() -> tuple[Mesh, tuple] | None:
  """(mesh, rules) of the `activation_sharding` block tracing now; None outside one
  (or on a 1-device mesh). Kernels that XLA cannot partition (Pallas) shard_map on it."""
  return _ACTIVATIONS.get()


def constrain(x: jax.Array, names: Sequence[str | None]) -> jax.Array:
  """x constrained to the sharding its logical axis `names` get in the active
  `activation_sharding` (with logical_to_spec's divisibility fallback); x unchanged
  outside one."""
  active = _ACTIVATIONS.get()
  if active is None:
    return x
  mesh, rules = active
  spec = logical_to_spec(names, x.shape, mesh, rules)
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))
