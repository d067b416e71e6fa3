"""loss_and_grads on a sharded global batch: global negatives (a 2×2×2 mesh of
8 simulated devices gives the 1-device loss and gradients), the loss equal to
the NumPy float64 formula on the model's embeddings, and a learnable τ."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gemini_embed import sharding
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from tests import nce_reference as ref
from tests.loss_fixtures import FAST_COMPILE, jitted_loss_and_grads, random_batch, tiny_config

CONFIG = tiny_config()
MODEL = TransformerConfig.from_config(CONFIG.model)
MESH_8 = dict(data=2, fsdp=2, tensor=2)
RULES = sharding.DEFAULT_RULES
K = 1


def _model(mesh):
  return sharding.sharded_init(lambda: Embedder(MODEL, CONFIG.embed_dim, nnx.Rngs(CONFIG.seed)),
                               mesh, RULES)


def _put(batch, mesh):
  return jax.tree.map(lambda x: jax.device_put(x, sharding.batch_sharding(mesh, RULES, x.ndim)),
                      batch)


def _step(loss_config, chunk):
  return jitted_loss_and_grads(loss_config, chunk, CONFIG.mrl_dims)


def _max_rel(got, want):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


def _embeddings(model, batch):
  """The model's own (1-device) embeddings, as NumPy: q [B, D], p [B, D], n [B, K, D]."""
  b, k, ld = batch.neg_tokens.shape
  graphdef, state = nnx.split(model)
  embed = jax.jit(lambda s, t, v: nnx.merge(graphdef, s)(t, v), compiler_options=FAST_COMPILE)
  q, d = (np.asarray(embed(state, t, v)) for t, v in (
      (batch.query_tokens, batch.query_valid),
      (np.concatenate([batch.pos_tokens, batch.neg_tokens.reshape(b * k, ld)]),
       np.concatenate([batch.pos_valid, batch.neg_valid.reshape(b * k, ld)]))))
  return q, d[:b], d[b:].reshape(b, k, -1)


def _reference_loss(embeddings, batch, tau):
  """The paper's formula (MRL sum) in float64 on given embeddings."""
  q, p, n = embeddings
  return ref.mrl(q, p, CONFIG.mrl_dims, neg=n, has_neg=batch.has_neg, qid=batch.query_id,
                 pid=batch.pos_id, tau=tau)[0]


@pytest.fixture(scope='module')
def setup():
  batch = random_batch(0, CONFIG.batch_size, MODEL.vocab_size, k=K)
  mesh1 = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  one = _model(mesh1)
  loss1, metrics1, grads1 = _step(CONFIG.loss, 0)(one, _put(batch, mesh1))
  return batch, one, _embeddings(one, batch), (loss1, metrics1, grads1)


@pytest.fixture(scope='module')
def eight():
  mesh8 = sharding.make_mesh(MESH_8)
  return mesh8, _model(mesh8)


def test_one_device_loss_is_the_papers_formula(setup):
  batch, _, emb, (loss1, metrics1, _) = setup
  want = _reference_loss(emb, batch, CONFIG.loss.temperature)
  err = abs(float(loss1) - want) / want
  print(f'1-device loss {float(loss1):.6f} vs NumPy float64 {want:.6f}: rel err {err:.1e}')
  assert err < 1e-5
  assert set(metrics1) >= {f'loss/{d}' for d in CONFIG.mrl_dims} | {'acc', 'temperature'}


@pytest.mark.parametrize('chunk', [0, 8])
def test_global_negatives_8_devices_equal_1_device(setup, eight, chunk):
  batch, _, _, (loss1, metrics1, grads1) = setup
  mesh8, model8 = eight
  sharded = _put(batch, mesh8)
  assert len(sharded.pos_tokens.sharding.device_set) == 8
  loss8, metrics8, grads8 = _step(CONFIG.loss, chunk)(model8, sharded)
  loss_err = abs(float(loss8) - float(loss1)) / abs(float(loss1))
  grad_err = max(_max_rel(a, b) for a, b in zip(jax.tree.leaves(grads8), jax.tree.leaves(grads1)))
  print(f'8 devices (grad_cache_chunk={chunk}) vs 1: loss rel err {loss_err:.1e}, '
        f'worst grad leaf rel err {grad_err:.1e}')
  assert loss_err < 1e-5 and grad_err < 1e-5
  for key in metrics1:
    assert float(metrics8[key]) == pytest.approx(float(metrics1[key]), rel=1e-5)


class WithTemperature(nnx.Module):
  """The trainer-side wrapper losses.py documents for a learnable τ."""

  def __init__(self, embedder, tau):
    self.embedder = embedder
    self.log_temperature = nnx.Param(jnp.log(jnp.float32(tau)))

  def __call__(self, tokens, valid):
    return self.embedder(tokens, valid)


def test_learnable_temperature_gradient(setup):
  batch, one, emb, _ = setup
  loss_config = CONFIG.loss.copy_and_resolve_references()
  loss_config.learn_temperature = True
  tau = 0.07
  loss, metrics, grads = _step(loss_config, 4)(WithTemperature(one, tau), batch)  # GradCache
  assert float(metrics['temperature']) == pytest.approx(tau, rel=1e-6)
  h = 1e-4
  fd = (_reference_loss(emb, batch, tau * np.exp(h)) -
        _reference_loss(emb, batch, tau * np.exp(-h))) / (2 * h)
  got = float(grads['log_temperature'][...])
  print(f'd loss / d log tau {got:.6f} vs NumPy finite difference {fd:.6f}')
  assert abs(float(loss) - _reference_loss(emb, batch, tau)) / float(loss) < 1e-5
  assert abs(got - fd) / abs(fd) < 1e-4
  with pytest.raises(ValueError, match='log_temperature'):
    _step(loss_config, 0)(one, batch)
