"""Gradient caching: the gradients of a tiny hand-differentiable encoder equal a
NumPy float64 reference (tests/nce_reference.py, tests/tiny_encoder.py) for
every chunking, the real model's equal its full-batch backward, and a compiled
step whose memory follows the chunk size, not the batch size."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gemini_embed import grad_cache, sharding
from gemini_embed.data.batch import Batch
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.losses import mrl_loss
from tests import nce_reference as ref
from tests import tiny_encoder
from tests.loss_fixtures import (FAST_COMPILE, jitted_loss_and_grads, loss_and_grads,
                                 random_batch, tiny_config)

CONFIG = tiny_config()
MODEL = TransformerConfig.from_config(CONFIG.model)


@pytest.fixture(scope='module')
def model():
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  return sharding.sharded_init(lambda: Embedder(MODEL, CONFIG.embed_dim, nnx.Rngs(CONFIG.seed)),
                               mesh, sharding.DEFAULT_RULES)


def _step(loss_config, chunk):
  return jitted_loss_and_grads(loss_config, chunk, CONFIG.mrl_dims)


def test_chunks_are_strided_and_merge_back():
  x = np.arange(12 * 2).reshape(12, 2)
  chunks = grad_cache.split_chunks(jnp.asarray(x), 3)
  assert chunks.shape == (3, 4, 2)
  np.testing.assert_array_equal(np.asarray(chunks[1, :, 0]), x[1::3, 0])  # rows {j·3 + 1}
  np.testing.assert_array_equal(np.asarray(grad_cache.merge_chunks(chunks)), x)
  with pytest.raises(ValueError, match='equal chunks'):
    grad_cache.split_chunks(jnp.asarray(x), 5)


# ---- against NumPy float64: a tiny encoder differentiated by hand --------------

TINY_B, TINY_K, TAU = 8, 2, 0.1
TINY_DIMS, TINY_WEIGHTS = (4, 8), (0.5, 2.0)
OWN, OWN_ALPHA, CROSS_ALPHA = (dict(cross=False, alpha=0.0), dict(cross=False, alpha=5.0),
                              dict(cross=True, alpha=5.0))


def _max_rel(got, want):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize('alpha', [0.0, 5.0])
def test_reference_gradients_are_the_derivative_of_the_reference_loss(alpha):
  """The hand-written float64 gradients (nce_reference.mrl_and_grads) against
  central finite differences of the reference loss: duplicates, absent and cross
  negatives, MRL weights. With α > 0 only p and log τ are compared: the
  hardness weight is a stop-gradient, which finite differences cannot see."""
  x = ref.random_inputs(8, b=10, d=6, k=2)
  kw = dict(has_neg=x['has_neg'], qid=x['qid'], pid=x['pid'], cross=True, alpha=alpha)
  dims, weights, log_tau = (3, 6), [0.5, 2.0], np.log(TAU)
  args = {name: x[name].astype(np.float64) for name in ('q', 'p', 'neg')}

  def loss(args, log_tau=log_tau):
    return ref.mrl(args['q'], args['p'], dims, weights, neg=args['neg'], tau=np.exp(log_tau),
                   **kw)[0]

  _, *grads, dlog_tau = ref.mrl_and_grads(args['q'], args['p'], dims, weights, neg=args['neg'],
                                          tau=TAU, **kw)
  h = 1e-6
  for (name, value), grad in zip(args.items(), grads):
    if alpha and name != 'p':
      continue
    fd = np.zeros_like(value)
    for idx in np.ndindex(value.shape):
      up, down = dict(args), dict(args)
      up[name], down[name] = value.copy(), value.copy()
      up[name][idx] += h
      down[name][idx] -= h
      fd[idx] = (loss(up) - loss(down)) / (2 * h)
    assert _max_rel(grad, fd) < 1e-6, name
  assert not np.any(grads[2][~x['has_neg']])  # an absent negative gets no gradient
  fd = (loss(args, log_tau + h) - loss(args, log_tau - h)) / (2 * h)
  assert abs(dlog_tau - fd) < 1e-6 * abs(fd)


def _reference(params, batch, options, log_tau=np.log(TAU)):
  """Loss and parameter gradients of the tiny encoder's MRL NCE step in float64."""
  embed = functools.partial(tiny_encoder.numpy_embed, params)
  emb = dict(q=embed(batch.query_tokens, batch.query_valid),
             p=embed(batch.pos_tokens, batch.pos_valid), n=embed(batch.neg_tokens, batch.neg_valid))
  loss, dq, dp, dn, dlog_tau = ref.mrl_and_grads(
      emb['q'], emb['p'], TINY_DIMS, list(TINY_WEIGHTS), neg=emb['n'], tau=np.exp(log_tau),
      has_neg=batch.has_neg, qid=batch.query_id, pid=batch.pos_id, **options)
  grads = {name: 0.0 for name in params}
  for tokens, valid, d_emb in ((batch.query_tokens, batch.query_valid, dq),
                               (batch.pos_tokens, batch.pos_valid, dp),
                               (batch.neg_tokens, batch.neg_valid, dn)):
    for name, g in tiny_encoder.numpy_embed_vjp(params, tokens, valid, d_emb).items():
      grads[name] = grads[name] + g
  return loss, grads, dlog_tau


@pytest.fixture(scope='module')
def tiny():
  """Tiny-encoder params and a batch with planted duplicates and absent negatives."""
  params = tiny_encoder.init_params(0)
  batch = random_batch(3, TINY_B, tiny_encoder.VOCAB, lq=6, ld=7, k=TINY_K)
  assert not batch.has_neg.all()
  return params, batch


@pytest.mark.parametrize('options,num_chunks', [(OWN, 0), (OWN, 8), (OWN_ALPHA, 2),
                                                (CROSS_ALPHA, 0), (CROSS_ALPHA, 1),
                                                (CROSS_ALPHA, 2), (CROSS_ALPHA, 8)])
def test_grad_cache_value_and_grad_equals_float64_reference(tiny, options, num_chunks):
  """grad_cache.value_and_grad (num_chunks 0: plain jax.value_and_grad) of the
  tiny encoder + mrl_loss with a learned log τ (the loss_fn's direct gradient)."""
  params, batch = tiny
  log_tau = np.log(TAU)
  want_loss, want_grads, want_dlog_tau = _reference(params, batch, options, log_tau)
  inputs = {'q': (batch.query_tokens, batch.query_valid), 'p': (batch.pos_tokens, batch.pos_valid),
            'n': (batch.neg_tokens.reshape(TINY_B * TINY_K, -1),
                  batch.neg_valid.reshape(TINY_B * TINY_K, -1))}

  def embed_fn(params, inputs):
    return {name: tiny_encoder.jax_embed(params, *tv) for name, tv in inputs.items()}

  def loss_fn(params, emb):
    return mrl_loss(emb['q'], emb['p'], dims=TINY_DIMS, weights=TINY_WEIGHTS,
                    temperature=jnp.exp(params['log_tau']),
                    negatives=emb['n'].reshape(TINY_B, TINY_K, -1), has_neg=batch.has_neg,
                    query_id=batch.query_id, pos_id=batch.pos_id,
                    cross_negatives=options['cross'], hardness_alpha=options['alpha'])

  @jax.jit
  def value_and_grad(params):
    if num_chunks:
      return grad_cache.value_and_grad(loss_fn, embed_fn, params, inputs, num_chunks)
    return jax.value_and_grad(lambda p: loss_fn(p, embed_fn(p, inputs)), has_aux=True)(params)

  f32 = {name: jnp.asarray(v, jnp.float32) for name, v in params.items()}
  (loss, _), grads = value_and_grad(dict(f32, log_tau=jnp.float32(log_tau)))
  errs = {name: _max_rel(grads[name], want_grads[name]) for name in want_grads}
  errs['log_tau'] = _max_rel(grads['log_tau'], want_dlog_tau)
  loss_err = abs(float(loss) - want_loss) / want_loss
  print(f'{options} num_chunks={num_chunks}: loss rel err {loss_err:.1e}, grads {errs}')
  assert loss_err < 1e-6 and max(errs.values()) < 1e-5


@pytest.mark.parametrize('chunk', [0, 2, 4])
def test_train_step_loss_and_grads_equals_float64_reference(tiny, chunk):
  """The trainer's entry (doc stream, row-chunked loss, config fields) with
  grad_cache_chunk = chunk on the tiny encoder, every loss option on."""
  params, batch = tiny
  loss_config = CONFIG.loss.copy_and_resolve_references()
  loss_config.temperature, loss_config.mrl_weights = TAU, TINY_WEIGHTS
  loss_config.cross_negatives, loss_config.hardness_alpha = True, 5.0
  want_loss, want_grads, _ = _reference(params, batch, dict(cross=True, alpha=5.0))
  loss, metrics, grads = jitted_loss_and_grads(loss_config, chunk, TINY_DIMS)(
      tiny_encoder.TinyEncoder(params), batch)
  errs = {name: _max_rel(grads[name][...], want) for name, want in want_grads.items()}
  loss_err = abs(float(loss) - want_loss) / want_loss
  print(f'loss_and_grads grad_cache_chunk={chunk}: loss rel err {loss_err:.1e}, grads {errs}')
  assert loss_err < 1e-6 and max(errs.values()) < 1e-5
  assert float(metrics['temperature']) == pytest.approx(TAU)


# ---- the real model: GradCache against its own full-batch backward ----------------

def test_same_gradients_as_the_full_batch(model):
  """Every option on (K = 2 negatives, some absent, cross negatives, hardness
  weight, duplicate mask, MRL weights): GradCache's grads = the full backward's."""
  loss_config = CONFIG.loss.copy_and_resolve_references()
  loss_config.cross_negatives, loss_config.hardness_alpha = True, 5.0
  loss_config.mrl_weights = (0.5, 1.0, 2.0)
  batch = random_batch(1, CONFIG.batch_size, MODEL.vocab_size, k=2)
  loss_full, m_full, g_full = _step(loss_config, 0)(model, batch)
  loss_gc, m_gc, g_gc = _step(loss_config, 4)(model, batch)
  errs = [float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
          for a, b in zip(jax.tree.leaves(g_gc), jax.tree.leaves(g_full))]
  loss_err = abs(float(loss_gc) - float(loss_full)) / float(loss_full)
  print(f'GradCache (4 chunks of 4) vs full batch: loss rel err {loss_err:.1e}, '
        f'worst grad leaf rel err {max(errs):.1e} over {len(errs)} leaves')
  assert loss_err < 1e-5 and max(errs) < 1e-5
  assert jax.tree.structure(g_gc) == jax.tree.structure(g_full)
  assert all(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(g_full))
  with pytest.raises(ValueError, match='grad_cache_chunk=5'):
    _step(loss_config, 5)(model, batch)


def _temp_bytes(model, batch_size, chunk, seq=16):
  """Temp (activation/scratch) bytes of the compiled step, from XLA's buffer
  assignment; compiled only, never run."""
  graphdef, state = nnx.split(model)
  s = jax.ShapeDtypeStruct
  batch = Batch(query_tokens=s((batch_size, seq), jnp.int32), query_valid=s((batch_size, seq), bool),
                pos_tokens=s((batch_size, seq), jnp.int32), pos_valid=s((batch_size, seq), bool),
                query_id=s((batch_size,), jnp.int32), pos_id=s((batch_size,), jnp.int32))

  def step(state, batch):
    return loss_and_grads(nnx.merge(graphdef, state), batch, mrl_dims=CONFIG.mrl_dims,
                          loss_config=CONFIG.loss, grad_cache_chunk=chunk)

  compiled = jax.jit(step).lower(state, batch).compile(FAST_COMPILE)
  return compiled.memory_analysis().temp_size_in_bytes


def test_peak_memory_follows_chunk_not_batch(model):
  small, big = 64, 1024
  full_big = _temp_bytes(model, big, 0)
  gc_small, gc_big = _temp_bytes(model, small, 16), _temp_bytes(model, big, 16)
  gc_big_2x = _temp_bytes(model, big, 32)
  mib = 2 ** 20
  print(f'temp MiB: full B={big} {full_big / mib:.1f}; chunk 16: B={small} {gc_small / mib:.1f}, '
        f'B={big} {gc_big / mib:.1f}; chunk 32: B={big} {gc_big_2x / mib:.1f}')
  assert gc_big < 0.05 * full_big                  # caching saves memory at all
  assert gc_big < 1.25 * gc_small                  # 16× the batch: (almost) no more memory
  assert gc_big_2x > 1.5 * gc_big                  # 2× the chunk: ~2× the memory
