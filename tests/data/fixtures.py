"""Hermetic data fixtures: a word-level tokenizer trained in-process, JSONL datasets, configs."""

from __future__ import annotations

import json
import os

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
