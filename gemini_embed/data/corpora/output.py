"""Where the builders write: training JSONL and the evaluation suite (design.md layout).

    OUT/train/NAME.jsonl                       {"query","positive","negative"?,"title"?}
    OUT/dev/halves.json                        how the two halves were split (below)
    OUT/dev/HALF/retrieval/NAME/{corpus.jsonl, queries.jsonl, qrels.tsv}
    OUT/dev/HALF/reranking/NAME/test.jsonl     {"query","positive":[...],"negative":[...]}
    OUT/dev/HALF/classification/NAME/{train,test}.jsonl   {"text","label"}
    OUT/dev/HALF/clustering/NAME/test.jsonl    {"text","label"}
    OUT/dev/HALF/pair_classification/NAME/test.jsonl  {"text1","text2","label"}
    OUT/dev/HALF/sts/NAME/test.jsonl           {"text1","text2","score"}
    OUT/dev/HALF/bitext/NAME/test.jsonl        {"src","tgt"}

HALF is `select` (every choice a tool makes) or `report` (the numbers in tables).

Train/dev splits are by source unit (module, synset, catalog, entity, headword, page):
a unit is development data when a CRC-32 of its name falls under `dev_percent`, so the
split is the same on every machine and never depends on what else was built.
Within dev, every row, query and document names its source unit (the synset, the
function, the English message, the page, the headword, the entity), and the unit goes
to one half for every task: `crc32('half:<seed>:<unit>')` even → select, odd → report.
A retrieval document goes with the query it is relevant to (an unjudged one by its
own unit), so the halves share no text that is scored, and each half is a complete
suite with every task.
"""

from __future__ import annotations

import collections
import json
import os
import random
import zlib
from typing import Callable, Iterable, Sequence

HALVES = ('select', 'report')


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


def half_of(unit: str, seed: int = 0) -> str:
  return HALVES[zlib.crc32(f'half:{seed}:{unit}'.encode('utf-8')) % 2]


class CorpusOutput:
  """Writes the files, split into halves by source unit, and remembers their sizes."""

  def __init__(self, root: str, split_seed: int = 0):
    self.root = root
    self.split_seed = split_seed
    self.sizes: dict[str, str] = {}
    self.task_sizes: dict[str, dict[str, int]] = {h: {} for h in HALVES}

  def half(self, unit: str) -> str:
    return half_of(unit, self.split_seed)

  def train(self, name: str, rows: Sequence[dict]) -> None:
    path = os.path.join(self.root, 'train', f'{name}.jsonl')
    n = _write_jsonl(path, rows)
    self.sizes[f'train/{name}'] = f'{n} rows'

  def _dev(self, half: str, kind: str, name: str) -> str:
    return os.path.join(self.root, 'dev', half, kind, name)

  def retrieval(self, name: str, queries: Sequence[tuple[str, str]],
                corpus: Sequence[tuple[str, str, str]], qrels: Sequence[tuple[str, str]],
                unit: Callable[[str], str] = lambda i: i) -> None:
    """queries (id, text); corpus (id, title, text); qrels (query id, corpus id), score 1.

    unit: query or document id → its source unit (default: the id itself).
    """
    query_half = {q: self.half(unit(q)) for q, _ in queries}
    doc_half = {}
    for q, d in qrels:
      if doc_half.setdefault(d, query_half[q]) != query_half[q]:
        raise ValueError(f'retrieval/{name}: document {d!r} is relevant to queries of both '
                         'halves; give them one source unit')
    for d, _, _ in corpus:
      doc_half.setdefault(d, self.half(unit(d)))
    for half in HALVES:
      mine = [(q, t) for q, t in queries if query_half[q] == half]
      if not mine:
        continue
      folder = self._dev(half, 'retrieval', name)
      docs = [row for row in corpus if doc_half[row[0]] == half]
      _write_jsonl(os.path.join(folder, 'queries.jsonl'), ({'_id': q, 'text': t} for q, t in mine))
      _write_jsonl(os.path.join(folder, 'corpus.jsonl'),
                   ({'_id': d, 'title': title, 'text': t} for d, title, t in docs))
      with open(os.path.join(folder, 'qrels.tsv'), 'w', encoding='utf-8') as f:
        f.write('query-id\tcorpus-id\tscore\n')
        f.writelines(f'{q}\t{d}\t1\n' for q, d in qrels if query_half[q] == half)
      self.sizes[f'dev/{half}/retrieval/{name}'] = f'{len(mine)} queries, {len(docs)} documents'
      self.task_sizes[half][f'retrieval/{name}'] = len(mine)

  def rows(self, kind: str, name: str, rows: Sequence[dict], units: Sequence[str],
           split: str = 'test') -> None:
    """reranking, clustering, pair_classification, sts, bitext: one test.jsonl per half;
    units[i] is the source unit of rows[i]."""
    if len(units) != len(rows):
      raise ValueError(f'{kind}/{name}: {len(rows)} rows but {len(units)} units')
    by_half = collections.defaultdict(list)
    for row, u in zip(rows, units):
      by_half[self.half(u)].append(row)
    for half in HALVES:
      if not by_half[half]:
        continue
      n = _write_jsonl(os.path.join(self._dev(half, kind, name), f'{split}.jsonl'), by_half[half])
      key = f'dev/{half}/{kind}/{name}'
      self.sizes[key] = (self.sizes[key] + f', {split} {n}') if key in self.sizes else \
          f'{split} {n} rows'
      if split == 'test':
        self.task_sizes[half][f'{kind}/{name}'] = n

  def classification(self, name: str, train: Sequence[dict], test: Sequence[dict],
                     train_units: Sequence[str], test_units: Sequence[str]) -> None:
    """Each half keeps its own train rows (the few-shot pool) and test rows; a label
    without training rows in a half is dropped from that half's test rows."""
    train_labels = collections.defaultdict(set)
    for row, u in zip(train, train_units):
      train_labels[self.half(u)].add(row['label'])
    kept = [(row, u) for row, u in zip(test, test_units)
            if row['label'] in train_labels[self.half(u)]]
    self.rows('classification', name, train, train_units, 'train')
    self.rows('classification', name, [r for r, _ in kept], [u for _, u in kept], 'test')

  def write_halves(self, rule: str) -> None:
    """OUT/dev/halves.json: the split's rule and seed, and each half's task sizes."""
    path = os.path.join(self.root, 'dev', 'halves.json')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tasks = {h: {} for h in HALVES}
    if os.path.exists(path):  # a build of some sources keeps the others' entries
      with open(path, encoding='utf-8') as f:
        before = json.load(f)
      if before.get('seed') == self.split_seed:
        tasks = {h: before.get('tasks', {}).get(h, {}) for h in HALVES}
    for h, sizes in self.task_sizes.items():
      tasks[h].update(sizes)
    with open(path, 'w', encoding='utf-8') as f:
      json.dump(dict(halves=list(HALVES), seed=self.split_seed, rule=rule,
                     tasks={h: dict(sorted(v.items())) for h, v in tasks.items()}), f, indent=1)
      f.write('\n')

  def summary(self) -> str:
    width = max(map(len, self.sizes), default=0)
    return '\n'.join(f'  {k:<{width}}  {v}' for k, v in sorted(self.sizes.items()))
