"""Attention backends against today's math: 'xla' bit for bit, 'splash' (Pallas, interpret
mode on this CPU) forward and gradient within 1e-5, the 'cudnn' path's arguments through
jax.nn.dot_product_attention's xla implementation; packed segments and padding in every
case; the whole Transformer with splash against xla."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gemini_embed import sharding
from gemini_embed.models import attention
from gemini_embed.models.masks import attention_mask
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.presets import PRESETS
from gemini_embed.models.transformer import Transformer

# Row 0: two packed texts and padding; row 1: one text and padding.
SEGMENTS = np.array([[1] * 10 + [2] * 8 + [0] * 6, [1] * 20 + [0] * 4], np.int32)
SCALE = 0.3
CASES = [(False, 0), (False, 6), (True, 0), (True, 6)]  # (causal, window)


@pytest.fixture(scope='module')
def qkv():
  rng = np.random.default_rng(0)
  b, s = SEGMENTS.shape
  q = jnp.asarray(rng.normal(size=(b, s, 4, 16)), jnp.float32)
  k, v = (jnp.asarray(rng.normal(size=(b, s, 2, 16)), jnp.float32) for _ in range(2))
  return q, k, v, jnp.asarray(SEGMENTS)


def _before(q, k, v, segment_ids, causal, window):
  """layers.Attention's math before attention.py (the mask built by the model)."""
  mask = attention_mask(segment_ids, 'causal' if causal else 'bidirectional', window)
  b, s, n, hd = q.shape
  q = q.reshape(b, s, k.shape[2], n // k.shape[2], hd)
  logits = jnp.einsum('bskgh,btkh->bkgst', q, k, preferred_element_type=jnp.float32)
  logits = logits * SCALE
  logits = jnp.where(mask[:, None, None, :, :], logits, -1e30)
  probs = jax.nn.softmax(logits, axis=-1).astype(q.dtype)
  return jnp.einsum('bkgst,btkh->bskgh', probs, v).reshape(b, s, n, hd)


def _attend(impl, causal, window):
  return jax.jit(lambda q, k, v, ids: attention.attend(
      q, k, v, ids, causal=causal, window=window, scale=SCALE, impl=impl))


@pytest.mark.parametrize('causal,window', CASES)
def test_xla_is_todays_math_bit_for_bit(qkv, causal, window):
  want = jax.jit(_before, static_argnums=(4, 5))(*qkv, causal, window)
  np.testing.assert_array_equal(_attend('xla', causal, window)(*qkv), want)
  np.testing.assert_array_equal(_attend('auto', causal, window)(*qkv), want)  # CPU: xla


def _value_and_grads(fn, q, k, v, ids):
  cotangent = jnp.asarray(np.random.default_rng(1).normal(size=q.shape), jnp.float32)
  loss = lambda q, k, v: (jnp.sum(fn(q, k, v, ids) * cotangent), fn(q, k, v, ids))
  (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(q, k, v)
  return out, grads


@pytest.mark.parametrize('causal,window', CASES)
def test_splash_matches_xla_forward_and_gradient(qkv, causal, window):
  """24 tokens (padded to one 128 block inside), GQA 4 q heads on 2 k/v heads."""
  run = lambda impl: jax.jit(lambda *a: _value_and_grads(_attend(impl, causal, window), *a))(*qkv)
  (ref_out, ref_grads), (out, grads) = run('xla'), run('splash')
  np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
  for name, got, want in zip('qkv', grads, ref_grads):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f'd/d{name}')


@pytest.mark.parametrize('mesh_shape', [dict(data=2, fsdp=2, tensor=2),   # rows over data, heads split
                                        dict(data=1, fsdp=2, tensor=4)])  # 2 k/v heads: whole
def test_splash_on_a_mesh_runs_per_device_and_matches_xla(qkv, mesh_shape):
  """Inside activation_sharding on a multi-device mesh splash runs in a shard_map (Pallas
  is not partitioned by XLA); values and gradients still match the xla math."""
  mesh = sharding.make_mesh(mesh_shape)

  def on_mesh(q, k, v, ids):
    with sharding.activation_sharding(mesh, sharding.DEFAULT_RULES):
      return attention.attend(q, k, v, ids, causal=False, window=6, scale=SCALE, impl='splash')
  assert 'shard_map' in str(jax.make_jaxpr(on_mesh)(*qkv))
  run = lambda fn: jax.jit(lambda *a: _value_and_grads(fn, *a))(*qkv)
  (ref_out, ref_grads), (out, grads) = run(_attend('xla', False, 6)), run(on_mesh)
  np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
  for name, got, want in zip('qkv', grads, ref_grads):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f'd/d{name}')


@pytest.mark.parametrize('causal,window', CASES)
def test_cudnn_arguments_match_xla(qkv, causal, window):
  """What 'cudnn' passes to jax.nn.dot_product_attention (segment mask, causal flag, left
  window), run through its xla implementation: the same attention as ours."""
  q, k, v, ids = qkv
  got = attention._cudnn(q, k, v, ids, causal=causal, window=window, scale=SCALE,
                         implementation='xla')
  np.testing.assert_allclose(got, _before(q, k, v, ids, causal, window), rtol=1e-5, atol=1e-5)


def test_cudnn_without_a_gpu_names_the_field(qkv):
  q, k, v, ids = (x.astype(jnp.bfloat16) if x.dtype == jnp.float32 else x for x in qkv)
  with pytest.raises(ValueError, match=r'config.model.attention_impl=cudnn: cuDNN attention '
                     r'cannot run here .*attention_impl=auto'):
    _attend('cudnn', True, 0)(q, k, v, ids)


def test_attention_impl_is_checked_naming_the_field():
  with pytest.raises(ValueError, match=r"config.model.attention_impl='flash': choose one of"):
    TransformerConfig(attention_impl='flash').validate()
  with pytest.raises(ValueError, match=r"config.model.attention_impl='cudnn': .*bfloat16.*"
                     r"config.model.precision='params=float32,compute=float32,output=float32'"):
    TransformerConfig(attention_impl='cudnn').validate()
  TransformerConfig(attention_impl='cudnn',
                    precision='params=float32,compute=bfloat16,output=float32').validate()


@pytest.mark.parametrize('preset', ['tiny', 'tiny-gemma3'])
@pytest.mark.parametrize('mode', ['causal', 'bidirectional'])
def test_transformer_with_splash_matches_xla(preset, mode):
  """Packed texts and padding through every layer; tiny-gemma3's sliding and global
  layers share the scan (the kernel chosen per layer by lax.cond)."""
  cfg = TransformerConfig(**PRESETS[preset], attention_mode=mode)
  tokens = jnp.asarray(np.random.default_rng(0).integers(1, 512, SEGMENTS.shape), jnp.int32)
  ids = jnp.asarray(SEGMENTS)
  positions = jnp.asarray(np.where(SEGMENTS == 2, np.arange(24) - 10, np.arange(24)), jnp.int32)
  want = Transformer(cfg, nnx.Rngs(0))(tokens, ids, positions)
  got = Transformer(cfg.replace(attention_impl='splash'), nnx.Rngs(0))(tokens, ids, positions)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_transformer_gradient_with_splash_matches_xla():
  """The per-layer lax.cond between splash kernels, differentiated inside the layer scan."""
  cfg = TransformerConfig(**PRESETS['tiny-gemma3'])
  tokens = jnp.asarray(np.random.default_rng(0).integers(1, 512, SEGMENTS.shape), jnp.int32)
  ids = jnp.asarray(SEGMENTS)

  def grads(c):
    model = Transformer(c, nnx.Rngs(0))
    return nnx.grad(lambda m: jnp.sum(m(tokens, ids) ** 2))(model)

  want, got = grads(cfg), grads(cfg.replace(attention_impl='splash'))
  for (path, a), b in zip(jax.tree.leaves_with_path(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=jax.tree_util.keystr(path))
