"""Transformer building blocks (Flax NNX). Every parameter carries logical axis
names (`out_sharding` metadata); `gemini_embed.sharding` maps them to the mesh.

Logical axes: vocab, embed (model width), heads, kv_heads, head_dim, mlp,
norm, proj_out (embedding head output), layers (added by the layer scan).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import Array
from jaxtyping import Bool, Float, Int

from gemini_embed.models.attention import attend, attend_cached
from gemini_embed.models.model_config import TransformerConfig


def param(rngs: nnx.Rngs, init, shape: Sequence[int], names: Sequence[str | None],
          dtype) -> nnx.Param:
  return nnx.Param(init(rngs.params(), tuple(shape), dtype), out_sharding=tuple(names))


def dense_init(fan_in: int):
  return nnx.initializers.normal(stddev=fan_in ** -0.5)


class RMSNorm(nnx.Module):
  """x / rms(x) * (offset + w), computed in float32 (Gemma: offset 1, w init 0)."""

  def __init__(self, dim: int, cfg: TransformerConfig, rngs: nnx.Rngs):
    self.offset = cfg.norm_offset
    self.eps = cfg.norm_eps
    init = nnx.initializers.zeros if self.offset else nnx.initializers.ones
    self.scale = param(rngs, init, (dim,), ('norm',), cfg.policy.param_dtype)

  def __call__(self, x: Float[Array, '*B D']) -> Float[Array, '*B D']:
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return (x32 * (self.offset + self.scale[...].astype(jnp.float32))).astype(x.dtype)


def rope_tables(positions: Int[Array, 'B S'], head_dim: int, base: float, scale: float = 1.0
                ) -> tuple[Float[Array, 'B S H'], Float[Array, 'B S H']]:
  """(sin, cos) in float32, H = head_dim, HF/NeoX convention (rotate halves)."""
  inv_freq = 1.0 / (base ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
  inv_freq = inv_freq / scale
  angles = positions.astype(jnp.float32)[..., None] * inv_freq
  angles = jnp.concatenate([angles, angles], axis=-1)
  return jnp.sin(angles), jnp.cos(angles)


def apply_rope(x: Float[Array, 'B S N H'], sin: Float[Array, 'B S H'],
               cos: Float[Array, 'B S H']) -> Float[Array, 'B S N H']:
  """Rotates each of the N heads by its position's angles (rope_tables)."""
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  sin, cos = sin[:, :, None, :], cos[:, :, None, :]
  return (x.astype(jnp.float32) * cos + rotated.astype(jnp.float32) * sin).astype(x.dtype)


class LayerCache(NamedTuple):
  """One layer's view of the KV cache (models/kv_cache.py) for a call that fills it.
  k, v None: the cache is fresh (prefill: attend over the new tokens only)."""
  k: Float[Array, 'B T K H'] | None
  v: Float[Array, 'B T K H'] | None
  positions: Int[Array, 'B T'] | None   # the slots' positions
  valid: Bool[Array, 'B T'] | None
  query_positions: Int[Array, 'B S']    # the new tokens' positions


# The keys and values of a call's new tokens, for the cache to store.
NewKV = tuple[Float[Array, 'B S K H'], Float[Array, 'B S K H']]


class Attention(nnx.Module):
  """Grouped-query attention with optional q/k-norm and QKV bias; the attention itself
  is attention.attend on the backend cfg.attention_impl names."""

  def __init__(self, cfg: TransformerConfig, rngs: nnx.Rngs):
    pd = cfg.policy.param_dtype
    d, h, k, hd = cfg.width, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    self.cfg = cfg
    self.q_proj = param(rngs, dense_init(d), (d, h, hd), ('embed', 'heads', 'head_dim'), pd)
    self.k_proj = param(rngs, dense_init(d), (d, k, hd), ('embed', 'kv_heads', 'head_dim'), pd)
    self.v_proj = param(rngs, dense_init(d), (d, k, hd), ('embed', 'kv_heads', 'head_dim'), pd)
    self.o_proj = param(rngs, dense_init(h * hd), (h, hd, d), ('heads', 'head_dim', 'embed'), pd)
    if cfg.qkv_bias:
      zeros = nnx.initializers.zeros
      self.q_bias = param(rngs, zeros, (h, hd), ('heads', 'head_dim'), pd)
      self.k_bias = param(rngs, zeros, (k, hd), ('kv_heads', 'head_dim'), pd)
      self.v_bias = param(rngs, zeros, (k, hd), ('kv_heads', 'head_dim'), pd)
    if cfg.qk_norm:
      self.q_norm = RMSNorm(hd, cfg, rngs)
      self.k_norm = RMSNorm(hd, cfg, rngs)

  def __call__(self, x: Float[Array, 'B S D'], segment_ids: Int[Array, 'B S'],
               is_sliding: Bool[Array, ''] | bool, sin: Float[Array, 'B S H'],
               cos: Float[Array, 'B S H'], cache: LayerCache | None = None
               ) -> Float[Array, 'B S D'] | tuple[Float[Array, 'B S D'], NewKV]:
    """segment_ids: 1, 2, … per packed text, 0 = padding (attention within a segment);
    is_sliding: this layer attends within cfg.sliding_window (may be traced).

    Returns the output [B, S, D]; with `cache` (causal decoding), (output, (k, v)) with
    the new tokens' keys and values [B, S, K, H] for the cache to store."""
    cfg, dt = self.cfg, x.dtype
    q = jnp.einsum('bsd,dnh->bsnh', x, self.q_proj[...].astype(dt))
    k = jnp.einsum('bsd,dnh->bsnh', x, self.k_proj[...].astype(dt))
    v = jnp.einsum('bsd,dnh->bsnh', x, self.v_proj[...].astype(dt))
    if cfg.qkv_bias:
      q = q + self.q_bias[...].astype(dt)
      k = k + self.k_bias[...].astype(dt)
      v = v + self.v_bias[...].astype(dt)
    if cfg.qk_norm:
      q, k = self.q_norm(q), self.k_norm(k)
    q, k = apply_rope(q, sin, cos), apply_rope(k, sin, cos)
    window = cfg.sliding_window if any(cfg.layer_is_sliding()) else 0
    if cache is None or cache.k is None:
      out = attend(q, k, v, segment_ids, causal=cfg.attention_mode == 'causal',
                   window=window, scale=cfg.attn_scale, impl=cfg.attention_impl,
                   local=is_sliding)
    else:
      out = attend_cached(q, k, v, segment_ids, cache.query_positions, cache.k, cache.v,
                          cache.positions, cache.valid, window=window, scale=cfg.attn_scale,
                          local=is_sliding)
    out = jnp.einsum('bsnh,nhd->bsd', out, self.o_proj[...].astype(dt))
    return out if cache is None else (out, (k, v))


class GatedMLP(nnx.Module):
  """down(act(gate(x)) * up(x)); GeGLU (tanh-GELU) for Gemma, SwiGLU otherwise."""

  def __init__(self, cfg: TransformerConfig, rngs: nnx.Rngs):
    pd = cfg.policy.param_dtype
    d, f = cfg.width, cfg.mlp_dim
    self.activation = cfg.activation
    self.gate = param(rngs, dense_init(d), (d, f), ('embed', 'mlp'), pd)
    self.up = param(rngs, dense_init(d), (d, f), ('embed', 'mlp'), pd)
    self.down = param(rngs, dense_init(f), (f, d), ('mlp', 'embed'), pd)

  def __call__(self, x: Float[Array, '*B D']) -> Float[Array, '*B D']:
    dt = x.dtype
    g = x @ self.gate[...].astype(dt)
    g = jax.nn.gelu(g, approximate=True) if self.activation == 'gelu_tanh' else jax.nn.silu(g)
    return (g * (x @ self.up[...].astype(dt))) @ self.down[...].astype(dt)


class Block(nnx.Module):
  """Pre-norm residual block (Gemma 3 adds post-norms: the 'sandwich')."""

  def __init__(self, cfg: TransformerConfig, rngs: nnx.Rngs):
    self.sandwich = cfg.sandwich_norms
    self.attn_norm = RMSNorm(cfg.width, cfg, rngs)
    self.attn = Attention(cfg, rngs)
    self.mlp_norm = RMSNorm(cfg.width, cfg, rngs)
    self.mlp = GatedMLP(cfg, rngs)
    if self.sandwich:
      self.post_attn_norm = RMSNorm(cfg.width, cfg, rngs)
      self.post_mlp_norm = RMSNorm(cfg.width, cfg, rngs)

  def __call__(self, x: Float[Array, 'B S D'], segment_ids: Int[Array, 'B S'],
               is_sliding: Bool[Array, ''] | bool, sin: Float[Array, 'B S H'],
               cos: Float[Array, 'B S H'], cache: LayerCache | None = None
               ) -> Float[Array, 'B S D'] | tuple[Float[Array, 'B S D'], NewKV]:
    """The block's output; with `cache`, (output, the new tokens' (k, v))."""
    if cache is None:
      h = self.attn(self.attn_norm(x), segment_ids, is_sliding, sin, cos)
      kv = None
    else:
      h, kv = self.attn(self.attn_norm(x), segment_ids, is_sliding, sin, cos, cache)
    if self.sandwich:
      h = self.post_attn_norm(h)
    x = x + h
    h = self.mlp(self.mlp_norm(x))
    if self.sandwich:
      h = self.post_mlp_norm(h)
    return x + h if cache is None else (x + h, kv)
