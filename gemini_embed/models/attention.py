"""Attention per backend: `attend`, the one function the Attention layer calls.

    impl      runs on                 computes with
    'xla'     anything (the default)  einsum → float32 logits [B, K, G, S, S] → softmax with
                                      the [B, S, S] mask (masks.py) built here from segment ids
    'splash'  TPU (elsewhere in       Pallas splash attention: 128-token blocks, the mask
              interpret mode: tests)  computed per block (CausalMask / LocalMask / FullMask
                                      and SegmentIds); nothing S × S is stored
    'cudnn'   GPU, bf16/f16 compute   jax.nn.dot_product_attention(implementation='cudnn'):
                                      flash attention, segments as a [B, 1, S, S] bool mask;
                                      Gemma 3's bidirectional local layers use 'xla' (cuDNN
                                      has no right-side window unless causal)
    'auto'    splash on TPU, cudnn on GPU with bf16/f16 compute, xla otherwise

Windows (masks.py's convention): causal keys i-W < j <= i, bidirectional |i-j| <= W//2.
Gemma 3's layers differ in whether the window applies (`local`), which is traced in
the layer scan. 'xla' selects its mask with `where` as before (the same numbers as
before this module); a kernel's window is static, so 'splash' and 'cudnn' pick one of
two kernels with `lax.cond`. A cond rather than a scan over 5 local + 1 global layer
groups: the stacked `blocks` params (and so checkpoints, HF/GGUF import) stay as they
are, 26 layers need no remainder scan, and only the chosen kernel runs; the cost is
one scalar predicate per layer and compiling both kernels once.

No row of any mask is empty: padding (segment 0) sees padding, every token sees itself.

On a multi-device mesh (inside `sharding.activation_sharding`) 'splash' runs under
`jax.shard_map`: a Pallas kernel is not partitioned by XLA, so each device runs it on
its rows (the 'batch' rule's axes) and, when both the query and the k/v head counts
divide the 'heads' axes, its heads (GQA groups stay together); otherwise heads stay
whole on each device.

Decoding with a KV cache (models/kv_cache.py): prefill runs `attend` over the prompt;
each decode step's token attends to the cache with `attend_cached` (xla math: one
query row per token, nothing to fuse).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from absl import logging
from jax import Array
from jax.sharding import PartitionSpec as P
from jax.experimental.pallas.ops.tpu import splash_attention as splash
from jaxtyping import Bool, Float, Int

from gemini_embed import sharding
from gemini_embed.models.masks import attention_mask
from gemini_embed.models.model_config import ATTENTION_IMPLS, CUDNN_DTYPES

# Splash attention's blocks with segment ids are multiples of 128 tokens.
SPLASH_BLOCK = 128


def attend(q: Float[Array, 'B S N H'], k: Float[Array, 'B S K H'], v: Float[Array, 'B S K H'],
           segment_ids: Int[Array, 'B S'], *, causal: bool, window: int, scale: float,
           impl: str, local: Bool[Array, ''] | bool = True) -> Float[Array, 'B S N H']:
  """Softmax(q·k·scale) v within each segment, in q's dtype (logits in float32).

  Args:
    segment_ids: 1, 2, … per packed text, 0 = padding; attention stays in a segment.
    causal: keys up to the query only (else bidirectional).
    window: the sliding window (0 = none), applied where `local` is true.
    local: whether this layer uses the window; may be traced (the layer scan).
    impl: one of ATTENTION_IMPLS (config.model.attention_impl).
  """
  chosen = resolve_impl(impl, q.dtype)
  if chosen == 'xla':
    return _xla(q, k, v, segment_ids, causal=causal, window=window, scale=scale, local=local)
  if chosen == 'splash':
    one = functools.partial(_splash, causal=causal, scale=scale)
  else:
    one = functools.partial(_cudnn, causal=causal, scale=scale, strict=impl == 'cudnn')
  if not window or local is False:
    return one(q, k, v, segment_ids, window=0)
  if local is True:
    return one(q, k, v, segment_ids, window=window)
  return jax.lax.cond(local, functools.partial(one, window=window),
                      functools.partial(one, window=0), q, k, v, segment_ids)


def attend_cached(q: Float[Array, 'B S N H'], k: Float[Array, 'B S K H'],
                  v: Float[Array, 'B S K H'], segment_ids: Int[Array, 'B S'],
                  positions: Int[Array, 'B S'], cache_k: Float[Array, 'B T K H'],
                  cache_v: Float[Array, 'B T K H'], cache_positions: Int[Array, 'B T'],
                  cache_valid: Bool[Array, 'B T'], *, window: int, scale: float,
                  local: Bool[Array, ''] | bool = True) -> Float[Array, 'B S N H']:
  """Causal attention of S new tokens (decode) to the KV cache's earlier slots and to
  each other: one softmax over [cache slots | new tokens], the xla path's math.

  A cached slot is seen when valid and not after the query's position; where `local`,
  also only within the window (q_pos - k_pos < window, models/kv_cache.py). The new
  tokens see each other as `_xla` would (causal, within a segment, the window by index).
  """
  b, s, n, hd = q.shape
  kv_heads = k.shape[2]
  qg = q.reshape(b, s, kv_heads, n // kv_heads, hd)
  old = jnp.einsum('bskgh,btkh->bkgst', qg, cache_k.astype(q.dtype),
                   preferred_element_type=jnp.float32) * scale
  new = jnp.einsum('bskgh,btkh->bkgst', qg, k, preferred_element_type=jnp.float32) * scale
  seen = cache_valid[:, None, :] & (cache_positions[:, None, :] <= positions[:, :, None])
  own = attention_mask(segment_ids, 'causal')
  if window:
    near = (positions[:, :, None] - cache_positions[:, None, :]) < window
    seen &= jnp.where(local, near, True)
    own = jnp.where(local, attention_mask(segment_ids, 'causal', window), own)
  logits = jnp.concatenate([jnp.where(seen[:, None, None], old, -1e30),
                            jnp.where(own[:, None, None], new, -1e30)], axis=-1)
  probs = jax.nn.softmax(logits, axis=-1).astype(q.dtype)
  t = cache_k.shape[1]
  out = (jnp.einsum('bkgst,btkh->bskgh', probs[..., :t], cache_v.astype(q.dtype)) +
         jnp.einsum('bkgst,btkh->bskgh', probs[..., t:], v))
  return out.reshape(b, s, n, hd)


def resolve_impl(impl: str, dtype) -> str:
  """The backend `impl` means on this platform for this compute dtype."""
  if impl not in ATTENTION_IMPLS:
    raise ValueError(f'config.model.attention_impl={impl!r}: choose one of {ATTENTION_IMPLS}')
  if impl != 'auto':
    return impl
  platform = jax.default_backend()
  if platform == 'tpu':
    return 'splash'
  if platform == 'gpu' and jnp.dtype(dtype).name in CUDNN_DTYPES:
    return 'cudnn'
  return 'xla'


def _xla(q, k, v, segment_ids, *, causal, window, scale, local):
  """The reference math: float32 logits, masked with -1e30, softmax, in q's dtype."""
  mode = 'causal' if causal else 'bidirectional'
  mask = attention_mask(segment_ids, mode)
  if window:
    mask = jnp.where(local, attention_mask(segment_ids, mode, window), mask)
  b, s, n, hd = q.shape
  kv_heads = k.shape[2]
  q = q.reshape(b, s, kv_heads, n // kv_heads, hd)
  logits = jnp.einsum('bskgh,btkh->bkgst', q, k, preferred_element_type=jnp.float32)
  logits = logits * scale
  # A large finite negative (not -inf): a fully masked row would get uniform
  # weights instead of NaN.
  logits = jnp.where(mask[:, None, None, :, :], logits, -1e30)
  probs = jax.nn.softmax(logits, axis=-1).astype(q.dtype)
  return jnp.einsum('bkgst,btkh->bskgh', probs, v).reshape(b, s, n, hd)


def _splash(q, k, v, segment_ids, *, causal, window, scale):
  """Splash attention over each row; the sequence padded up to a multiple of 128 with
  segment id -1 (those tokens see only each other) and sliced back.

  Padding rather than refusing other lengths: bucket lengths are data settings
  (data.query_max_len, data.doc_max_len, buckets) and a 32-token query bucket is
  normal; on TPU, buckets that are multiples of 128 waste nothing here."""
  b, s, n, hd = q.shape
  padded = -(-s // SPLASH_BLOCK) * SPLASH_BLOCK
  interpret = jax.default_backend() != 'tpu'
  pad = [(0, 0), (0, padded - s), (0, 0), (0, 0)]
  heads_first = lambda x: jnp.transpose(jnp.pad(x, pad), (0, 2, 1, 3))
  # The kernel takes unscaled logits: scale q (float32 math as the xla path's logits).
  q = (q.astype(jnp.float32) * scale).astype(q.dtype)
  ids = jnp.pad(segment_ids, [(0, 0), (0, padded - s)], constant_values=-1)
  q, k, v = heads_first(q), heads_first(k), heads_first(v)

  def rows(q, k, v, ids):
    kernel = _splash_kernel(padded, q.shape[1], causal, window, interpret)
    return jax.vmap(kernel)(q, k, v, splash.SegmentIds(q=ids, kv=ids))

  active = sharding.active_activation_sharding()
  if active is None:
    out = rows(q, k, v, ids)
  else:
    q_spec, kv_spec = _splash_specs(q.shape, k.shape, *active)
    out = jax.shard_map(rows, mesh=active[0], in_specs=(q_spec, kv_spec, kv_spec, P(q_spec[0])),
                        out_specs=q_spec, check_vma=False)(q, k, v, ids)
  return jnp.transpose(out, (0, 2, 1, 3))[:, :s]


def _splash_specs(q_shape, kv_shape, mesh, rules) -> tuple[P, P]:
  """PartitionSpecs of heads-first q [B, N, S, H] and k/v [B, K, S, H] for the shard_map:
  rows over the 'batch' axes; heads over the 'heads' axes only if q's and k/v's heads
  both split the same way (each device then holds whole GQA groups)."""
  full = lambda spec: tuple(spec) + (None,) * (4 - len(spec))  # P drops trailing Nones
  q_spec = full(sharding.logical_to_spec(('batch', 'heads', None, None), q_shape, mesh, rules))
  kv_spec = full(sharding.logical_to_spec(('batch', 'kv_heads', None, None), kv_shape, mesh,
                                          rules))
  heads = q_spec[1] if q_spec[1] == kv_spec[1] else None
  return P(q_spec[0], heads, None, None), P(kv_spec[0], heads, None, None)


@functools.lru_cache(maxsize=64)
def _splash_kernel(seq: int, heads: int, causal: bool, window: int, interpret: bool):
  """One head-batched splash kernel (GQA: fewer k/v heads than q heads) per shape."""
  if interpret:
    logging.warning('attention_impl=splash on %s: Pallas interpret mode (slow; for parity '
                    'checks; use it on TPU)', jax.default_backend())
  shape = (seq, seq)
  if window and causal:
    mask = splash.LocalMask(shape, window_size=(window - 1, 0), offset=0)
  elif window:
    mask = splash.LocalMask(shape, window_size=(window // 2, window // 2), offset=0)
  elif causal:
    mask = splash.CausalMask(shape)
  else:
    mask = splash.FullMask(shape)
  block = next(b for b in (512, 256, SPLASH_BLOCK) if seq % b == 0)
  blocks = splash.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                             block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
                             block_q_dq=block, block_kv_dq=block)
  with jax.ensure_compile_time_eval():  # its block tables: constants, not tracers (cached)
    return splash.make_splash_mha(splash.MultiHeadMask([mask] * heads), block_sizes=blocks,
                                  head_shards=1, q_seq_shards=1, interpret=interpret)


def _cudnn(q, k, v, segment_ids, *, causal, window, scale, strict=True,
           implementation='cudnn'):
  """jax.nn.dot_product_attention: segments as a bool mask, a causal window as cuDNN's
  left window; a bidirectional window goes to 'xla' (cuDNN refuses a right window).

  Shapes cuDNN refuses (head_dim, odd lengths, no cuDNN): an error naming the field if
  'cudnn' was asked for (`strict`), else ('auto') 'xla' with a warning."""
  if window and not causal:
    return _xla(q, k, v, segment_ids, causal=False, window=window, scale=scale, local=True)
  same = segment_ids[:, None, :, None] == segment_ids[:, None, None, :]
  try:
    return jax.nn.dot_product_attention(
        q, k, v, mask=same, scale=scale, is_causal=causal,
        local_window_size=(window - 1, 0) if window else None, implementation=implementation)
  except (NotImplementedError, RuntimeError, ValueError) as e:
    if not strict:
      logging.warning('attention_impl=auto: cuDNN attention cannot run here (%s); using xla', e)
      return _xla(q, k, v, segment_ids, causal=causal, window=window, scale=scale, local=True)
    raise ValueError(f'config.model.attention_impl=cudnn: cuDNN attention cannot run here '
                     f'({e}); use attention_impl=auto (cuDNN where it applies, else xla) or '
                     'xla') from None
