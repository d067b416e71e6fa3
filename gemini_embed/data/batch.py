"""The batch types that cross from the data pipeline into the train step.

A `Batch` holds the token ids of queries, positives and (optionally) hard
negatives of one task-homogeneous global batch, their padding masks, and the
duplicate ids the loss uses to mask false negatives. The pipeline builds each
process's slice as NumPy; the trainer turns slices into global jax.Arrays
(the fields' shapes are in their annotations: B examples, K hard negatives
each, queries padded to Lq tokens and documents to Ld).

A `PackedBatch` (config.data.pack) holds the same B examples with their texts
packed several to a row (data/packing.py): the loss sees the same examples, so
the same in-batch negatives.

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

  def text_lengths(self) -> np.ndarray:
    """Tokens of every real text (absent negatives left out), for real-token FLOPs."""
    valid = [self.query_valid, self.pos_valid]
    if self.neg_valid is not None:
      valid.append(self.neg_valid[np.asarray(self.has_neg)])
    lengths = np.concatenate([np.sum(v, axis=-1).reshape(-1) for v in valid])
    return lengths[lengths > 0]


@flax.struct.dataclass
class PackedBatch:
  """B examples whose texts share rows of L tokens (R rows, a count from a small set).

  Texts are numbered globally, T = B·(2+K) of them: query i is text i, example i's
  positive is text B + i·(1+K) and its k-th negative text B + i·(1+K) + 1 + k (the
  order of `train_step.doc_inputs`). An absent negative has no tokens; padding
  tokens carry segment 0 and text number T.
  """
  tokens: Int[BatchArray, 'R L']
  segment_ids: Int[BatchArray, 'R L']          # 1, 2, … per text of a row; 0 = padding
  positions: Int[BatchArray, 'R L']            # each token's position within its text
  text_index: Int[BatchArray, 'R L']           # the token's text number; T for padding
  query_id: Int[BatchArray, 'B']
  pos_id: Int[BatchArray, 'B']
  has_neg: Bool[BatchArray, 'B K'] | None = None

  @property
  def size(self) -> int:
    return self.query_id.shape[0]

  @property
  def num_negatives(self) -> int:
    return 0 if self.has_neg is None else self.has_neg.shape[1]

  @property
  def num_texts(self) -> int:
    """T: queries, positives and negative slots (absent ones included) of the B examples."""
    return self.size * (2 + self.num_negatives)

  def num_tokens(self) -> int:
    """Real (non-padding) tokens in the batch, for throughput metrics."""
    return int(np.sum(np.asarray(self.segment_ids) > 0))

  def text_lengths(self) -> np.ndarray:
    """Tokens of every packed text, for real-token FLOPs."""
    index = np.asarray(self.text_index)[np.asarray(self.segment_ids) > 0]
    lengths = np.bincount(index)
    return lengths[lengths > 0]
