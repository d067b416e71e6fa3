"""Several results JSONs of one suite half as one: the systems side by side, as if
`evaluate` had scored them in one run.

    merged = merge_results({'a.json': results_a, 'b.json': results_b})

A lever measured today and its baseline measured last week, or systems scored by two
processes in parallel, end in one table with one Borda ranking and paired comparisons.
The parts must be of the same tasks (same ids, types, main metrics and item counts), the
same classification protocol and the same bootstrap settings: the bootstrap's resamples
depend only on (seed, task, item count, replicates), never on the system (bootstrap.py),
so every interval and comparison of the merged results is the one a joint run gives.
Labels must not repeat across parts. The aggregates (Borda depends on every system) and
the comparisons are recomputed.
"""

from __future__ import annotations

import logging
from typing import Mapping

from gemini_embed.eval.bootstrap import ItemScores
from gemini_embed.eval.suite_evaluation import aggregate, comparison


log = logging.getLogger(__name__)


class MergeError(ValueError):
  """Parts that cannot be one table; the message names the files and what differs."""


def _item_counts(results: dict) -> dict[tuple[str, str], int]:
  return {(label, task): ItemScores.from_json(items).size
          for label, system in results['systems'].items()
          for task, items in (system.get('items') or {}).items()}


def _check_same(name: str, first_name: str, key: str, value, first_value) -> None:
  if value != first_value:
    raise MergeError(f'{name}: its {key!r} is {value!r}, but {first_name} has {first_value!r}; '
                     'only results of the same suite half, tasks, classification protocol and '
                     'bootstrap settings merge (rerun evaluate with the same --suite, --half, '
                     'classification and --bootstrap options)')


def merge_results(parts: Mapping[str, dict],
                  compare: list[tuple[str, str]] = ()) -> dict:
  """parts: name (e.g. the file) → results dict (evaluate's JSON). Returns the merged
  results: the first part's suite record, every part's systems, recomputed aggregates,
  and the parts' comparisons followed by `compare`'s (each pair once)."""
  if not parts:
    raise MergeError('nothing to merge: give at least one results file')
  (first_name, first), *rest = parts.items()
  merged = dict(suite=first.get('suite'), half=first.get('half'), tasks=first['tasks'],
                classification=first.get('classification'), systems=dict(first['systems']),
                bootstrap=first.get('bootstrap'))
  owner = {label: first_name for label in first['systems']}
  counts = {task: n for (_, task), n in _item_counts(first).items()}
  for name, results in rest:
    for key in ('half', 'tasks', 'classification', 'bootstrap'):
      _check_same(name, first_name, key, results.get(key), first.get(key))
    for label, system in results['systems'].items():
      if label in owner:
        raise MergeError(f'{name}: system {label!r} is also in {owner[label]}; '
                         'a label must name one system (rename the run: --workdir=NAME=DIR)')
      owner[label] = name
      merged['systems'][label] = system
    for (label, task), n in _item_counts(results).items():
      if counts.setdefault(task, n) != n:
        raise MergeError(f'{name}: task {task!r} has {n} items for {label!r} but '
                         f'{counts[task]} in the other parts: not the same suite data')
    if results.get('suite') != merged['suite']:
      log.warning('%s scored suite %s, %s scored %s: the same tasks and item counts, kept as '
                  'one', name, results.get('suite'), first_name, merged['suite'])
  merged['aggregates'] = aggregate(merged)
  pairs = [(c['a'], c['b']) for results in parts.values() for c in results.get('comparisons', [])]
  pairs = list(dict.fromkeys([*pairs, *compare]))
  merged['comparisons'] = [comparison(merged, a, b) for a, b in pairs]
  return merged
