"""Pod presets, checked before a pod is held: each preset's sharded abstract state and
its train step lower for the target mesh (an AbstractMesh of 256 chips) on this CPU,
and the per-chip parameter + optimiser bytes fit a v5e chip's 16 GiB. The shardings
are read back from the lowered program itself (the `@main` arguments' sdy.sharding),
not from the shardings we asked for; so is the residual stream's activation sharding
constraint. (Compiling for TPU, and so XLA's
memory_analysis, needs a TPU; this checks what the CPU can.)"""

import math
import re

import jax
import pytest
from flax import nnx
from jax.sharding import AbstractMesh, AxisType, NamedSharding, PartitionSpec as P

from gemini_embed import optim, sharding
from gemini_embed.aot import abstract_batch
from gemini_embed.configlib import check_config
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.train_state import abstract_train_state
from gemini_embed.train_step import jitted_train_step
from tests.train_fixtures import load_config

CHIPS = 256
HBM = 16 * 2**30
BIG = 2**20  # bytes: a state array larger than this must be split over fsdp


def _lowered_arg_shardings(text: str) -> list[tuple[tuple[int, ...], list[list[str]]]]:
  """(shape, mesh axes of each dim) of every argument of the lowered `@main`, in order."""
  signature = re.search(r'func\.func public @main\((.*?)\) ->', text, re.S).group(1)
  args = []
  for arg in re.split(r', (?=%arg\d+:)', signature):
    dims = re.match(r'%arg\d+: tensor<((?:\d+x)*)\w+>', arg).group(1)
    shape = tuple(int(d) for d in dims.split('x') if d)
    spec = re.search(r'#sdy\.sharding<@mesh, \[(.*?)\]>', arg)
    axes = [re.findall(r'"(\w+)"', d) for d in re.findall(r'\{([^}]*)\}', spec.group(1))] \
        if spec else [[] for _ in shape]
    assert len(axes) == len(shape), arg
    args.append((shape, axes, 'tf.aliasing_output' in arg))
  return args


@pytest.mark.slow
@pytest.mark.parametrize('model,stage', [('gemma3-1b', 'prefinetune'), ('gemma3-4b', 'finetune'),
                                         ('gemma3-12b', 'finetune')])
def test_pod_preset_lowers_on_its_target_mesh(model, stage):
  config = load_config('pod', f'model={model},stage={stage},chips={CHIPS}')
  check_config(config, num_devices=CHIPS)
  shape = sharding.mesh_shape(config.mesh, CHIPS)
  mesh = AbstractMesh(shape, sharding.MESH_AXES, axis_types=(AxisType.Auto,) * 3)
  cfg = TransformerConfig.from_config(config.model)
  tx = optim.make_optimizer(config.optim, config.total_steps)
  graphdef, abstract, shardings = abstract_train_state(
      lambda: Embedder(cfg, config.embed_dim, nnx.Rngs(0)), tx, mesh, config.sharding_rules)

  per_chip = 0
  for var, sh in zip(jax.tree.leaves(abstract), jax.tree.leaves(shardings)):
    per_chip += math.prod(sh.shard_shape(var.shape)) * var.dtype.itemsize
  total = sum(math.prod(v.shape) * v.dtype.itemsize for v in jax.tree.leaves(abstract))
  print(f'{model}: params+Adam {total / 2**30:.1f} GiB, per chip {per_chip / 2**30:.3f} GiB')
  assert per_chip < HBM / 4          # room left for activations
  fsdp = dict(zip(sharding.MESH_AXES, shape))['fsdp']
  assert per_chip < 1.5 * total / fsdp  # sharded over fsdp (replicated only over data)

  step, traces = jitted_train_step(graphdef, shardings, config)
  state = jax.tree.map(lambda v, s: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=s),
                       abstract, shardings)
  batch = abstract_batch(config, mesh)
  lowered = step.trace(state, batch).lower(lowering_platforms=('tpu',))
  assert len(traces) == 1

  # What the program receives: per-chip bytes from the lowered argument shardings.
  sizes = dict(zip(sharding.MESH_AXES, shape))
  args = _lowered_arg_shardings(lowered.as_text())
  state_leaves, batch_leaves = jax.tree.leaves(state), jax.tree.leaves(batch)
  assert [a[0] for a in args] == [tuple(v.shape) for v in state_leaves + batch_leaves]
  lowered_per_chip = 0
  for (shape_, axes, donated), var in zip(args, state_leaves):
    nbytes = math.prod(shape_) * var.dtype.itemsize
    split = math.prod(sizes[a] for dim in axes for a in dim)
    lowered_per_chip += nbytes // split
    assert donated, f'{shape_}: the state is donated, so the step updates it in place'
    if nbytes > BIG:
      assert any('fsdp' in dim for dim in axes), f'{shape_} {axes}: a large array not over fsdp'
  assert lowered_per_chip == per_chip
  for (_, axes, _), x in zip(args[len(state_leaves):], batch_leaves):
    assert axes[0] == ['data', 'fsdp'] and not any(axes[1:]), f'batch input {x.shape}: {axes}'

  # The residual stream [N, L, width] (bf16 compute) is pinned to the batch axes
  # (sharding.activation_sharding), forward and backward, in every layer scan.
  residual = re.findall(r'sdy\.sharding_constraint [^<]*<@mesh, \[(.*?)\]> : '
                        rf'tensor<\d+x\d+x{cfg.width}xbf16>', lowered.as_text())
  assert residual, 'no sharding constraint on the residual stream'
  assert set(residual) == {'{"data", "fsdp"}, {}, {}'}, set(residual)
