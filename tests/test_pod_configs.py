"""Pod presets, checked before a pod is held: each preset's sharded abstract state and
its train step lower for the target mesh (an AbstractMesh of 256 chips) on this CPU,
and the per-chip parameter + optimiser bytes fit a v5e chip's 16 GiB."""

import math

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from jax.sharding import AbstractMesh, AxisType, NamedSharding, PartitionSpec as P

from gemini_embed import optim, sharding
from gemini_embed.configlib import check_config
from gemini_embed.data.batch import Batch
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.train_state import abstract_train_state
from gemini_embed.train_step import jitted_train_step
from tests.train_fixtures import load_config

CHIPS = 256
HBM = 16 * 2**30


def _abstract_batch(config, mesh):
  b, lq, ld, k = config.batch_size, config.data.query_max_len, config.data.doc_max_len, \
      config.data.num_negatives
  spec = lambda shape, dtype: jax.ShapeDtypeStruct(
      shape, dtype, sharding=NamedSharding(mesh, P(('data', 'fsdp'), *([None] * (len(shape) - 1)))))
  neg = {}
  if k:
    neg = dict(neg_tokens=spec((b, k, ld), jnp.int32), neg_valid=spec((b, k, ld), jnp.bool_),
               has_neg=spec((b, k), jnp.bool_))
  return Batch(query_tokens=spec((b, lq), jnp.int32), query_valid=spec((b, lq), jnp.bool_),
               pos_tokens=spec((b, ld), jnp.int32), pos_valid=spec((b, ld), jnp.bool_),
               query_id=spec((b,), jnp.int32), pos_id=spec((b,), jnp.int32), **neg)


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
  lowered = step.trace(state, _abstract_batch(config, mesh)).lower(lowering_platforms=('tpu',))
  assert len(traces) == 1
  text = lowered.as_text()
  assert 'sdy.sharding' in text and '"fsdp"' in text
