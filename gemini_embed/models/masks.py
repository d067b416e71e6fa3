"""Attention masks: segments (packing, padding), causal/bidirectional, sliding windows.

All masks are boolean, True = may attend, shaped [B, S_query, S_key]. Tokens attend
only within their own segment (`segment_ids`: 1, 2, … one per packed text; 0 =
padding), so a text never sees padding or another text of its row, and padding
sees only padding (its outputs are never pooled).

Bidirectional, no window, last position is padding (segment_ids = 1 1 1 0):

    q\\k  0 1 2 3
    0    x x x .
    1    x x x .
    2    x x x .
    3    . . . x      (padding sees padding; pooling drops it)

Two packed texts (segment_ids = 1 1 2 2): blocks on the diagonal, one per text.

Causal with a sliding window of W=2 (HF convention: key j visible when
0 <= i - j < W):

    q\\k  0 1 2 3
    0    x . . .
    1    x x . .
    2    . x x .
    3    . . x x

Bidirectional with a window W: symmetric, |i - j| <= W // 2 — the same rule
as transformers' Gemma 3 with `use_bidirectional_attention` (EmbeddingGemma).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
from jaxtyping import Bool, Int


def attention_mask(segment_ids: Int[Array, 'B S'], mode: str, window: int = 0
                   ) -> Bool[Array, 'B S S']:
  """segment_ids (0 = padding) → the [query, key] attention mask.

  `window` > 0 restricts attention to a sliding window (see module doc); texts are
  contiguous within a row, so the window on row indices is the window on positions.
  """
  seq = segment_ids.shape[-1]
  i = jnp.arange(seq)[:, None]
  j = jnp.arange(seq)[None, :]
  if mode == 'causal':
    allowed = j <= i
    if window > 0:
      allowed &= (i - j) < window
  elif mode == 'bidirectional':
    allowed = jnp.ones((seq, seq), bool)
    if window > 0:
      allowed &= jnp.abs(i - j) <= window // 2
  else:
    raise ValueError(f"attention mode {mode!r}: use 'bidirectional' or 'causal'")
  return allowed[None, :, :] & (segment_ids[:, :, None] == segment_ids[:, None, :])
