r"""Is a suite half degenerate, and how much encoding does it cost? No model involved.

    python experiments/suite_check.py --suite=runs/corpora/dev [--half=report] [--json=OUT.json]

Scores three model-free systems on every task of the half, with bootstrap intervals:

  random   a random unit vector per distinct text (seeded by the text): chance level
  ngram    hashed character 3–5-gram TF vectors (scikit-learn's HashingVectorizer,
           2^14 features): surface overlap only, no meaning, no cross-lingual knowledge
  BM25     Okapi BM25 on retrieval and reranking

A task where `ngram` or BM25 is near 100 is solved by string overlap; one where every
system sits at chance says nothing about the others. It also prints, per task, what an
encoder is asked to embed (texts and characters, as the runners call it): the encode
work of scoring one model on the half.
"""

from __future__ import annotations

import argparse
import json
import zlib

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

from gemini_embed.eval import Bm25Okapi, evaluate_tasks, load_suite, resolve_half
from gemini_embed.eval.suite import task_id


class RandomEncoder:
  """A random direction per text; counts what it is asked to encode."""

  def __init__(self, width: int = 64):
    self.width, self.texts, self.chars = width, {}, {}
    self.task = ''

  def __call__(self, texts, kind, task):
    self.texts[self.task] = self.texts.get(self.task, 0) + len(texts)
    self.chars[self.task] = self.chars.get(self.task, 0) + sum(map(len, texts))
    return np.stack([np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.width)
                     for t in texts]).astype(np.float32)


def ngram_encoder():
  vectorizer = HashingVectorizer(analyzer='char_wb', ngram_range=(3, 5), n_features=2 ** 14,
                                 alternate_sign=False, norm='l2')
  return lambda texts, kind, task: vectorizer.transform(texts).toarray().astype(np.float32)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  ap.add_argument('--suite', required=True)
  ap.add_argument('--half', default='report', choices=['report', 'select'])
  ap.add_argument('--json', help='write the per-task table here')
  args = ap.parse_args()
  folder, half = resolve_half(args.suite, args.half)
  tasks = load_suite(folder)
  counter = RandomEncoder()
  rows = {}
  for task in tasks:  # one task at a time, to attribute the encode work to it
    counter.task = task_id(task)
    evaluate_tasks([task], {'random': counter}, replicates=0)
  results = evaluate_tasks(tasks, {'random': RandomEncoder(), 'ngram': ngram_encoder(),
                                   'BM25': Bm25Okapi()}, replicates=1000)
  print(f'{folder} (half: {half}): {len(tasks)} tasks')
  print(f'{"task":48s} {"items":>5s} {"texts":>6s} {"kchars":>7s}  '
        f'{"random":>22s} {"ngram":>22s} {"BM25":>22s}')
  for task in tasks:
    name = task_id(task)
    cells = []
    for system in ('random@64', 'ngram@16384', 'BM25'):
      entry = results['systems'].get(system, {})
      if name not in entry.get('scores', {}):
        cells.append(f'{"–":>22s}')
        continue
      score = entry['scores'][name][results['tasks'][name]['main_metric']]
      lo, hi = results['aggregates'][system]['intervals']['tasks'][name]
      cells.append(f'{100 * score:6.1f} [{100 * lo:5.1f}, {100 * hi:5.1f}]')
    item_data = results['systems']['random@64']['items'][name]
    items = len(next(v for k, v in item_data.items() if k != 'statistic'))
    rows[name] = dict(items=items, texts=counter.texts[name], chars=counter.chars[name])
    print(f'{name:48s} {items:5d} {counter.texts[name]:6d} {counter.chars[name] / 1e3:7.1f}  '
          + ' '.join(cells))
  total_texts, total_chars = sum(counter.texts.values()), sum(counter.chars.values())
  print(f'encode work of one model on this half: {total_texts} texts, {total_chars / 1e6:.2f} M chars')
  for system in ('random@64', 'ngram@16384'):
    agg = results['aggregates'][system]
    lo, hi = agg['intervals']['mean_task']
    print(f'{system}: Mean(Task) {100 * agg["mean_task"]:.2f} [{100 * lo:.2f}, {100 * hi:.2f}], '
          f'Mean(Type) {100 * agg["mean_type"]:.2f}')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(dict(tasks=rows, texts=total_texts, chars=total_chars,
                     results={s: results['systems'][s]['scores'] for s in results['systems']}),
                f, indent=1)


if __name__ == '__main__':
  main()
