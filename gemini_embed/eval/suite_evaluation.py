"""Evaluate several systems on a suite: every task, every MRL dim, and the aggregates.

    results = evaluate_suite('SUITE', {'ours': encode_fn, 'MiniLM': minilm, 'BM25': Bm25Okapi()},
                             dims=[768, 1536, 3072])

A *system* is one scored column: an encoder at one dim (`"ours@768"`), or BM25 (`"BM25"`).
The results are plain JSON-ready dicts:

    {"suite": str,
     "tasks":   {task_id: {"type": str, "main_metric": str}},
     "systems": {label: {"model": name, "dim": int | None,
                         "scores": {task_id: {metric: value}}}},   # tasks it ran
     "aggregates": {label: {"mean_task", "mean_type", "type_means": {type: mean},
                            "borda_points", "borda_rank"}}}

Scores are fractions in [0, 1] (correlations in [−1, 1]); reports show them ×100.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from gemini_embed.eval import aggregates
from gemini_embed.eval.suite import Task, load_suite, task_id
from gemini_embed.eval.task_runners import MAIN_METRIC, RUNNERS, System, supports

log = logging.getLogger(__name__)


def system_label(model: str, dim: int | None) -> str:
  return model if dim is None else f'{model}@{dim}'


def evaluate_tasks(tasks: list[Task], systems: Mapping[str, System],
                   dims: list[int] | None = None, *,
                   task_strings: Mapping[str, str] | None = None,
                   samples_per_label: int = 8, n_experiments: int = 10) -> dict:
  """Run every system on every task it supports; see the module doc for the result.

  task_strings: task_id (or task type) → the task string given to encoders; the
  default is the task type (design.md's prompt keys, e.g. "retrieval", "sts").
  samples_per_label / n_experiments: the classification protocol (MTEB: 8 and 10).
  """
  task_strings = dict(task_strings or {})
  results: dict = dict(
      tasks={task_id(t): dict(type=t.type, main_metric=MAIN_METRIC[t.type]) for t in tasks},
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
        entry = results['systems'].setdefault(label, dict(model=model, dim=dim, scores={}))
        entry['scores'][name] = scores
  results['aggregates'] = aggregate(results)
  return results


def evaluate_suite(suite_dir: str | Path, encoders: Mapping[str, System],
                   dims: list[int] | None = None, **options) -> dict:
  """Load SUITE_DIR (suite.py's layout) and `evaluate_tasks` on it."""
  results = evaluate_tasks(load_suite(suite_dir), encoders, dims, **options)
  return dict(suite=str(suite_dir), **results)


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
  return out
