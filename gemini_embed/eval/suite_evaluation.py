"""Evaluate several systems on a suite: every task, every MRL dim, and the aggregates.

    results = evaluate_suite('SUITE', {'ours': encode_fn, 'MiniLM': minilm, 'BM25': Bm25Okapi()},
                             dims=[768, 1536, 3072])

A *system* is one scored column: an encoder at one dim (`"ours@768"`), or BM25 (`"BM25"`).
The results are plain JSON-ready dicts:

    {"suite": str, "half": "select" | "report" | null,   # (evaluate_suite only)
     "tasks":   {task_id: {"type": str, "main_metric": str}},
     "classification": {"samples_per_label", "n_experiments"},   # the classifier protocol
     "systems": {label: {"model": name, "dim": int | None,
                         "scores": {task_id: {metric: value}},    # tasks it ran
                         "items": {task_id: ItemScores.to_json()}}},  # per-item main metric
     "bootstrap": {"replicates", "seed", "level"},
     "aggregates": {label: {"mean_task", "mean_type", "type_means": {type: mean},
                            "borda_points", "borda_rank",
                            "intervals": {"tasks": {task_id: [lo, hi]}, "type_means": {...},
                                          "mean_task": [lo, hi], "mean_type": [lo, hi]}}},
     "comparisons": [{"a", "b", "tasks", "type_means", "mean_task", "mean_type"}]}

where each comparison entry is {"difference": A − B, "interval": [lo, hi],
"p_a_greater": P(A > B)} (bootstrap.py: the resampling scheme). An interval is null
where its mean is undefined (a task the system did not run).
Scores are fractions in [0, 1] (correlations in [−1, 1]); reports show them ×100.
"""

from __future__ import annotations

import logging
import time
from typing import Mapping

import numpy as np
from etils.epath import Path

from gemini_embed.eval import aggregates, bootstrap
from gemini_embed.eval.bootstrap import ItemScores
from gemini_embed.eval.suite import Task, load_suite, resolve_half, task_id
from gemini_embed.eval.task_runners import MAIN_METRIC, RUNNERS, System, supports

log = logging.getLogger(__name__)


def system_label(model: str, dim: int | None) -> str:
  return model if dim is None else f'{model}@{dim}'


def evaluate_tasks(tasks: list[Task], systems: Mapping[str, System],
                   dims: list[int] | None = None, *,
                   task_strings: Mapping[str, str] | None = None,
                   samples_per_label: int = 8, n_experiments: int = 10,
                   replicates: int = bootstrap.REPLICATES, seed: int = 0,
                   compare: list[tuple[str, str]] = ()) -> dict:
  """Run every system on every task it supports; see the module doc for the result.

  task_strings: task_id (or task type) → the task string given to encoders; the
  default is the task type (design.md's prompt keys, e.g. "retrieval", "sts").
  samples_per_label / n_experiments: the classification protocol (MTEB: 8 and 10).
  replicates / seed: the bootstrap (0 replicates: no intervals); compare: pairs of
  system labels (model@dim) to compare, paired over the same resamples.
  """
  task_strings = dict(task_strings or {})
  results: dict = dict(
      tasks={task_id(t): dict(type=t.type, main_metric=MAIN_METRIC[t.type]) for t in tasks},
      classification=dict(samples_per_label=samples_per_label, n_experiments=n_experiments),
      systems={})
  for model, system in systems.items():
    for task in tasks:
      if not supports(system, task):
        continue
      name = task_id(task)
      task_string = task_strings.get(name, task_strings.get(task.type, task.type))
      extra = (dict(samples_per_label=samples_per_label, n_experiments=n_experiments)
               if task.type == 'classification' else {})
      start = time.perf_counter()
      per_dim = RUNNERS[task.type](task, system, dims, task_string, **extra)
      log.info('%s on %s: %.1fs', model, name, time.perf_counter() - start)
      for dim, scores in per_dim.items():
        label = system_label(model, dim)
        entry = results['systems'].setdefault(label, dict(model=model, dim=dim, scores={},
                                                          items={}))
        entry['scores'][name] = scores.metrics
        entry['items'][name] = scores.items.to_json()
  results['bootstrap'] = dict(replicates=replicates, seed=seed, level=bootstrap.LEVEL)
  results['aggregates'] = aggregate(results)
  results['comparisons'] = [comparison(results, a, b) for a, b in compare]
  return results


def evaluate_suite(suite_dir: str | Path, encoders: Mapping[str, System],
                   dims: list[int] | None = None, *, half: str | None = None, **options) -> dict:
  """Load one half of SUITE_DIR (suite.py's layout; `half` as suite.resolve_half) and
  `evaluate_tasks` on it."""
  folder, used = resolve_half(suite_dir, half)
  results = evaluate_tasks(load_suite(folder), encoders, dims, **options)
  return dict(suite=str(suite_dir), half=used, **results)


def main_scores(results: dict, label: str) -> dict[str, float]:
  """task_id → main score of one system (tasks it did not run are absent)."""
  scores = results['systems'][label]['scores']
  return {t: scores[t][info['main_metric']] for t, info in results['tasks'].items() if t in scores}


def aggregate(results: dict) -> dict:
  """Mean(Task), Mean(Type), per-type means and Borda over all systems of `results`."""
  task_ids = list(results['tasks'])
  task_types = {t: info['type'] for t, info in results['tasks'].items()}
  labels = list(results['systems'])
  table = np.array([[main_scores(results, label).get(t, np.nan) for t in task_ids]
                    for label in labels], np.float64).reshape(len(labels), len(task_ids))
  points = aggregates.borda_points(table)
  ranks = aggregates.borda_rank(points)
  out = {}
  for i, label in enumerate(labels):
    main = main_scores(results, label)
    out[label] = dict(
        mean_task=aggregates.mean_task(main, task_ids),
        mean_type=aggregates.mean_type(main, task_types),
        type_means=aggregates.type_means(main, task_types),
        borda_points=float(points[i]),
        borda_rank=int(ranks[i]))
    reps = system_replicates(results, label)
    if reps is not None:
      out[label]['intervals'] = bootstrap.intervals(reps, results['bootstrap']['level'])
  return out


def system_replicates(results: dict, label: str) -> dict | None:
  """bootstrap.suite_replicates of one system of `results` (None: no bootstrap asked, or
  results written before per-item scores were kept)."""
  options = results.get('bootstrap') or {}
  items = results['systems'][label].get('items')
  if not options.get('replicates') or not items:
    return None
  task_types = {t: info['type'] for t, info in results['tasks'].items()}
  return bootstrap.suite_replicates({t: ItemScores.from_json(v) for t, v in items.items()},
                                    task_types, options['replicates'], options['seed'])


def _points(results: dict, label: str) -> dict:
  agg = results['aggregates'][label]
  return dict(tasks=main_scores(results, label), type_means=agg['type_means'],
              mean_task=agg['mean_task'], mean_type=agg['mean_type'])


def _checked_replicates(results: dict, label: str) -> dict:
  if label not in results['systems']:
    raise ValueError(f'compare: no system {label!r}; the systems are {list(results["systems"])}')
  reps = system_replicates(results, label)
  if reps is None:
    raise ValueError('compare: these results have no bootstrap (per-item scores and '
                     'bootstrap.replicates > 0 are needed)')
  return reps


def comparison(results: dict, a: str, b: str) -> dict:
  """Paired bootstrap of system `a` against `b` (labels of results['systems'])."""
  reps_a, reps_b = _checked_replicates(results, a), _checked_replicates(results, b)
  return dict(a=a, b=b, **bootstrap.compare(reps_a, reps_b, _points(results, a),
                                            _points(results, b), results['bootstrap']['level']))


def _mean_of_trees(trees: list[dict]) -> dict:
  """The element-wise mean of `suite_replicates` (or `_points`) trees; None where any is."""
  def mean(values):
    return None if any(v is None for v in values) else sum(values) / len(values)
  first = trees[0]
  return dict(tasks={t: mean([x['tasks'].get(t) for x in trees]) for t in first['tasks']},
              type_means={y: mean([x['type_means'].get(y) for x in trees])
                          for y in first['type_means']},
              mean_task=mean([x['mean_task'] for x in trees]),
              mean_type=mean([x['mean_type'] for x in trees]))


def pooled_comparison(results: dict, pairs: list[tuple[str, str]]) -> dict:
  """Paired bootstrap of the mean difference over `pairs` (A_i, B_i): a lever decided with
  several seeds, seed i's run with it against seed i's run without. Each side's systems
  are averaged replicate by replicate (every system sees the same query resamples:
  bootstrap.item_draws is keyed by task), so the interval is the mean difference's."""
  if not pairs:
    raise ValueError('compare: pooling needs at least one A,B pair')
  sides = []
  for side in (0, 1):
    labels = [pair[side] for pair in pairs]
    sides.append((_mean_of_trees([_checked_replicates(results, x) for x in labels]),
                  _mean_of_trees([_points(results, x) for x in labels]), '+'.join(labels)))
  (reps_a, points_a, a), (reps_b, points_b, b) = sides
  return dict(a=f'mean({a})', b=f'mean({b})', **bootstrap.compare(
      reps_a, reps_b, points_a, points_b, results['bootstrap']['level']))
