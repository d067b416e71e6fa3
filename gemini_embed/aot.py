r"""Compile the train step for a TPU slice on this machine, before paying for the slice.

    python -m gemini_embed.aot --config=configs/pod.py:model=gemma3-4b --topology=v5p-128
    python -m gemini_embed.aot --table          # every pod preset × v5e-256/v5p-128/v6e-256

With libtpu installed (the `[tpu]` extra, or the test extra), the real train step —
the same `train_step.jitted_train_step` over the same abstract state and shardings as
`train` — is compiled by XLA:TPU for the slice's devices as libtpu describes them
(`jax.experimental.topologies.get_topology_desc`, as MaxText's train_compile.py
does); no TPU is attached. It prints per-chip HBM — parameters and optimiser state
(from their shardings), the batch, XLA's temporaries (activations, gradients,
scratch), generated code — from `compiled.memory_analysis()`, and the step's FLOPs:
the model count (flops.py) and `cost_analysis()`'s, which counts the body of a loop
once (the scanned layers, the grad-cache chunks), so it is a floor. Exit code 1 when
the step does not fit the chip's HBM.

Without libtpu the step is only lowered, on an AbstractMesh: the state's per-chip
bytes come from the shardings, but no compiler has allocated the temporaries, so
"fits" is not decided (exit code 0, and the output says so).

The mesh follows the slice: a config file that sets `SLICE_ARG` (configs/pod.py:
`chips`) is re-read with that argument set to the slice's chip count, unless the
--config argument names it. `--num_slices=N` compiles for N slices joined over
DCN (config.mesh.slices = N).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from typing import Any

from absl import app, flags, logging
from ml_collections import config_flags

from gemini_embed.tpu_topologies import GiB, Slice, parse_slice

_CONFIG = config_flags.DEFINE_config_file('config', None, 'configs/NAME.py[:ARGS]')
_TOPOLOGY = flags.DEFINE_string('topology', 'v5p-128',
                                'TPU slice name: v5e-256, v5p-128, v6e-256, …')
_NUM_SLICES = flags.DEFINE_integer('num_slices', 1, 'Slices joined over DCN (multi-slice).')
_HBM_GIB = flags.DEFINE_float('hbm_gib', None, "Per-chip HBM to fit in (default: the chip's).")
_JSON = flags.DEFINE_string('json', None, 'Also write the report as JSON to this file.')
_TABLE = flags.DEFINE_bool('table', False, 'Compile every pod preset for each of '
                           '--table_topologies and print the README table (a process per cell).')
_TABLE_TOPOLOGIES = flags.DEFINE_list('table_topologies', ['v5e-256', 'v5p-128', 'v6e-256'],
                                      'Slices of the --table.')
_TABLE_CONFIGS = flags.DEFINE_multi_string(
    'table_configs', [f'configs/pod.py:model={m},stage={s}'
                      for s in ('finetune', 'prefinetune')
                      for m in ('gemma3-1b', 'gemma3-4b', 'gemma3-12b')],
    'Configs of the --table (repeat the flag for several).')

NOT_FIT_EXIT_CODE = 1


def slice_config(config, slice_: Slice, num_slices: int):
  """`config` for `num_slices` × `slice_`: re-read with SLICE_ARG set (the overrides kept),
  mesh.slices set."""
  from gemini_embed.configlib import config_module, load_config_file
  filename = config_flags.get_config_filename(flags.FLAGS['config'])
  path, _, arg = filename.partition(':')
  slice_arg = getattr(config_module(path), 'SLICE_ARG', None)
  names = [item.partition('=')[0].strip() for item in arg.split(',')]
  if slice_arg and slice_arg not in names:
    arg = ','.join(filter(None, [arg, f'{slice_arg}={slice_.chips}']))
    logging.info('%s: %s=%d (the chips of %s)', path, slice_arg, slice_.chips, slice_.name)
    config = load_config_file(path, arg)
    for field, value in config_flags.get_override_values(flags.FLAGS['config']).items():
      _set_field(config, field, value)
  config.unlock()
  config.mesh.slices = num_slices
  return config


def _set_field(config, dotted: str, value: Any) -> None:
  *parents, last = dotted.split('.')
  for name in parents:
    config = config[name]
  config[last] = value


def abstract_batch(config, mesh) -> Any:
  """The train step's largest (top-bucket) global batch as ShapeDtypeStructs, split over
  the batch axes."""
  import jax
  import jax.numpy as jnp

  from gemini_embed import sharding
  from gemini_embed.data.batch import Batch
  if config.data.get('pack', False):
    raise ValueError('config.data.pack=True: the AOT check builds unpacked batches only; '
                     'set --config.data.pack=False to check the unpacked step')
  b, lq, ld, k = (config.batch_size, config.data.query_max_len, config.data.doc_max_len,
                  config.data.num_negatives)
  spec = lambda shape, dtype: jax.ShapeDtypeStruct(
      shape, dtype, sharding=sharding.batch_sharding(mesh, config.sharding_rules, len(shape)))
  neg = {}
  if k:
    neg = dict(neg_tokens=spec((b, k, ld), jnp.int32), neg_valid=spec((b, k, ld), jnp.bool_),
               has_neg=spec((b, k), jnp.bool_))
  return Batch(query_tokens=spec((b, lq), jnp.int32), query_valid=spec((b, lq), jnp.bool_),
               pos_tokens=spec((b, ld), jnp.int32), pos_valid=spec((b, ld), jnp.bool_),
               query_id=spec((b,), jnp.int32), pos_id=spec((b,), jnp.int32), **neg)


def tpu_devices(slice_: Slice, num_slices: int) -> list | None:
  """The slice's devices as libtpu describes them; None when libtpu is not installed."""
  try:
    import libtpu  # noqa: F401  (only to know whether it is there)
  except ImportError:
    return None
  from jax.experimental import topologies
  # Compiling only: several processes may load libtpu at once (else the first one's
  # /tmp/libtpu_lockfile refuses the others, e.g. a running --table or a training run).
  os.environ.setdefault('ALLOW_MULTIPLE_LIBTPU_LOAD', '1')
  return topologies.get_topology_desc(
      platform='tpu', topology_name=slice_.topology, chip_config_name=slice_.chip_config,
      chips_per_host_bounds=slice_.chips_per_host, num_slices=num_slices,
      wrap=(False, False, False)).devices


def _per_chip_bytes(abstract_tree, shardings) -> int:
  import jax
  return sum(math.prod(s.shard_shape(v.shape)) * v.dtype.itemsize
             for v, s in zip(jax.tree.leaves(abstract_tree), jax.tree.leaves(shardings)))


def check(config, slice_: Slice, num_slices: int = 1) -> dict[str, Any]:
  """Compiles (or, without libtpu, lowers) the train step for the slice; the report."""
  import jax
  from flax import nnx
  from jax.sharding import AbstractMesh, AxisType

  from gemini_embed import flops, optim, sharding
  from gemini_embed.configlib import check_config
  from gemini_embed.data import pipeline
  from gemini_embed.models.embedder import Embedder
  from gemini_embed.models.model_config import TransformerConfig
  from gemini_embed.train_state import abstract_train_state
  from gemini_embed.train_step import jitted_train_step

  num_devices = slice_.chips * num_slices
  check_config(config, num_devices=num_devices)
  devices = tpu_devices(slice_, num_slices)
  if devices is not None:
    mesh = sharding.make_mesh(config.mesh, devices)
  else:
    logging.warning('libtpu is not installed: lowering on an AbstractMesh only (no XLA:TPU '
                    'memory analysis); pip install -e .[tpu] for the full check')
    mesh = AbstractMesh(sharding.mesh_shape(config.mesh, num_devices), sharding.MESH_AXES,
                        axis_types=(AxisType.Auto,) * 3)
  cfg = TransformerConfig.from_config(config.model)
  tx = optim.make_optimizer(config.optim, config.total_steps)
  graphdef, abstract, shardings = abstract_train_state(
      lambda: Embedder(cfg, config.embed_dim, nnx.Rngs(0)), tx, mesh, config.sharding_rules)
  step, _ = jitted_train_step(graphdef, shardings, config)
  state = jax.tree.map(lambda v, s: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=s),
                       abstract, shardings)
  batch = abstract_batch(config, mesh)
  model_flops = flops.train_step_flops(cfg, config.embed_dim, pipeline.batch_shapes(batch))
  report = dict(topology=slice_.name, num_slices=num_slices, chips=num_devices,
                mesh=dict(zip(sharding.MESH_AXES, map(int, mesh.axis_sizes))),
                hbm_per_chip=slice_.hbm_bytes,
                params=_per_chip_bytes(abstract['model'], shardings['model']),
                optimizer=_per_chip_bytes(abstract['optimizer'], shardings['optimizer']),
                batch=_per_chip_bytes(batch, jax.tree.map(lambda x: x.sharding, batch)))
  if devices is None:
    step.trace(state, batch).lower(lowering_platforms=('tpu',))
    return dict(report, compiled=False, fits=None)
  compiled = step.lower(state, batch).compile()
  memory = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  total = (memory.argument_size_in_bytes + memory.output_size_in_bytes
           - memory.alias_size_in_bytes + memory.temp_size_in_bytes
           + memory.generated_code_size_in_bytes)
  return dict(report, compiled=True, temp=memory.temp_size_in_bytes,
              arguments=memory.argument_size_in_bytes, outputs=memory.output_size_in_bytes,
              aliased=memory.alias_size_in_bytes, code=memory.generated_code_size_in_bytes,
              total=total, fits=total <= slice_.hbm_bytes,
              xla_flops=float(cost.get('flops', 0.0)),
              model_flops_per_chip=model_flops / num_devices,
              step_seconds_at_peak=model_flops / num_devices / slice_.peak_flops)


def format_report(r: dict[str, Any]) -> str:
  gib = lambda n: f'{n / GiB:8.3f} GiB'
  lines = [f'{r["topology"]} × {r["num_slices"]}: {r["chips"]} chips, mesh {r["mesh"]}, '
           f'HBM {r["hbm_per_chip"] / GiB:g} GiB per chip',
           f'  params        {gib(r["params"])}   (per chip, from the shardings)',
           f'  optimizer     {gib(r["optimizer"])}',
           f'  batch         {gib(r["batch"])}']
  if not r['compiled']:
    lines.append('  lowered only (no libtpu): temporaries/activations unknown, fit not decided')
    return '\n'.join(lines)
  lines += [f'  arguments     {gib(r["arguments"])}   (XLA: the above laid out in TPU tiles; '
            f'{gib(r["aliased"]).strip()} donated)',
            f'  temp          {gib(r["temp"])}   (activations, gradients, scratch: XLA)',
            f'  code          {gib(r["code"])}',
            f'  total         {gib(r["total"])}   (arguments + outputs − donated + temp + code)',
            f'  flops/step    {r["model_flops_per_chip"]:.3e} per chip (flops.py, the full batch '
            f'padded): {r["step_seconds_at_peak"]:.2f} s at 100% of peak',
            f'                {r["xla_flops"]:.3e} per chip (XLA cost analysis: it counts a '
            'loop body once — the layer scan, grad-cache chunks)',
            f'  {"FITS" if r["fits"] else "DOES NOT FIT"} in {r["hbm_per_chip"] / GiB:g} GiB']
  return '\n'.join(lines)


def table(configs: list[str], topologies: list[str]) -> None:
  """Prints the README table, a row as soon as it is done: one `python -m gemini_embed.aot`
  subprocess per cell (a cell that runs out of host memory fails alone)."""
  print('| config | ' + ' | '.join(topologies) + ' |', flush=True)
  print('|---|' + '---|' * len(topologies), flush=True)
  for config in configs:
    cells = []
    for topology in topologies:
      out = os.path.join(os.environ.get('TMPDIR', '/tmp'), f'aot-{os.getpid()}.json')
      proc = subprocess.run([sys.executable, '-m', 'gemini_embed.aot', f'--config={config}',
                             f'--topology={topology}', f'--json={out}'],
                            capture_output=True, text=True)
      if not os.path.exists(out):
        cells.append(f'error (exit {proc.returncode})')
        logging.error('%s on %s failed:\n%s', config, topology, proc.stderr[-2000:])
        continue
      with open(out) as f:
        r = json.load(f)
      os.remove(out)
      cells.append(_cell(r))
      logging.info('%s on %s: %s', config, topology, cells[-1])
    print(f'| `{config.partition(":")[2]}` | ' + ' | '.join(cells) + ' |', flush=True)


def _cell(r: dict[str, Any]) -> str:
  mesh = f'fsdp {r["mesh"]["fsdp"]}×data {r["mesh"]["data"]}'
  if not r['compiled']:
    return f'state {(r["params"] + r["optimizer"]) / GiB:.2f} GiB (lowered only), {mesh}'
  verdict = 'fits' if r['fits'] else '**no**'
  return f'{verdict}: {r["total"] / GiB:.1f} / {r["hbm_per_chip"] / GiB:.0f} GiB, {mesh}'


def main(argv):
  del argv
  import jax
  jax.config.update('jax_platforms', 'cpu')  # compile for the TPU; run nothing here
  if _TABLE.value:
    table(_TABLE_CONFIGS.value, _TABLE_TOPOLOGIES.value)
    return
  if _CONFIG.value is None:
    raise app.UsageError('--config=configs/NAME.py[:ARGS] is required (or --table)')
  try:
    slice_ = parse_slice(_TOPOLOGY.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if _HBM_GIB.value is not None:
    slice_ = dataclasses.replace(slice_, hbm_bytes=int(_HBM_GIB.value * GiB))
  config = slice_config(_CONFIG.value, slice_, _NUM_SLICES.value)
  report = check(config, slice_, _NUM_SLICES.value)
  print(format_report(report))
  if _JSON.value:
    with open(_JSON.value, 'w') as f:
      json.dump(report, f, indent=2)
  if report['fits'] is False:
    sys.exit(NOT_FIT_EXIT_CODE)


if __name__ == '__main__':
  from gemini_embed.configlib import parse_config_flags
  app.run(main, flags_parser=parse_config_flags)
