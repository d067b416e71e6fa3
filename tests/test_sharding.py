"""Sharding proof: a (data 2, fsdp 2, tensor 2) mesh of 8 simulated devices gives the
1-device embeddings, and every parameter is really split the way the rules say."""

import logging
import re

import jax
import numpy as np
import pytest
from flax import nnx
from flax.traverse_util import flatten_dict
from jax.sharding import PartitionSpec as P

from gemini_embed import optim, sharding
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.presets import PRESETS
from gemini_embed.train_state import abstract_train_state
from gemini_embed.train_step import jitted_train_step
from tests.loss_fixtures import random_batch, tiny_config

CFG = TransformerConfig(**PRESETS['tiny-gemma3'])  # 1 KV head: exercises the fallback
MESH_8 = dict(data=2, fsdp=2, tensor=2)


def _model(mesh):
  return sharding.sharded_init(lambda: Embedder(CFG, 32, nnx.Rngs(0)), mesh, sharding.DEFAULT_RULES)


@pytest.fixture(scope='module')
def models():
  one = _model(sharding.make_mesh({'data': 1}, jax.devices()[:1]))
  eight = _model(sharding.make_mesh(MESH_8))
  return one, eight


def _embed(model, mesh):
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, CFG.vocab_size, (8, 12)).astype(np.int32)
  valid = np.arange(12)[None] < rng.integers(3, 13, (8, 1))
  tokens, valid = jax.device_put((tokens, valid), sharding.batch_sharding(mesh, sharding.DEFAULT_RULES, 2))
  return np.asarray(nnx.jit(lambda m, t, v: m(t, v))(model, tokens, valid))


def test_embeddings_match_one_device(models):
  one, eight = models
  mesh1 = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  ref, got = _embed(one, mesh1), _embed(eight, sharding.make_mesh(MESH_8))
  err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
  print(f'8-device vs 1-device relative error {err:.2e}')
  assert err < 1e-5


EXPECTED = {  # path → (spec, per-device shard shape); layers stay whole
    'backbone/embedding': (P('tensor', 'fsdp'), (256, 32)),
    'backbone/blocks/attn/q_proj': (P(None, 'fsdp', 'tensor'), (3, 32, 2, 16)),
    'backbone/blocks/attn/k_proj': (P(None, 'fsdp'), (3, 32, 1, 16)),  # 1 KV head
    'backbone/blocks/attn/o_proj': (P(None, 'tensor', None, 'fsdp'), (3, 2, 16, 32)),
    'backbone/blocks/mlp/gate': (P(None, 'fsdp', 'tensor'), (3, 32, 64)),
    'backbone/blocks/mlp/down': (P(None, 'tensor', 'fsdp'), (3, 64, 32)),
    'backbone/final_norm/scale': (P(), (64,)),
    'projection': (P('fsdp', 'tensor'), (32, 16)),
}


def test_parameters_are_sharded_as_the_rules_say(models):
  _, eight = models
  flat = flatten_dict(nnx.to_pure_dict(nnx.state(eight)), sep='/')
  for path, (spec, shard_shape) in EXPECTED.items():
    arr = flat[path]
    assert arr.sharding.spec == spec, path
    assert arr.addressable_shards[0].data.shape == shard_shape, path
    assert len({s.device for s in arr.addressable_shards}) == 8


def test_same_values_whatever_the_mesh(models):
  one, eight = models
  for a, b in zip(jax.tree.leaves(nnx.state(one)), jax.tree.leaves(nnx.state(eight))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_indivisible_dims_fall_back_to_fewer_axes():
  mesh = sharding.make_mesh(MESH_8)
  rules = (('batch', ('data', 'fsdp')), ('heads', 'tensor'))
  assert sharding.logical_to_spec(('batch', 'heads'), (6, 3), mesh, rules) == P('data')
  assert sharding.logical_to_spec(('batch', 'heads'), (8, 4), mesh, rules) == P(('data', 'fsdp'), 'tensor')


def test_fallbacks_are_logged_once_with_their_reason(caplog):
  caplog.set_level(logging.INFO)
  _model(sharding.make_mesh(MESH_8))
  lines = [r.getMessage() for r in caplog.records if 'fewer mesh axes' in r.getMessage()]
  assert len(lines) == 1
  assert "backbone/blocks/attn/k_proj" in lines[0] and "not over ['tensor']" in lines[0]
  assert '2 devices do not divide 1' in lines[0]
  caplog.clear()
  _model(sharding.make_mesh({'data': -1}))  # nothing is split: nothing falls back
  assert not [r for r in caplog.records if 'fewer mesh axes' in r.getMessage()]


def test_abstract_state_then_jit_init_equals_an_eager_init():
  mesh = sharding.make_mesh(MESH_8)
  make = lambda: Embedder(CFG, 32, nnx.Rngs(3))
  graphdef, abstract, shardings = sharding.abstract_state(make, mesh, sharding.DEFAULT_RULES)
  assert all(isinstance(v, jax.ShapeDtypeStruct) for v in jax.tree.leaves(abstract))
  state = sharding.jit_init(lambda: nnx.state(make()), shardings)
  eager = nnx.state(make())
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(eager)):
    # The same random streams (XLA may fuse the init's arithmetic differently: 1 ulp).
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
  assert nnx.merge(graphdef, state).backbone.embedding[...].sharding.spec == P('tensor', 'fsdp')


def test_parse_mesh_flag():
  assert sharding.parse_mesh('data:-1,fsdp:2,tensor:1') == {'data': -1, 'fsdp': 2, 'tensor': 1}
  with pytest.raises(ValueError, match='--mesh'):
    sharding.parse_mesh('data=2')
  with pytest.raises(ValueError, match='--mesh'):
    sharding.parse_mesh('model:2')


def test_mesh_shape_resolves_minus_one_and_rejects_bad_sizes():
  assert sharding.mesh_shape({'data': -1, 'fsdp': 2}, 8) == (4, 2, 1)
  with pytest.raises(ValueError, match='config.mesh'):
    sharding.mesh_shape({'data': 3}, 8)
  with pytest.raises(ValueError, match='unknown mesh axes'):
    sharding.mesh_shape({'model': 2}, 8)


def _residual_constraints(mesh) -> list[str]:
  """The sharding constraints on the residual stream [N, L, width] in the lowered train
  step of the tiny prefinetune config on `mesh` (one per length bucket and side)."""
  config = tiny_config()
  model = TransformerConfig.from_config(config.model)
  tx = optim.make_optimizer(config.optim, config.total_steps)
  graphdef, abstract, shardings = abstract_train_state(
      lambda: Embedder(model, config.embed_dim, nnx.Rngs(0)), tx, mesh, config.sharding_rules)
  step, _ = jitted_train_step(graphdef, shardings, config)
  state = jax.tree.map(lambda v, s: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=s),
                       abstract, shardings)
  text = step.trace(state, random_batch(0, 8, model.vocab_size)).lower().as_text()
  return re.findall(rf'sdy\.sharding_constraint .*: tensor<\d+x\d+x{model.width}xf32>', text)


def test_the_residual_stream_is_constrained_to_the_batch_axes_on_a_mesh():
  found = _residual_constraints(sharding.make_mesh({'data': 4, 'fsdp': 2}))
  assert found, 'no sharding constraint on the residual stream'
  assert all('[{"data", "fsdp"}, {}, {}]' in c for c in found), found
  # One device: nothing to split, nothing added (the program is as before).
  assert not _residual_constraints(sharding.make_mesh({'data': 1}, jax.devices()[:1]))
