"""The embedding model: E = f(P(M(T))).

    M: bidirectional transformer (models/transformer.py)
    P: masked mean pooling over real tokens (per text when texts are packed in rows)
    f: randomly initialised linear projection width → embed_dim (3072)

Embeddings come out un-normalised; losses and `encode` normalise each MRL
prefix themselves (a prefix of a unit vector is not a unit vector).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax import Array
from jaxtyping import Bool, Float, Int

from gemini_embed.models import layers
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.transformer import Transformer


def mean_pool(hidden: Float[Array, 'B S D'], valid: Bool[Array, 'B S']) -> Float[Array, 'B D']:
  """Mean over real tokens only, in float32 (an all-padding row pools to 0)."""
  w = valid.astype(jnp.float32)[..., None]
  total = jnp.sum(hidden.astype(jnp.float32) * w, axis=1)
  return total / jnp.maximum(jnp.sum(w, axis=1), 1.0)


def segment_mean_pool(hidden: Float[Array, 'R L D'], segment_ids: Int[Array, 'R L'],
                      text_index: Int[Array, 'R L'], num_texts: int) -> Float[Array, 'T D']:
  """Mean over each packed text's tokens, in float32: text t averages the tokens whose
  `text_index` is t; padding (segment 0, text_index = num_texts) is dropped with a
  `where`, so a NaN there (a kernel's row without a visible key) never reaches a mean.
  A text without tokens (an absent negative) pools to 0."""
  real = segment_ids > 0
  h = jnp.where(real[..., None], hidden.astype(jnp.float32), 0.0)
  index = jnp.where(real, text_index, num_texts).reshape(-1)
  drop = jax.lax.GatherScatterMode.FILL_OR_DROP  # index num_texts: out of range, dropped
  total = jax.ops.segment_sum(h.reshape(-1, h.shape[-1]), index, num_texts, mode=drop)
  count = jax.ops.segment_sum(real.reshape(-1).astype(jnp.float32), index, num_texts, mode=drop)
  return total / jnp.maximum(count, 1.0)[:, None]


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
                                   ('embed', 'proj_out'), cfg.policy.param_dtype)
    if temperature is not None:
      self.log_temperature = nnx.Param(jnp.log(jnp.asarray(temperature, jnp.float32)))

  def __call__(self, tokens: Array, valid: Array) -> Array:
    """tokens Int[B, S], valid Bool[B, S] → embeddings [B, embed_dim] in the policy's
    output dtype (float32 by default)."""
    return self._project(mean_pool(self.backbone(tokens, valid), valid))

  def embed_packed(self, tokens: Int[Array, 'R L'], segment_ids: Int[Array, 'R L'],
                   positions: Int[Array, 'R L'], text_index: Int[Array, 'R L'],
                   num_texts: int) -> Float[Array, 'T E']:
    """Texts packed in rows (data/packing.py) → embeddings [num_texts, embed_dim], in
    text-number order; equal to embedding each text alone (attention stays within its
    segment, positions restart per text)."""
    hidden = self.backbone(tokens, segment_ids, positions)
    return self._project(segment_mean_pool(hidden, segment_ids, text_index, num_texts))

  def _project(self, pooled: Float[Array, 'T D']) -> Float[Array, 'T E']:
    """The projection in float32, cast to the policy's output dtype."""
    out = pooled @ self.projection[...].astype(jnp.float32)
    return out.astype(self.backbone.cfg.policy.output_dtype)
