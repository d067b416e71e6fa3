"""Aggregates over tasks and models, as the MTEB leaderboard computes them.

    Mean(Task)   mean of the main scores of all tasks
    Mean(Type)   mean of the per-type means (each task type weighs the same)
    Borda        per task, models are ranked by score (ties share the average of the
                 ranks they span) and each gets n_models − rank points; a model's points
                 are summed over tasks (a task it lacks gives 0); the final rank orders
                 the point totals, equal totals sharing the best rank ("min")

A mean is NaN when any task is missing: it would not be comparable across models.
"""

from __future__ import annotations

import math

import numpy as np

from gemini_embed.eval.metrics import average_ranks


def _present(x) -> bool:
  return x is not None and not (isinstance(x, float) and math.isnan(x))


def mean_task(main_scores: dict[str, float | None], task_ids: list[str]) -> float:
  values = [main_scores.get(t) for t in task_ids]
  if not values or not all(_present(v) for v in values):
    return float('nan')
  return float(np.mean(values))


def type_means(main_scores: dict[str, float | None],
               task_types: dict[str, str]) -> dict[str, float]:
  """task type → mean main score of its tasks (NaN when one of them is missing)."""
  by_type: dict[str, list[str]] = {}
  for task, task_type in task_types.items():
    by_type.setdefault(task_type, []).append(task)
  return {task_type: mean_task(main_scores, tasks) for task_type, tasks in by_type.items()}


def mean_type(main_scores: dict[str, float | None], task_types: dict[str, str]) -> float:
  means = list(type_means(main_scores, task_types).values())
  if not means or any(math.isnan(m) for m in means):
    return float('nan')
  return float(np.mean(means))


def borda_points(scores: np.ndarray) -> np.ndarray:
  """scores Float[M, T] (NaN = task not run) → Float[M] Borda points.

  For each task the models that ran it are ranked (1 = best, ties averaged) and
  each gets M − rank points.
  """
  scores = np.asarray(scores, np.float64)
  num_models = scores.shape[0]
  points = np.zeros(num_models)
  for column in scores.T:
    ran = ~np.isnan(column)
    if ran.any():
      rank = average_ranks(-column[ran])  # descending: best score → rank 1
      points[ran] += num_models - rank
  return points


def borda_rank(points: np.ndarray) -> np.ndarray:
  """Int[M]: 1 + the number of models with strictly more points (ties share the best rank)."""
  points = np.asarray(points, np.float64)
  return 1 + np.sum(points[None, :] > points[:, None], axis=1)
