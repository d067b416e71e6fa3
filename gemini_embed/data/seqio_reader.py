"""seqio → our pipeline (the `seqio` extra; imports TensorFlow, so only the seqio
modules do, and sources.py imports this one only for format 'seqio').

    task_rows('some_task')             a registered Task's examples as our raw rows,
                                       which sources.py validates like JSONL rows
    seqio_entries('some_mixture', ...) an existing seqio Task/Mixture → `config.data.datasets`
                                       entries (format 'seqio', one per Task, the
                                       Mixture's rates), read by the grain pipeline with
                                       the usual checks and task-homogeneous batching
    SeqioVocabularyTokenizer(vocab)    a seqio Vocabulary (e.g. SentencePieceVocabulary)
                                       where the pipeline expects a `tokenizers.Tokenizer`

Rows from a seqio Task are mapped to our fields by `FIELD_ALIASES` (so T5-style
`inputs`/`targets` Tasks read as query/positive). The other direction, our datasets
as seqio Tasks, is seqio_export.py.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import ml_collections
import seqio

from gemini_embed.data import spec

FIELD_ALIASES = {'query': ('query', 'inputs'), 'positive': ('positive', 'targets'),
                 'negative': ('negative',), 'title': ('title',)}


def _text(value) -> str | list[str] | None:
  if value is None:
    return None
  if hasattr(value, 'ndim') and value.ndim:
    return [_text(v) for v in value.tolist()]
  value = value.item() if hasattr(value, 'item') else value
  return value.decode('utf-8', errors='surrogateescape') if isinstance(value, bytes) else value


def task_rows(task_name: str, split: str = 'train') -> list[dict]:
  """A registered seqio Task's examples as rows of our format (unvalidated)."""
  task = seqio.get_mixture_or_task(task_name)
  dataset = task.get_dataset(sequence_length=None, split=split, shuffle=False, seed=0)
  rows = []
  for example in dataset.as_numpy_iterator():
    row = {}
    for field, aliases in FIELD_ALIASES.items():
      for alias in aliases:
        if alias in example:
          row[field] = _text(example[alias])
          break
    if row.get('title') == '':
      row.pop('title')
    if row.get('negative') == []:
      row.pop('negative')
    rows.append(row)
  return rows


def seqio_entries(name: str, *, stage: str = 'finetune', type: str = 'retrieval',  # noqa: A002
                  task: str = 'retrieval', **templates) -> ml_collections.ConfigDict:
  """`config.data.datasets` entries for a seqio Task or Mixture (one per Task)."""
  source = seqio.get_mixture_or_task(name)
  if isinstance(source, seqio.Mixture):
    tasks = [(t.name, source.get_rate(t)) for t in source.tasks]
  else:
    tasks = [(source.name, 1.0)]
  out = ml_collections.ConfigDict()
  for task_name, rate in tasks:
    key = task_name.replace('.', '_').replace('/', '_')
    out[key] = spec.dataset_entry(task_name, task, stage=stage, rate=rate, type=type,
                                  format='seqio', **templates)
  return out


@dataclasses.dataclass(frozen=True)
class _Encoding:
  ids: list[int]


class SeqioVocabularyTokenizer:
  """The slice of `tokenizers.Tokenizer` the pipeline uses, over a seqio Vocabulary."""

  def __init__(self, vocabulary: seqio.Vocabulary):
    self.vocabulary = vocabulary

  def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False
                   ) -> list[_Encoding]:
    del add_special_tokens  # BOS/EOS come from config.data (tokenization.py)
    return [_Encoding(list(self.vocabulary.encode(t))) for t in texts]

  def token_to_id(self, token: str) -> int | None:
    model = getattr(self.vocabulary, 'tokenizer', None)  # SentencePiece processor
    if model is None:
      return None
    token_id = model.piece_to_id(token)
    return token_id if model.id_to_piece(token_id) == token else None

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
    del skip_special_tokens
    return self.vocabulary.decode(list(ids))
