"""Gradient caching: the same gradients as the full-batch backward, and a
compiled step whose memory follows the chunk size, not the batch size."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gemini_embed import grad_cache, sharding
from gemini_embed.data.batch import Batch
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.train_step import loss_and_grads
from tests import nce_reference as ref

CONFIG = ref.tiny_config()
MODEL = TransformerConfig.from_config(CONFIG.model)


@pytest.fixture(scope='module')
def model():
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  return sharding.sharded_init(lambda: Embedder(MODEL, CONFIG.embed_dim, nnx.Rngs(CONFIG.seed)),
                               mesh, sharding.DEFAULT_RULES)


FAST_COMPILE = ref.FAST_COMPILE


def _step(loss_config, chunk):
  return ref.jitted_loss_and_grads(loss_config, chunk, CONFIG.mrl_dims)


def test_chunks_are_strided_and_merge_back():
  x = np.arange(12 * 2).reshape(12, 2)
  chunks = grad_cache.split_chunks(jnp.asarray(x), 3)
  assert chunks.shape == (3, 4, 2)
  np.testing.assert_array_equal(np.asarray(chunks[1, :, 0]), x[1::3, 0])  # rows {j·3 + 1}
  np.testing.assert_array_equal(np.asarray(grad_cache.merge_chunks(chunks)), x)
  with pytest.raises(ValueError, match='equal chunks'):
    grad_cache.split_chunks(jnp.asarray(x), 5)


def test_same_gradients_as_the_full_batch(model):
  """Every option on (K = 2 negatives, some absent, cross negatives, hardness
  weight, duplicate mask, MRL weights): GradCache's grads = the full backward's."""
  loss_config = CONFIG.loss.copy_and_resolve_references()
  loss_config.cross_negatives, loss_config.hardness_alpha = True, 5.0
  loss_config.mrl_weights = (0.5, 1.0, 2.0)
  batch = ref.random_batch(1, CONFIG.batch_size, MODEL.vocab_size, k=2)
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
