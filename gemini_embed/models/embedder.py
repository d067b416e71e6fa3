"""The embedding model: E = f(P(M(T))).

    M: bidirectional transformer (models/transformer.py)
    P: masked mean pooling over real tokens
    f: randomly initialised linear projection width → embed_dim (3072)

Embeddings come out un-normalised; losses and `encode` normalise each MRL
prefix themselves (a prefix of a unit vector is not a unit vector).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx
from jax import Array
from jaxtyping import Bool, Float

from gemini_embed.models import layers
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.transformer import Transformer


def mean_pool(hidden: Float[Array, 'B S D'], valid: Bool[Array, 'B S']) -> Float[Array, 'B D']:
  """Mean over real tokens only, in float32 (an all-padding row pools to 0)."""
  w = valid.astype(jnp.float32)[..., None]
  total = jnp.sum(hidden.astype(jnp.float32) * w, axis=1)
  return total / jnp.maximum(jnp.sum(w, axis=1), 1.0)


def l2_normalize(x: Float[Array, '*B D'], eps: float = 1e-12) -> Float[Array, '*B D']:
  """x / |x| over the last axis, in float32; eps keeps a zero vector finite."""
  x = x.astype(jnp.float32)
  return x / jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps))


class Embedder(nnx.Module):
  """Backbone → mean pool → projection; optionally the loss's learned temperature.

  `temperature`: None (τ is `config.loss.temperature`, not a parameter) or the
  initial τ of a learned `log_temperature` (an f32 scalar Param, log τ), which the
  loss reads (train_step.temperature_of) and checkpoints, soups and restores carry
  like any other parameter. It does not change the embeddings.
  """

  def __init__(self, cfg: TransformerConfig, embed_dim: int, rngs: nnx.Rngs, *,
               temperature: float | None = None):
    self.backbone = Transformer(cfg, rngs)
    self.projection = layers.param(rngs, layers.dense_init(cfg.width), (cfg.width, embed_dim),
                                   ('embed', 'proj_out'), jnp.dtype(cfg.param_dtype))
    if temperature is not None:
      self.log_temperature = nnx.Param(jnp.log(jnp.asarray(temperature, jnp.float32)))

  def __call__(self, tokens: Array, valid: Array) -> Array:
    """tokens Int[B, S], valid Bool[B, S] → embeddings F32[B, embed_dim]."""
    pooled = mean_pool(self.backbone(tokens, valid), valid)
    return pooled @ self.projection[...].astype(jnp.float32)
