"""One process's slice of a task-homogeneous batch: examples → prompts → `Batch`.

Duplicate ids are a 32-bit hash (CRC-32, as int32) of the normalised raw text
(NFKC, case-folded, whitespace collapsed), without prompt or title: two rows with
the same query, or the same positive, get the same id and the loss masks them as
false negatives of each other.
"""

from __future__ import annotations

import dataclasses
import unicodedata
import zlib
from typing import Sequence

import numpy as np

from gemini_embed.data import prompts
from gemini_embed.data.batch import Batch, PackedBatch
from gemini_embed.data.packing import RowLayout, pack
from gemini_embed.data.sources import Example
from gemini_embed.data.tokenization import BucketTokenizer


def normalise_text(text: str) -> str:
  return ' '.join(unicodedata.normalize('NFKC', text).casefold().split())


def text_ids(texts: Sequence[str]) -> np.ndarray:
  """Int32[N]: CRC-32 of each normalised text, reinterpreted as signed 32-bit."""
  crc = np.array([zlib.crc32(normalise_text(t).encode('utf-8')) for t in texts], np.uint32)
  return crc.view(np.int32)


@dataclasses.dataclass(frozen=True)
class DatasetPrompts:
  task: str
  query_template: str
  doc_template: str


@dataclasses.dataclass
class Collator:
  """Builds the `Batch` of one process: rows `first_row ...` of global batch `step`;
  packed into `layout`'s rows (a `PackedBatch`) when a layout is given."""
  query_encoder: BucketTokenizer
  doc_encoder: BucketTokenizer
  num_negatives: int
  seed: int = 0
  task_dropout: float = 0.0
  layout: RowLayout | None = None
  global_batch: int = 0  # examples over all processes (packing numbers texts globally)

  def __call__(self, step: int, examples: Sequence[Example], dataset: DatasetPrompts,
               first_row: int = 0) -> Batch | PackedBatch:
    rows = first_row + np.arange(len(examples))
    dropped = prompts.task_dropped(self.seed, step, rows, self.task_dropout)
    queries = [prompts.format_query(e.query, prompts.DROPPED_TASK if drop else dataset.task,
                                    dataset.query_template)
               for e, drop in zip(examples, dropped)]
    doc = lambda text, e: prompts.format_document(text, e.title, dataset.doc_template)
    k = self.num_negatives
    docs = [doc(e.positive, e) for e in examples]
    has_neg = np.zeros((len(examples), k), bool)
    neg_slots = []  # (row, k) of each real negative, in `docs` order after the positives
    for i, e in enumerate(examples):
      for j, negative in enumerate(e.negatives[:k]):
        docs.append(doc(negative, e))
        has_neg[i, j] = True
        neg_slots.append((i, j))

    query_tokens, query_valid = self.query_encoder(queries)
    doc_lists = self.doc_encoder.token_lists(docs)
    doc_tokens, doc_valid = self.doc_encoder.pad(doc_lists)
    n = len(examples)
    batch = dict(query_tokens=query_tokens, query_valid=query_valid,
                 pos_tokens=doc_tokens[:n], pos_valid=doc_valid[:n],
                 query_id=text_ids([e.query for e in examples]),
                 pos_id=text_ids([e.positive for e in examples]))
    if k:
      length = doc_tokens.shape[1]
      neg_tokens = np.full((n, k, length), self.doc_encoder.pad_id, np.int32)
      neg_valid = np.zeros((n, k, length), bool)
      for slot, (i, j) in enumerate(neg_slots):
        neg_tokens[i, j], neg_valid[i, j] = doc_tokens[n + slot], doc_valid[n + slot]
      batch.update(neg_tokens=neg_tokens, neg_valid=neg_valid, has_neg=has_neg)
    if self.layout is None:
      return Batch(**batch)
    return pack(Batch(**batch), self.layout, first_example=first_row,
                global_batch=self.global_batch)

