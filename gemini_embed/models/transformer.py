"""The decoder-LLM backbone as one NNX module, layers stacked and scanned.

    tokens ─embed(×√d for Gemma)─▶ [Block × L via nnx.scan] ─final norm─▶ hidden

Per-layer differences (Gemma 3's local/global layers: window and RoPE base)
enter the scan as a boolean `is_sliding[L]`, so all layers share one trace (the
attention backend turns it into a mask or a kernel choice: models/attention.py).
Under `sharding.activation_sharding` (a mesh of several devices) the residual stream
is constrained to its logical axes (sharding.RESIDUAL) into and out of every layer.
`attention_mode` switches between bidirectional (the embedder) and causal
(the LLM runtime, gemini_embed/llm/).

With a `cache` (models/kv_cache.py; causal mode) the call also writes the new
tokens' keys and values into it and returns (hidden, cache): prefill on a fresh
cache, then one token per decode step attending to the cache. Without one the
program is exactly the embedder's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax import Array
from jaxtyping import Bool, Float, Int

from gemini_embed import sharding
from gemini_embed.models import layers
from gemini_embed.models.kv_cache import KVCache
from gemini_embed.models.model_config import TransformerConfig

_REMAT_POLICIES = {
    'full': None,
    'dots_saveable': jax.checkpoint_policies.dots_saveable,
    'dots_with_no_batch_dims_saveable': jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class Transformer(nnx.Module):

  def __init__(self, cfg: TransformerConfig, rngs: nnx.Rngs):
    self.cfg = cfg
    pd = cfg.policy.param_dtype
    self.embedding = layers.param(rngs, nnx.initializers.normal(1.0), (cfg.vocab_size, cfg.width),
                                  ('vocab', 'embed'), pd)
    if not cfg.tie_embeddings:
      self.lm_head = layers.param(rngs, layers.dense_init(cfg.width),
                                  (cfg.width, cfg.vocab_size), ('embed', 'vocab'), pd)

    @nnx.split_rngs(splits=cfg.num_layers)
    @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: 'layers'})
    def make_blocks(rngs):
      return layers.Block(cfg, rngs)

    self.blocks = make_blocks(rngs)
    self.final_norm = layers.RMSNorm(cfg.width, cfg, rngs)

  def __call__(self, tokens: Int[Array, 'B S'], segment_ids: Int[Array, 'B S'] | Bool[Array, 'B S'],
               positions: Int[Array, 'B S'] | None = None, cache: KVCache | None = None
               ) -> Float[Array, 'B S D'] | tuple[Float[Array, 'B S D'], KVCache]:
    """The final-norm hidden states [B, S, D]; with `cache`, (hidden, updated cache).

    Args:
      tokens: token ids.
      segment_ids: which text each token belongs to — 1, 2, … for the texts packed
        in a row, 0 for padding; attention stays within a segment. A bool `valid`
        mask (one text per row) is accepted as is.
      positions: each token's position within its text (RoPE); None = 0, 1, … per
        row (one text per row, right-padded).
      cache: causal decoding (kv_cache.py): these tokens attend to the cache's valid
        slots and to each other, and are written at its `index`.
    """
    cfg = self.cfg
    if cache is not None and cfg.attention_mode != 'causal':
      raise ValueError(f'a KV cache needs attention_mode=causal, not {cfg.attention_mode!r}')
    segment_ids = segment_ids.astype(jnp.int32)
    dt = cfg.policy.compute_dtype
    x = jnp.take(self.embedding[...], tokens, axis=0).astype(dt)
    if cfg.embed_scale:
      x = x * jnp.asarray(cfg.width ** 0.5, dt)
    x = sharding.constrain(x, sharding.RESIDUAL)  # under activation_sharding only

    if positions is None:
      positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
    global_scale = cfg.rope_scaling_factor if cfg.rope_scaling == 'linear' else 1.0
    rope_global = layers.rope_tables(positions, cfg.head_dim, cfg.rope_base, global_scale)
    rope_local = layers.rope_tables(positions, cfg.head_dim, cfg.rope_local_base)

    def layer(x, block, is_sliding, *cached_kv):
      sin = jnp.where(is_sliding, rope_local[0], rope_global[0])
      cos = jnp.where(is_sliding, rope_local[1], rope_global[1])
      if cache is None:
        return sharding.constrain(block(x, segment_ids, is_sliding, sin, cos),
                                  sharding.RESIDUAL)
      view = (layers.LayerCache(*cached_kv, cache.positions, cache.valid, positions)
              if cached_kv else layers.LayerCache(None, None, None, None, positions))
      x, kv = block(x, segment_ids, is_sliding, sin, cos, view)
      return sharding.constrain(x, sharding.RESIDUAL), kv

    if cfg.remat != 'none':
      layer = nnx.remat(layer, policy=_REMAT_POLICIES[cfg.remat])

    is_sliding = jnp.asarray(cfg.layer_is_sliding(), bool)
    if cache is None:
      @nnx.scan(in_axes=(nnx.Carry, 0, 0), out_axes=nnx.Carry,
                unroll=min(cfg.scan_unroll, cfg.num_layers),
                transform_metadata={nnx.PARTITION_NAME: 'layers'})
      def run(x, block, is_sliding):
        return layer(x, block, is_sliding)

      x = run(x, self.blocks, is_sliding)
      return self.final_norm(x)

    # With a cache: each layer's slice of it goes in (none when fresh), its new (k, v) out.
    cached = () if cache.fresh else (cache.k, cache.v)

    @nnx.scan(in_axes=(nnx.Carry, 0, 0) + (0,) * len(cached), out_axes=(nnx.Carry, 0),
              unroll=min(cfg.scan_unroll, cfg.num_layers),
              transform_metadata={nnx.PARTITION_NAME: 'layers'})
    def run_cached(x, block, is_sliding, *cached_kv):
      return layer(x, block, is_sliding, *cached_kv)

    x, (k, v) = run_cached(x, self.blocks, is_sliding, *cached)
    return self.final_norm(x), cache.write(k, v, positions, segment_ids > 0)

  def logits(self, hidden: Float[Array, 'B S D']) -> Float[Array, 'B S V']:
    """Next-token logits in float32 (causal mode: LLM scoring, parity checks). The
    vocabulary is wide (Gemma 3: 262k): pass only the positions whose logits are needed."""
    head = self.embedding[...].T if self.cfg.tie_embeddings else self.lm_head[...]
    return jnp.einsum('bsd,dv->bsv', hidden, head.astype(hidden.dtype),
                      preferred_element_type=jnp.float32)
