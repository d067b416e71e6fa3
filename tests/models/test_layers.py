"""Masks, pooling and RoPE against NumPy float64 references; dtype and remat policies;
the shape annotations against a real forward pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gemini_embed.models import layers
from gemini_embed.models.embedder import Embedder, l2_normalize, mean_pool
from gemini_embed.models.layers import Block
from gemini_embed.models.masks import attention_mask
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.presets import PRESETS
from gemini_embed.models.transformer import Transformer
from tests.shape_annotations import check_call


def _np_mask(segments, mode, window):
  b, s = segments.shape
  out = np.zeros((b, s, s), bool)
  for n in range(b):
    for i in range(s):
      for j in range(s):
        ok = segments[n, i] == segments[n, j]
        if mode == 'causal':
          ok &= j <= i and (window == 0 or i - j < window)
        elif window:
          ok &= abs(i - j) <= window // 2
        out[n, i, j] = ok
  return out


@pytest.mark.parametrize('mode', ['causal', 'bidirectional'])
@pytest.mark.parametrize('window', [0, 1, 3, 4])
def test_attention_mask(mode, window):
  segments = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 2, 2, 2, 0]], np.int32)
  np.testing.assert_array_equal(attention_mask(jnp.asarray(segments), mode, window),
                                _np_mask(segments, mode, window))


@pytest.mark.parametrize('preset', ['tiny', 'tiny-gemma3'])
@pytest.mark.parametrize('mode', ['causal', 'bidirectional'])
def test_packed_texts_match_one_text_per_row(preset, mode):
  """Two texts in one row (segment ids, positions restarting) give each text the hidden
  states it has alone in a right-padded row."""
  cfg = TransformerConfig(**PRESETS[preset], attention_mode=mode)
  model = Transformer(cfg, nnx.Rngs(0))
  rng = np.random.default_rng(0)
  a, b = rng.integers(1, 512, 5), rng.integers(1, 512, 4)
  packed = np.concatenate([a, b, [0, 0, 0]])[None].astype(np.int32)
  segments = np.array([[1] * 5 + [2] * 4 + [0] * 3], np.int32)
  positions = np.array([list(range(5)) + list(range(4)) + [0, 0, 0]], np.int32)
  h = np.asarray(model(jnp.asarray(packed), jnp.asarray(segments), jnp.asarray(positions)))
  alone = np.zeros((2, 12), np.int32)
  alone[0, :5], alone[1, :4] = a, b
  valid = alone > 0
  ref = np.asarray(model(jnp.asarray(alone), jnp.asarray(valid)))
  np.testing.assert_allclose(h[0, :5], ref[0, :5], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(h[0, 5:9], ref[1, :4], rtol=1e-5, atol=1e-5)


def test_mean_pool_ignores_padding():
  rng = np.random.default_rng(0)
  h = rng.normal(size=(3, 5, 4))
  valid = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], bool)
  ref = np.stack([h[i, valid[i]].mean(0) for i in range(3)])
  np.testing.assert_allclose(mean_pool(jnp.asarray(h, jnp.float32), jnp.asarray(valid)), ref,
                             rtol=1e-6, atol=1e-6)


def _embed(cfg, tokens, valid):
  model = Embedder(cfg, 24, nnx.Rngs(0))
  return np.asarray(model(tokens, valid))


@pytest.fixture(scope='module')
def batch():
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(0, 512, (2, 10)), jnp.int32)
  valid = jnp.asarray(np.arange(10)[None] < np.array([[10], [6]]))
  return tokens, valid


def test_padding_content_does_not_change_embeddings(batch):
  tokens, valid = batch
  cfg = TransformerConfig(**PRESETS['tiny-gemma3'])
  other = jnp.where(valid, tokens, 7)
  np.testing.assert_allclose(_embed(cfg, tokens, valid), _embed(cfg, other, valid), atol=1e-6)


@pytest.mark.parametrize('remat', ['full', 'dots_saveable'])
def test_remat_changes_memory_not_values(batch, remat):
  tokens, valid = batch
  cfg = TransformerConfig(**PRESETS['tiny'])

  def grads(c):
    model = Embedder(c, 24, nnx.Rngs(0))
    return nnx.grad(lambda m: jnp.sum(m(tokens, valid) ** 2))(model)

  ref, got = grads(cfg), grads(cfg.replace(remat=remat))
  for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bfloat16_policy_keeps_float32_params(batch):
  tokens, valid = batch
  cfg = TransformerConfig(**PRESETS['tiny'],
                          precision='params=float32,compute=bfloat16,output=float32')
  model = Embedder(cfg, 24, nnx.Rngs(0))
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
  e_bf16 = np.asarray(model(tokens, valid))
  e_f32 = _embed(cfg.replace(precision='params=float32,compute=float32,output=float32'), tokens,
                 valid)
  cos = np.sum(e_bf16 * e_f32, -1) / np.linalg.norm(e_bf16, axis=-1) / np.linalg.norm(e_f32, axis=-1)
  assert np.all(cos > 0.99)
  assert not np.allclose(e_bf16, e_f32, atol=1e-6)  # bf16 compute really happened


def test_shape_annotations_hold_for_a_real_forward_pass(batch):
  """The jaxtyping annotations of the model's public functions are true of a
  tiny Gemma 3 forward pass (dims bound across each call's inputs and output)."""
  tokens, valid = batch
  cfg = TransformerConfig(**PRESETS['tiny-gemma3'])
  model = Transformer(cfg, nnx.Rngs(0))
  hidden = check_call(model.__call__, tokens, valid)
  check_call(model.logits, hidden)
  check_call(mean_pool, hidden, valid)
  check_call(l2_normalize, hidden)
  mask = check_call(attention_mask, valid.astype(jnp.int32), 'bidirectional', 4)
  positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
  sin, cos = check_call(layers.rope_tables, positions, cfg.head_dim, cfg.rope_base)
  x = jnp.take(model.embedding[...], tokens, axis=0)
  block = nnx.merge(*nnx.split(Block(cfg, nnx.Rngs(1))))
  check_call(block.__call__, x, valid.astype(jnp.int32), True, sin, cos)
  with pytest.raises(AssertionError, match='segment_ids'):  # the check itself can fail
    check_call(model.__call__, tokens, valid[:, :-1])
