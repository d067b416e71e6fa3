"""Where the builders write: training JSONL and the evaluation suite (design.md layout).

    OUT/train/NAME.jsonl                       {"query","positive","negative"?,"title"?}
    OUT/dev/retrieval/NAME/{corpus.jsonl, queries.jsonl, qrels.tsv}
    OUT/dev/reranking/NAME/test.jsonl          {"query","positive":[...],"negative":[...]}
    OUT/dev/classification/NAME/{train,test}.jsonl   {"text","label"}
    OUT/dev/clustering/NAME/test.jsonl         {"text","label"}
    OUT/dev/pair_classification/NAME/test.jsonl  {"text1","text2","label"}
    OUT/dev/sts/NAME/test.jsonl                {"text1","text2","score"}
    OUT/dev/bitext/NAME/test.jsonl             {"src","tgt"}

Splits are by source unit (module, synset, catalog, entity, headword, page): a unit
is development data when a CRC-32 of its name falls under `dev_percent`, so the
split is the same on every machine and never depends on what else was built.
"""

from __future__ import annotations

import json
import os
import random
import zlib
from typing import Iterable, Sequence


def is_dev(unit: str, dev_percent: float) -> bool:
  return zlib.crc32(unit.encode('utf-8')) % 10_000 < dev_percent * 100


def seeded_random(*key) -> random.Random:
  """A generator fixed by `key` (builders sample with it: reruns give the same files)."""
  return random.Random(zlib.crc32(repr(key).encode('utf-8')))


def capped(rows: Sequence, limit: int, *key) -> list:
  """At most `limit` rows, a deterministic sample in the original order."""
  if limit <= 0 or len(rows) <= limit:
    return list(rows)
  keep = sorted(seeded_random('cap', *key).sample(range(len(rows)), limit))
  return [rows[i] for i in keep]


def _write_jsonl(path: str, rows: Iterable[dict]) -> int:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  n = 0
  with open(path, 'w', encoding='utf-8') as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + '\n')
      n += 1
  return n


class CorpusOutput:
  """Writes the files and remembers their sizes for the summary."""

  def __init__(self, root: str):
    self.root = root
    self.sizes: dict[str, str] = {}

  def train(self, name: str, rows: Sequence[dict]) -> None:
    path = os.path.join(self.root, 'train', f'{name}.jsonl')
    n = _write_jsonl(path, rows)
    self.sizes[f'train/{name}'] = f'{n} rows'

  def _dev(self, kind: str, name: str) -> str:
    return os.path.join(self.root, 'dev', kind, name)

  def retrieval(self, name: str, queries: Sequence[tuple[str, str]],
                corpus: Sequence[tuple[str, str, str]], qrels: Sequence[tuple[str, str]]) -> None:
    """queries (id, text); corpus (id, title, text); qrels (query id, corpus id), score 1."""
    folder = self._dev('retrieval', name)
    _write_jsonl(os.path.join(folder, 'queries.jsonl'), ({'_id': q, 'text': t} for q, t in queries))
    _write_jsonl(os.path.join(folder, 'corpus.jsonl'),
                 ({'_id': d, 'title': title, 'text': t} for d, title, t in corpus))
    with open(os.path.join(folder, 'qrels.tsv'), 'w', encoding='utf-8') as f:
      f.write('query-id\tcorpus-id\tscore\n')
      f.writelines(f'{q}\t{d}\t1\n' for q, d in qrels)
    self.sizes[f'dev/retrieval/{name}'] = f'{len(queries)} queries, {len(corpus)} documents'

  def rows(self, kind: str, name: str, rows: Sequence[dict], split: str = 'test') -> None:
    """reranking, clustering, pair_classification, sts, bitext: one test.jsonl."""
    n = _write_jsonl(os.path.join(self._dev(kind, name), f'{split}.jsonl'), rows)
    key = f'dev/{kind}/{name}'
    self.sizes[key] = (self.sizes[key] + f', {split} {n}') if key in self.sizes else \
        f'{split} {n} rows'

  def classification(self, name: str, train: Sequence[dict], test: Sequence[dict]) -> None:
    self.rows('classification', name, train, 'train')
    self.rows('classification', name, test, 'test')

  def summary(self) -> str:
    width = max(map(len, self.sizes), default=0)
    return '\n'.join(f'  {k:<{width}}  {v}' for k, v in sorted(self.sizes.items()))
