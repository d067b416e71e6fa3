"""The one batch type that crosses from the data pipeline into the train step.

A `Batch` holds the token ids of queries, positives and (optionally) hard
negatives of one task-homogeneous global batch, their padding masks, and the
duplicate ids the loss uses to mask false negatives. The pipeline builds each
process's slice as NumPy; the trainer turns slices into global jax.Arrays
(the fields' shapes are in their annotations: B examples, K hard negatives
each, queries padded to Lq tokens and documents to Ld).

Equal ids ⇔ equal normalised text (up to 32-bit hash collisions): the loss masks
column j for row i when query_id or pos_id of j equals that of i (j ≠ i).
"""

from __future__ import annotations

from typing import TypeAlias

import flax.struct
import jax
import numpy as np
from jaxtyping import Bool, Int

# NumPy on the host (the pipeline), jax.Array in the step.
BatchArray: TypeAlias = jax.Array | np.ndarray


@flax.struct.dataclass
class Batch:
  query_tokens: Int[BatchArray, 'B Lq']        # task prompt included
  query_valid: Bool[BatchArray, 'B Lq']        # False = padding
  pos_tokens: Int[BatchArray, 'B Ld']
  pos_valid: Bool[BatchArray, 'B Ld']
  query_id: Int[BatchArray, 'B']               # hash of the normalised query text
  pos_id: Int[BatchArray, 'B']                 # hash of the normalised positive text
  neg_tokens: Int[BatchArray, 'B K Ld'] | None = None  # None when K = 0
  neg_valid: Bool[BatchArray, 'B K Ld'] | None = None
  has_neg: Bool[BatchArray, 'B K'] | None = None  # does example i have its k-th negative?

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
