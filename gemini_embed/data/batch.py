"""The one batch type that crosses from the data pipeline into the train step.

A `Batch` holds the token ids of queries, positives and (optionally) hard
negatives of one task-homogeneous global batch, their padding masks, and the
duplicate ids the loss uses to mask false negatives. The pipeline builds each
process's slice as NumPy; the trainer turns slices into global jax.Arrays.

    query_tokens  Int32[B, Lq]      query_valid  Bool[B, Lq]   (task prompt included)
    pos_tokens    Int32[B, Ld]      pos_valid    Bool[B, Ld]
    neg_tokens    Int32[B, K, Ld]   neg_valid    Bool[B, K, Ld] (None when K = 0)
    has_neg       Bool[B, K]        whether example i really has its k-th negative
    query_id      Int32[B]          hash of the normalised query text
    pos_id        Int32[B]          hash of the normalised positive text

Equal ids ⇔ equal normalised text (up to 32-bit hash collisions): the loss masks
column j for row i when query_id or pos_id of j equals that of i (j ≠ i).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import numpy as np


@flax.struct.dataclass
class Batch:
  query_tokens: Any
  query_valid: Any
  pos_tokens: Any
  pos_valid: Any
  query_id: Any
  pos_id: Any
  neg_tokens: Any = None
  neg_valid: Any = None
  has_neg: Any = None

  @property
  def size(self) -> int:
    return self.query_tokens.shape[0]

  @property
  def num_negatives(self) -> int:
    return 0 if self.neg_tokens is None else self.neg_tokens.shape[1]

  def num_tokens(self) -> int:
    """Real (non-padding) tokens in the batch, for throughput metrics."""
    total = int(np.sum(self.query_valid)) + int(np.sum(self.pos_valid))
    if self.neg_valid is not None:
      total += int(np.sum(self.neg_valid))
    return total
