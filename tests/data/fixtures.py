"""Hermetic data fixtures: a word-level tokenizer trained in-process, JSONL datasets, configs."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from gemini_embed.configlib import base_config
from gemini_embed.data.spec import dataset_entry

SPECIALS = ['<pad>', '<unk>', '<bos>', '<eos>']


def word_tokenizer(lines) -> Tokenizer:
  """WordLevel over whitespace/punctuation words of `lines`; <pad>=0 <unk>=1 <bos>=2 <eos>=3."""
  tok = Tokenizer(models.WordLevel(unk_token='<unk>'))
  tok.pre_tokenizer = pre_tokenizers.Whitespace()
  tok.train_from_iterator(list(lines), trainers.WordLevelTrainer(special_tokens=SPECIALS))
  return tok


def write_jsonl(path, rows) -> str:
  """rows: dicts (JSON-encoded) or bytes/str lines written verbatim."""
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  with open(path, 'wb') as f:
    for row in rows:
      if isinstance(row, dict):
        row = json.dumps(row)
      f.write((row.encode('utf-8') if isinstance(row, str) else row) + b'\n')
  return str(path)


def load_jsonl(path) -> list:
  """Every line of a JSONL file, parsed."""
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f]


def numbered_rows(prefix: str, n: int, negatives: bool = True, words: int = 1):
  """Rows whose texts name their dataset and index: 'alpha q 7' → 'alpha p 7'."""
  rows = []
  for i in range(n):
    pad = ' '.join([prefix] * (i % words))
    row = {'query': f'{prefix} q {i} {pad}'.strip(), 'positive': f'{prefix} p {i}'}
    if negatives:
      row['negative'] = f'{prefix} n {i}'
    rows.append(row)
  return rows


def data_config(root, datasets: dict, *, stage: str = 'finetune', batch_size: int = 8,
                **data_fields):
  """A tiny experiment config over `datasets`: name → (rows, rate[, entry overrides])."""
  config = base_config('tiny')
  config.stage = stage
  config.batch_size = batch_size
  config.data.root = str(root)
  config.data.read_threads = 0
  config.data.num_negatives = 0 if stage == 'prefinetune' else 1
  config.data.query_max_len = 32
  config.data.doc_max_len = 32
  for name, (rows, rate, *overrides) in datasets.items():
    write_jsonl(os.path.join(str(root), f'{name}.jsonl'), rows)
    config.data.datasets[name] = dataset_entry(f'{name}.jsonl', f'{name} task', stage=stage,
                                               rate=rate, **(overrides[0] if overrides else {}))
  config.data.update(data_fields)
  return config


def vocabulary_lines(names=('alpha', 'beta', 'gamma'), n: int = 200):
  words = ['task', 'query', 'title', 'text', 'none', 'q', 'p', 'n', '|', ':'] + list(names)
  return [' '.join(words)] + [' '.join(str(i) for i in range(j, j + 50)) for j in range(0, n, 50)]


def batches_equal(a, b) -> bool:
  """Two batches (pytrees of arrays) of the same structure with equal leaves."""
  return jax.tree.structure(a) == jax.tree.structure(b) and all(
      np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def assert_resumes_exactly(new_iterator, before: int, after: int, restore=None) -> list:
  """A fresh iterator given the state of one stopped after `before` batches continues
  with exactly the next `after` batches of an uninterrupted one (not a repeat of the
  last). restore(stopped, fresh) returns the resumed iterator; by default
  fresh.set_state(stopped.get_state()). Returns the resumed iterator's batches."""
  reference = new_iterator()
  expected = [next(reference) for _ in range(before + after)]
  stopped = new_iterator()
  for _ in range(before):
    next(stopped)
  resumed = (restore or _set_state)(stopped, new_iterator())
  got = [next(resumed) for _ in range(after)]
  assert all(batches_equal(a, b) for a, b in zip(got, expected[before:]))
  assert not batches_equal(got[0], expected[before - 1])
  return got


def _set_state(stopped, fresh):
  fresh.set_state(stopped.get_state())
  return fresh
