"""The KV cache of causal decoding: every layer's keys and values, slot by slot.

    slot   0 ............ S-1 │ S ......................... T-1
           prompts (prefill,  │ one token per decode step,
           left-padded)       │ every row at the same slot

Rows decode in lockstep: a step writes slot `index` of every row, so a batch of
prompts of mixed lengths is left-padded (padding slots stay `valid=False`) and
each token's RoPE position is an input (`positions`: 0 at a row's first real
token), not its slot. A query sees a cached slot when it is valid and its position
is not after the query's; on a sliding-window layer (Gemma 3's local layers) also
only when q_pos - k_pos < window. That window is a mask over a full-length cache
(T slots on every layer): the scanned layer stack needs one shape for all layers,
and local and global layers share it. A rolling 512-slot cache for the local
layers would save (1 - 512/T) of their memory on long contexts; not done here.

`fresh` (static, not traced) says nothing is written yet: the transformer then
attends over the new tokens only, on the model's ordinary attention path (prefill),
and writes their keys and values at slot 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array
from jaxtyping import Bool, Float, Int

from gemini_embed import sharding
from gemini_embed.models.model_config import TransformerConfig

# Logical axes of the cached keys/values (sharding.DEFAULT_RULES: batch over the data
# axes, KV heads over tensor where they divide).
AXES = ('layers', 'batch', 'length', 'kv_heads', 'head_dim')
SLOT_AXES = ('batch', 'length')


@struct.dataclass
class KVCache:
  k: Float[Array, 'L B T K H']
  v: Float[Array, 'L B T K H']
  positions: Int[Array, 'B T']     # each slot's RoPE position
  valid: Bool[Array, 'B T']        # written with a real token
  index: Int[Array, '']            # the next slot to write
  fresh: bool = struct.field(pytree_node=False, default=True)

  @classmethod
  def init(cls, cfg: TransformerConfig, batch: int, length: int) -> 'KVCache':
    """An empty cache of `length` slots in the compute dtype."""
    shape = (cfg.num_layers, batch, length, cfg.num_kv_heads, cfg.head_dim)
    dt = cfg.policy.compute_dtype
    return cls(k=jnp.zeros(shape, dt), v=jnp.zeros(shape, dt),
               positions=jnp.zeros((batch, length), jnp.int32),
               valid=jnp.zeros((batch, length), bool), index=jnp.zeros((), jnp.int32))

  @property
  def length(self) -> int:
    return self.k.shape[2]

  def write(self, k: Float[Array, 'L B S K H'], v: Float[Array, 'L B S K H'],
            positions: Int[Array, 'B S'], valid: Bool[Array, 'B S']) -> 'KVCache':
    """The cache with S new slots written at `index` (not fresh any more)."""
    i = self.index
    put = jax.lax.dynamic_update_slice
    k = sharding.constrain(put(self.k, k.astype(self.k.dtype), (0, 0, i, 0, 0)), AXES)
    v = sharding.constrain(put(self.v, v.astype(self.v.dtype), (0, 0, i, 0, 0)), AXES)
    return KVCache(k=k, v=v,
                   positions=put(self.positions, positions.astype(jnp.int32), (0, i)),
                   valid=put(self.valid, valid.astype(bool), (0, i)),
                   index=i + positions.shape[1], fresh=False)


def shardings(cache: KVCache, mesh, rules) -> KVCache:
  """NamedShardings of `cache` (arrays or shapes) from the logical rules."""
  def named(names, x):
    return jax.sharding.NamedSharding(mesh, sharding.logical_to_spec(names, x.shape, mesh, rules))
  return KVCache(k=named(AXES, cache.k), v=named(AXES, cache.v),
                 positions=named(SLOT_AXES, cache.positions),
                 valid=named(SLOT_AXES, cache.valid), index=named((), cache.index),
                 fresh=cache.fresh)
