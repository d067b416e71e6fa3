"""A tiny made-up suite (one task of each type) and encoders whose right answer is known.

`write_suite(root)` writes the suite and returns `truth`: text → the vector an ideal
encoder would give it, so that every task's metric is perfect under `OracleEncoder`:

    retrieval / reranking  query k and its relevant documents share the vector e_k
    classification / clustering  a text's vector is e_label (+ tiny per-text jitter)
    pair classification    label-1 pairs share a vector, label-0 pairs are orthogonal
    sts                    cos(text1, text2) grows with the gold score
    bitext                 source i and target i share e_i

All sentences are invented here (no corpus, nothing reserved).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

WIDTH = 16
ITEMS = ['amber lantern', 'copper kettle', 'velvet glove', 'granite bench', 'paper kite',
         'silver spoon', 'wooden sled', 'glass marble', 'linen scarf', 'brass compass',
         'clay teapot', 'wool blanket']
PLACES = ['attic', 'cellar', 'garden shed', 'pantry']


def one_hot(k: int) -> np.ndarray:
  v = np.zeros(WIDTH)
  v[k] = 1.0
  return v


def jitter(text: str, scale: float = 1e-3) -> np.ndarray:
  """Small deterministic per-text noise (separates duplicates without changing the answer)."""
  return scale * np.random.default_rng(zlib.crc32(text.encode())).standard_normal(WIDTH)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(''.join(json.dumps(r) + '\n' for r in rows))


def write_suite(root: Path) -> dict[str, np.ndarray]:
  truth: dict[str, np.ndarray] = {}

  # retrieval: query k ↔ doc k (relevance 2) and a titled note about item k (relevance 1);
  # distractor docs mention no item.
  corpus, queries, qrels = [], [], ['query-id\tcorpus-id\tscore']
  for k, item in enumerate(ITEMS):
    doc = f'The {item} is kept in the {PLACES[k % 4]}.'
    note = f'Someone polished the {item} last spring.'
    corpus += [{'_id': f'doc{k}', 'title': '', 'text': doc},
               {'_id': f'note{k}', 'title': f'About the {item}', 'text': note}]
    truth[doc] = one_hot(k)
    truth[f'About the {item} {note}'] = 0.9 * one_hot(k) + 0.1 * one_hot((k + 1) % 12)
    question = f'where would I find the {item}?'
    queries.append({'_id': f'q{k}', 'text': question})
    truth[question] = one_hot(k)
    qrels += [f'q{k}\tdoc{k}\t2', f'q{k}\tnote{k}\t1']
  for j in range(6):
    filler = f'Filler sentence number {j} about nothing in particular.'
    corpus.append({'_id': f'filler{j}', 'text': filler})
    truth[filler] = one_hot(12 + j % 4)
  queries.append({'_id': 'unjudged', 'text': 'a question nobody judged'})
  retrieval = root / 'retrieval' / 'shelves'
  _write_jsonl(retrieval / 'corpus.jsonl', corpus)
  _write_jsonl(retrieval / 'queries.jsonl', queries)
  (retrieval / 'qrels.tsv').write_text('\n'.join(qrels) + '\n')

  # reranking: each query has its own positive and two negatives (other items).
  rows = []
  for k, item in enumerate(ITEMS[:8]):
    query = f'which box holds the {item}?'
    positive = f'The {item} sits in box {k}.'
    negatives = [f'Box {k} also lists the {ITEMS[(k + j) % 12]} (j={j}).' for j in (3, 5)]
    rows.append({'query': query, 'positive': [positive], 'negative': negatives})
    truth[query] = truth[positive] = one_hot(k)
    for j, negative in zip((3, 5), negatives):
      truth[negative] = one_hot((k + j) % 12)
  _write_jsonl(root / 'reranking' / 'boxes' / 'test.jsonl', rows)

  # classification and clustering: three moods, the text's vector is its label's direction.
  moods = ['cheerful', 'gloomy', 'curious']
  def mood_rows(split: str, count: int):
    out = []
    for i in range(count):
      label = moods[i % 3]
      text = f'A {label} remark ({split} {i}) about the {ITEMS[i % 12]}.'
      truth[text] = one_hot(i % 3) + jitter(text, 0.05)
      out.append({'text': text, 'label': label})
    return out
  _write_jsonl(root / 'classification' / 'moods' / 'train.jsonl', mood_rows('train', 36))
  _write_jsonl(root / 'classification' / 'moods' / 'test.jsonl', mood_rows('test', 15))
  _write_jsonl(root / 'clustering' / 'moods' / 'test.jsonl', mood_rows('cluster', 24))

  # pair classification: paraphrase pairs (1) share a vector, others (0) are orthogonal.
  rows = []
  for k, item in enumerate(ITEMS):
    text1 = f'I lost my {item} yesterday.'
    same = k % 2 == 0
    text2 = f'Yesterday my {item} went missing.' if same else f'I sold a {ITEMS[(k + 6) % 12]}.'
    truth[text1] = one_hot(k)
    truth[text2] = one_hot(k) if same else one_hot((k + 6) % 12)
    rows.append({'text1': text1, 'text2': text2, 'label': int(same)})
  _write_jsonl(root / 'pair_classification' / 'lost' / 'test.jsonl', rows)

  # sts: text2's angle to text1 shrinks as the gold score (0..5) grows.
  rows = []
  for i in range(11):
    score = i / 2
    text1, text2 = f'The {ITEMS[i]} is on the table.', f'A remark of closeness {score} on it.'
    angle = (1 - score / 5) * np.pi / 2
    truth[text1] = one_hot(0)
    truth[text2] = np.cos(angle) * one_hot(0) + np.sin(angle) * one_hot(1)
    rows.append({'text1': text1, 'text2': text2, 'score': score})
  _write_jsonl(root / 'sts' / 'closeness' / 'test.jsonl', rows)

  # bitext: an invented "translation" per item.
  rows = []
  for k, item in enumerate(ITEMS):
    src, tgt = f'the {item}', f'le {item[::-1]}'
    truth[src] = truth[tgt] = one_hot(k)
    rows.append({'src': src, 'tgt': tgt})
  _write_jsonl(root / 'bitext' / 'mirror' / 'test.jsonl', rows)
  return truth


def write_halved_suite(root: Path) -> dict[str, np.ndarray]:
  """The suite in the two-half layout (build_corpora's): the same tasks in root/select and
  root/report (identical here: tools are tested for which half they read, not for
  disjointness), and root/halves.json."""
  truth = write_suite(root / 'select')
  write_suite(root / 'report')
  (root / 'halves.json').write_text(json.dumps({'halves': ['select', 'report'], 'seed': 0}))
  return truth


class OracleEncoder:
  """encode(texts, kind, task) → the known ideal vectors, optionally scaled per row
  (cosine must not care) and prefixed by `constant_dims` identical coordinates (a
  useless MRL prefix: only the full width holds the answer). Records every call."""

  def __init__(self, truth: dict[str, np.ndarray], constant_dims: int = 0, scale_rows: bool = True):
    self.truth, self.constant_dims, self.scale_rows = truth, constant_dims, scale_rows
    self.calls: list[tuple[int, str, str]] = []

  def vector(self, text: str) -> np.ndarray:
    return self.truth[text]

  def __call__(self, texts, kind, task):
    self.calls.append((len(texts), kind, task))
    out = np.stack([self.vector(t) for t in texts])
    if self.constant_dims:
      out = np.concatenate([np.full((len(texts), self.constant_dims), 3.0), out], axis=1)
    if self.scale_rows:
      out = out * np.array([1 + zlib.crc32(t.encode()) % 7 for t in texts])[:, None]
    return out.astype(np.float32)


class ShuffledEncoder(OracleEncoder):
  """The oracle's vectors handed to the wrong texts (a fixed derangement of the texts)."""

  def __init__(self, truth: dict[str, np.ndarray], seed: int = 0):
    super().__init__(truth)
    texts = sorted(truth)
    shift = np.random.default_rng(seed).permutation(len(texts))
    self.swapped = {t: truth[texts[shift[i]]] for i, t in enumerate(texts)}

  def vector(self, text: str) -> np.ndarray:
    return self.swapped[text]
