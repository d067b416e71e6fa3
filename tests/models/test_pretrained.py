"""init_from a gemini_embed workdir: every parameter as saved, placed on an 8-device mesh,
and a learned temperature that follows the run that starts, not the source."""

import math
import os

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from gemini_embed import checkpoint, sharding
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.presets import PRESETS
from gemini_embed.models.pretrained import classify_source, load_pretrained

CFG = TransformerConfig(**PRESETS['tiny-gemma3'])
EMBED_DIM = 32
LEARNED_TAU = 0.03  # what the source run "learned" (its initial τ was 0.05)


def _write_workdir(path: str, temperature: float | None) -> dict:
  """A soup-like workdir (model.json + a params-only checkpoint); its params on the host."""
  model = Embedder(CFG, EMBED_DIM, nnx.Rngs(7), temperature=temperature)
  if temperature is not None:
    model.log_temperature[...] = np.log(np.float32(LEARNED_TAU))
  checkpoint.write_model_info(path, checkpoint.ModelInfo(CFG, EMBED_DIM, (16, 32),
                                                         temperature is not None))
  params = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model)))
  checkpoint.save_params_only(path, params)
  return params


@pytest.fixture(scope='module')
def workdirs(tmp_path_factory):
  plain, learned = (str(tmp_path_factory.mktemp(n)) for n in ('plain', 'learned'))
  return {'plain': (plain, _write_workdir(plain, None)),
          'learned': (learned, _write_workdir(learned, 0.05))}


def _load(path, temperature):
  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2))
  return load_pretrained(path, embed_dim=EMBED_DIM, mesh=mesh, rules=sharding.DEFAULT_RULES,
                         policies=dict(remat='none'), temperature=temperature)


def _same_tree_as_a_fresh_run(model, temperature):
  fresh = nnx.eval_shape(lambda: Embedder(CFG, EMBED_DIM, nnx.Rngs(0), temperature=temperature))
  assert nnx.graphdef(model) == nnx.graphdef(fresh)


def test_a_workdir_is_restored_bitwise_and_sharded(workdirs):
  path, saved = workdirs['plain']
  assert classify_source(path) == 'workdir'
  model, cfg = _load(path, None)
  assert cfg == CFG.replace(remat='none')
  got = nnx.to_pure_dict(nnx.state(model))
  for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(got)):
    np.testing.assert_array_equal(a, np.asarray(b))
  assert model.backbone.embedding[...].sharding.spec == P('tensor', 'fsdp')
  _same_tree_as_a_fresh_run(model, None)


@pytest.mark.parametrize('source,temperature,want', [
    ('learned', 0.05, LEARNED_TAU),  # learns τ: keeps the source's learned value
    ('plain', 0.05, 0.05),           # learns τ, the source did not: starts from config τ
    ('learned', None, None),         # does not learn τ: the source's is dropped
    ('plain', None, None),
])
def test_learned_temperature_follows_the_run(workdirs, source, temperature, want):
  model, _ = _load(workdirs[source][0], temperature)
  _same_tree_as_a_fresh_run(model, temperature)
  if want is None:
    assert not hasattr(model, 'log_temperature')
  else:
    value = model.log_temperature[...]
    assert value.dtype == np.float32 and value.shape == ()
    assert math.isclose(math.exp(float(value)), want, rel_tol=1e-6)


def test_embed_dim_mismatch_names_the_config_field(workdirs):
  mesh = sharding.make_mesh({'data': -1})
  with pytest.raises(ValueError, match='config.embed_dim=64.*embed_dim=32'):
    load_pretrained(workdirs['plain'][0], embed_dim=64, mesh=mesh, rules=sharding.DEFAULT_RULES)


def test_an_unknown_directory_says_what_init_from_accepts(tmp_path):
  os.makedirs(tmp_path / 'empty')
  with pytest.raises(ValueError, match='config.init_from=.*Hugging Face'):
    classify_source(str(tmp_path / 'empty'))
