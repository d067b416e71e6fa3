"""The optimiser's groups, checked on one AdamW step against the closed form: Adam's
first step moves each weight by lr·sign(g) (bias-corrected m/√v = g/|g|)."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gemini_embed import optim
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.presets import PRESETS


def _one_step(**overrides):
  cfg = optim.default_optim_config()
  cfg.update(dict(warmup_steps=0, schedule='constant', eps=1e-12, clip_norm=0.0), **overrides)
  model = Embedder(TransformerConfig(**PRESETS['tiny']), 16, nnx.Rngs(0))
  before = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
  opt = nnx.Optimizer(model, optim.make_optimizer(cfg, total_steps=10), wrt=nnx.Param)
  tokens = jnp.arange(24, dtype=jnp.int32).reshape(2, 12)
  valid = jnp.ones((2, 12), bool)
  grads = nnx.grad(lambda m: jnp.sum(jnp.sin(m(tokens, valid))))(model)
  opt.update(model, grads)
  after = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
  g = jax.tree.map(np.asarray, nnx.to_pure_dict(grads))
  return before, after, g


def test_lr_multiplier_and_frozen_groups():
  lr = 1e-3
  before, after, g = _one_step(learning_rate=lr, lr_mults=(('projection', 10.0),),
                               frozen=('backbone/embedding',))
  np.testing.assert_array_equal(after['backbone']['embedding'], before['backbone']['embedding'])
  step = after['projection'] - before['projection']
  np.testing.assert_allclose(step, -10 * lr * np.sign(g['projection']), rtol=1e-4, atol=1e-9)
  q = after['backbone']['blocks']['attn']['q_proj'] - before['backbone']['blocks']['attn']['q_proj']
  np.testing.assert_allclose(q, -lr * np.sign(g['backbone']['blocks']['attn']['q_proj']),
                             rtol=1e-4, atol=1e-9)


def test_weight_decay_skips_norms():
  lr, wd = 1e-3, 0.1
  before, after, g = _one_step(learning_rate=lr, weight_decay=wd)
  w0 = before['backbone']['blocks']['mlp']['up']
  want = w0 - lr * (np.sign(g['backbone']['blocks']['mlp']['up']) + wd * w0)
  np.testing.assert_allclose(after['backbone']['blocks']['mlp']['up'], want, rtol=1e-4, atol=1e-8)
  n0 = before['backbone']['final_norm']['scale']
  np.testing.assert_allclose(after['backbone']['final_norm']['scale'],
                             n0 - lr * np.sign(g['backbone']['final_norm']['scale']),
                             rtol=1e-4, atol=1e-8)


def test_warmup_then_cosine_schedule():
  cfg = optim.default_optim_config()
  cfg.update(dict(learning_rate=1.0, warmup_steps=10, schedule='cosine', end_lr_fraction=0.1))
  lr = optim.learning_rate_schedule(cfg, total_steps=110)
  np.testing.assert_allclose([lr(0), lr(5), lr(10)], [0.0, 0.5, 1.0], atol=1e-6)
  np.testing.assert_allclose(lr(60), 0.1 + 0.9 * 0.5, atol=1e-6)  # halfway down the cosine
  np.testing.assert_allclose(lr(110), 0.1, atol=1e-6)


def test_frozen_parameters_are_held_behind_stop_gradient():
  """optim.stop_frozen_gradients: a frozen group's gradient is exactly zero (so it takes
  no share of the clipping norm or grad_norm); every other gradient is unchanged."""
  model = Embedder(TransformerConfig(**PRESETS['tiny']), 16, nnx.Rngs(0))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  tokens = jnp.arange(24, dtype=jnp.int32).reshape(2, 12)
  valid = jnp.ones((2, 12), bool)

  def grads(frozen):
    def loss(p):
      m = nnx.merge(graphdef, optim.stop_frozen_gradients(p, frozen), rest)
      return jnp.sum(jnp.sin(m(tokens, valid)))
    return jax.tree.map(np.asarray, nnx.to_pure_dict(jax.grad(loss)(params)))

  plain, held = grads(()), grads(('backbone/embedding',))
  assert np.abs(plain['backbone']['embedding']).max() > 0
  np.testing.assert_array_equal(held['backbone']['embedding'], 0.0)
  held['backbone']['embedding'] = plain['backbone']['embedding']
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9), held, plain)
