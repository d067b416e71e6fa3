"""Sequence packing (config.data.pack): a batch's texts share rows instead of each
padding a row of its own.

    layout = row_layout(b, k, query_max_len=32, doc_max_len=64, num_row_counts=8)
    packed = pack(batch, layout, first_example=p·b, global_batch=B)   # Batch → PackedBatch

Queries, positives and negatives go into one stream of rows of
L = max(query_max_len, doc_max_len) tokens (one model call per step), each text with
its own segment id (1, 2, … within its row; 0 = padding) and positions from 0, so
attention stays within the text and its hidden states are those of the text alone
(models/masks.py). Best-fit decreasing places the texts: longest first, each into the
fullest row that still has room. The batch keeps its B examples, so the loss, its
in-batch negatives and the data order are those of the unpacked batch.

Shapes stay static and few: the number of rows R is the smallest of
`layout.row_counts` that holds the packing. The largest count holds any batch: the
"fallback" layout puts L // query_max_len queries and L // doc_max_len documents in
a row, in order, which always fits (texts are truncated to their max_len), and is
used whenever best-fit needs more rows than it. The other counts are k/n of it
(k = 1..n, n = `config.data.pack_row_counts`), rounded up to a multiple of the rows
one process must hold for the data-parallel sharding: at most n compilations.

Several processes must agree on R without talking to each other every step: there
every batch uses the largest count (`fixed=True`), which all of them know from the
config — as many token slots as the unpacked top bucket when L is a multiple of
both max lengths. One process picks the smallest count that fits each batch.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np

from gemini_embed.data.batch import Batch, PackedBatch


@dataclasses.dataclass(frozen=True)
class RowLayout:
  """Static shapes of one process's packed batches."""
  row_length: int                 # L
  row_counts: tuple[int, ...]     # the allowed R, increasing; the last always fits
  query_max_len: int
  doc_max_len: int


def row_layout(local_batch: int, num_negatives: int, *, query_max_len: int, doc_max_len: int,
               num_row_counts: int, row_multiple: int = 1, fixed: bool = False) -> RowLayout:
  """The layout of a process holding `local_batch` examples of 1 + 1 + num_negatives texts
  each; rows counts are multiples of `row_multiple` (see the module doc)."""
  length = max(query_max_len, doc_max_len)
  queries = math.ceil(local_batch / (length // query_max_len))
  docs = math.ceil(local_batch * (1 + num_negatives) / (length // doc_max_len))
  fallback = queries + docs
  up = lambda rows: math.ceil(rows / row_multiple) * row_multiple
  counts = {up(fallback)} if fixed else {
      up(math.ceil(fallback * k / num_row_counts)) for k in range(1, num_row_counts + 1)}
  return RowLayout(length, tuple(sorted(counts)), query_max_len, doc_max_len)


def best_fit_rows(lengths: Sequence[int], row_length: int) -> list[list[int]]:
  """Best-fit decreasing: rows of text indices (longest texts first, each into the
  row with the least room that still holds it); deterministic."""
  order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
  rows: list[list[int]] = []
  room: list[tuple[int, int]] = []  # (free tokens, row), sorted
  for i in order:
    j = bisect.bisect_left(room, (lengths[i], -1))
    if j == len(room):
      rows.append([i])
      bisect.insort(room, (row_length - lengths[i], len(rows) - 1))
    else:
      free, r = room.pop(j)
      rows[r].append(i)
      bisect.insort(room, (free - lengths[i], r))
  return rows


def fill_rows(tokens: Sequence[Sequence[int]], rows: Sequence[Sequence[int]],
              numbers: Sequence[int] | Mapping[int, int], shape: tuple[int, int], none: int) -> dict[str, np.ndarray]:
  """Arrays of `shape` (R, L) holding text `i` (tokens[i], numbered numbers[i]) in the
  row that `rows` puts it in: tokens, segment_ids (1, 2, … per row; 0 = padding),
  positions (from 0 per text) and text_index (its number; `none` for padding)."""
  out = dict(tokens=np.zeros(shape, np.int32), segment_ids=np.zeros(shape, np.int32),
             positions=np.zeros(shape, np.int32), text_index=np.full(shape, none, np.int32))
  for r, texts in enumerate(rows):
    start = 0
    for segment, i in enumerate(texts, 1):
      span = slice(start, start + len(tokens[i]))
      out['tokens'][r, span] = tokens[i]
      out['segment_ids'][r, span] = segment
      out['positions'][r, span] = np.arange(len(tokens[i]))
      out['text_index'][r, span] = numbers[i]
      start += len(tokens[i])
  return out


def _fallback_rows(is_query: Sequence[bool], layout: RowLayout) -> list[list[int]]:
  """Queries L // query_max_len to a row, then documents L // doc_max_len to a row."""
  rows = []
  for side, max_len in ((True, layout.query_max_len), (False, layout.doc_max_len)):
    texts = [i for i, q in enumerate(is_query) if q == side]
    per_row = layout.row_length // max_len
    rows += [texts[s:s + per_row] for s in range(0, len(texts), per_row)]
  return rows


def _texts(batch: Batch, first_example: int, global_batch: int
           ) -> tuple[list[np.ndarray], list[int], list[bool]]:
  """(tokens, global text number, is a query) of every real text of a process's batch."""
  tokens, numbers, is_query = [], [], []
  per_example = 1 + batch.num_negatives
  for i in range(batch.size):
    tokens.append(batch.query_tokens[i][batch.query_valid[i]])
    numbers.append(first_example + i)
    is_query.append(True)
  for i in range(batch.size):
    docs = [(0, batch.pos_tokens[i], batch.pos_valid[i])]
    for k in range(batch.num_negatives):
      if batch.has_neg[i, k]:
        docs.append((1 + k, batch.neg_tokens[i, k], batch.neg_valid[i, k]))
    for slot, t, v in docs:
      tokens.append(t[v])
      numbers.append(global_batch + (first_example + i) * per_example + slot)
      is_query.append(False)
  return tokens, numbers, is_query


def pack(batch: Batch, layout: RowLayout, *, first_example: int, global_batch: int
         ) -> PackedBatch:
  """A process's `Batch` (examples first_example … of a global batch of
  `global_batch`) as a `PackedBatch` of `layout`'s shapes."""
  tokens, numbers, is_query = _texts(batch, first_example, global_batch)
  lengths = [len(t) for t in tokens]
  for length, query in zip(lengths, is_query):
    max_len, field = ((layout.query_max_len, 'query_max_len') if query
                      else (layout.doc_max_len, 'doc_max_len'))
    if length > max_len:
      raise ValueError(f'a text of {length} tokens exceeds config.data.{field}={max_len}, '
                       'which packing sizes its rows by')
  rows = best_fit_rows(lengths, layout.row_length)
  if len(rows) > layout.row_counts[-1]:
    rows = _fallback_rows(is_query, layout)
  num_rows = next(r for r in layout.row_counts if r >= len(rows))
  none = global_batch * (2 + batch.num_negatives)
  out = fill_rows(tokens, rows, numbers, (num_rows, layout.row_length), none)
  return PackedBatch(**out, query_id=batch.query_id, pos_id=batch.pos_id, has_neg=batch.has_neg)
