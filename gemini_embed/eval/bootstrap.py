r"""Bootstrap confidence intervals for every score of a suite, and paired comparisons.

Each task runner keeps, beside its metrics, the per-item data its main score is made
of (`ItemScores`): per-query nDCG@10 (retrieval), per-query MAP (reranking), per-test-text
accuracy averaged over the classifier's experiments (classification), per-source F1
(bitext) — all of them means — and, for the scores that are not means of items, the
columns the score is recomputed from: (cosine, gold) for STS's Spearman, (labels,
similarities) for pair classification's max AP, (labels, clusters) for clustering's
V-measure (the k-means assignment stays fixed: its own seed variance is not resampled).

The scheme (replicates b = 0 … B−1, all draws with replacement, `seed` default 0):

  1. Items within tasks. Task t with n_t items draws the index matrix
     `np.random.default_rng([seed, crc32(task_id)]).integers(0, n_t, size=(B, n_t))`;
     row b gives the task's replicate score r_t[b] (its statistic on those items). A
     mean is unbiased under resampling: s_t[b] = r_t[b]. The other statistics are
     centred on the task's score, s_t[b] = r_t[b] − (mean_b r_t[b] − score_t): a
     resample repeats items, and repeated items always share their cluster, so the
     V-measure of a random encoder's clusters rose by 5–9 points on resamples of the
     dev suite and its uncentred interval excluded its own score; the centring removes
     such bias and keeps the spread.
  2. Tasks within the suite, stratified by type. Type y with tasks T_y (in the
     results' task order) draws `np.random.default_rng([seed, crc32('tasks:' + y)])
     .integers(0, |T_y|, size=(B, |T_y|))`; row b picks which of the type's tasks
     count in replicate b (the suite's composition, a design choice, stays fixed).
     mean_y[b]      = mean of s_t[b] over the picked tasks of type y
     Mean(Type)[b]  = mean over types of mean_y[b]
     Mean(Task)[b]  = mean of s_t[b] over all picked tasks (|T_y| per type)
  3. Interval: the (1−level)/2 and (1+level)/2 percentiles of the replicates
     (percentile bootstrap, level 0.95 by default).

The draws depend only on (seed, task id or type, n, B), never on the system, so two
systems scored on the same tasks share every resample: a paired comparison takes the
difference replicate by replicate, P(A > B) = the fraction of replicates where A's
aggregate exceeds B's (ties count half), with the percentile interval of the difference.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Mapping

import numpy as np
from scipy.stats import rankdata


REPLICATES = 1000
LEVEL = 0.95
STATISTICS = ('mean', 'spearman', 'max_ap', 'v_measure')


@dataclasses.dataclass(frozen=True)
class ItemScores:
  """What one task's main score is made of, item by item.

  statistic  'mean'      columns {'values': Float[N]}
             'spearman'  columns {'similarity': Float[N], 'gold': Float[N]}
             'max_ap'    columns {'labels': Int[N] in {0,1}, 'similarities': Float[S, N]}
             'v_measure' columns {'labels': Int[N], 'clusters': Int[N]}
  """
  statistic: str
  columns: Mapping[str, np.ndarray]

  def __post_init__(self):
    if self.statistic not in STATISTICS:
      raise ValueError(f'unknown statistic {self.statistic!r}; expected one of {STATISTICS}')

  @property
  def size(self) -> int:
    return int(np.shape(next(iter(self.columns.values())))[-1])

  def to_json(self) -> dict:
    return dict(statistic=self.statistic,
                **{k: np.asarray(v).tolist() for k, v in self.columns.items()})

  @classmethod
  def from_json(cls, data: Mapping) -> 'ItemScores':
    columns = {k: np.asarray(v) for k, v in data.items() if k != 'statistic'}
    return cls(data['statistic'], columns)


def mean_of(values) -> ItemScores:
  return ItemScores('mean', {'values': np.asarray(values, np.float64)})


# --- statistics on resampled rows: idx Int[B, n] → Float[B] ---------------------------


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  x = x - x.mean(axis=1, keepdims=True)
  y = y - y.mean(axis=1, keepdims=True)
  denominator = np.sqrt(np.sum(x * x, axis=1) * np.sum(y * y, axis=1))
  numerator = np.sum(x * y, axis=1)
  return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _row_average_precision(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """AP per row (metrics.average_precision, tied scores one threshold); 0 without a positive."""
  order = np.argsort(-scores, axis=1, kind='stable')
  s = np.take_along_axis(scores, order, axis=1)
  y = np.take_along_axis(labels, order, axis=1).astype(np.float64)
  n = s.shape[1]
  position = np.broadcast_to(np.arange(n), s.shape)
  is_end = np.ones(s.shape, bool)
  is_end[:, :-1] = s[:, :-1] != s[:, 1:]
  # end[j]: the last position of j's tie group (the first group end at or after j).
  end = np.minimum.accumulate(np.where(is_end, position, n)[:, ::-1], axis=1)[:, ::-1]
  true_pos = np.cumsum(y, axis=1)
  precision_at_end = np.take_along_axis(true_pos, end, axis=1) / (end + 1.0)
  positives = true_pos[:, -1]
  total = np.sum(y * precision_at_end, axis=1)
  return np.divide(total, positives, out=np.zeros_like(total), where=positives > 0)


def replicate_scores(items: ItemScores, idx: np.ndarray) -> np.ndarray:
  """Float[B]: the task's statistic on each row of item indices idx Int[B, n]."""
  c = items.columns
  if items.statistic == 'mean':
    return np.asarray(c['values'], np.float64)[idx].mean(axis=1)
  if items.statistic == 'spearman':
    x = rankdata(np.asarray(c['similarity'], np.float64)[idx], axis=1)
    y = rankdata(np.asarray(c['gold'], np.float64)[idx], axis=1)
    return _row_pearson(x, y)
  if items.statistic == 'max_ap':
    labels = np.asarray(c['labels'])[idx]
    return np.max([_row_average_precision(labels, np.asarray(s, np.float64)[idx])
                   for s in c['similarities']], axis=0)
  return _row_v_measure(np.asarray(c['labels']), np.asarray(c['clusters']), idx)


def _xlogy_sum(p: np.ndarray, q: np.ndarray, axes) -> np.ndarray:
  """Σ p·log(q) over `axes`, with 0·log(·) = 0."""
  safe = np.where(p > 0, q, 1.0)
  return np.sum(np.where(p > 0, p * np.log(safe), 0.0), axis=axes)


def _row_v_measure(labels: np.ndarray, clusters: np.ndarray, idx: np.ndarray) -> np.ndarray:
  """metrics.v_measure (β = 1) of each row of idx, from one batched contingency table."""
  _, c = np.unique(labels, return_inverse=True)
  _, k = np.unique(clusters, return_inverse=True)
  n_c, n_k = c.max() + 1, k.max() + 1
  rows, n = idx.shape
  flat = (np.arange(rows)[:, None] * n_c + c[idx]) * n_k + k[idx]
  joint = np.bincount(flat.ravel(), minlength=rows * n_c * n_k).reshape(rows, n_c, n_k) / n
  p_c, p_k = joint.sum(axis=2), joint.sum(axis=1)
  h_c, h_k = -_xlogy_sum(p_c, p_c, 1), -_xlogy_sum(p_k, p_k, 1)
  h_c_given_k = -_xlogy_sum(joint, joint / np.maximum(p_k[:, None, :], 1e-300), (1, 2))
  h_k_given_c = -_xlogy_sum(joint, joint / np.maximum(p_c[:, :, None], 1e-300), (1, 2))
  homogeneity = np.where(h_c > 0, 1 - h_c_given_k / np.where(h_c > 0, h_c, 1), 1.0)
  completeness = np.where(h_k > 0, 1 - h_k_given_c / np.where(h_k > 0, h_k, 1), 1.0)
  total = homogeneity + completeness
  return np.divide(2 * homogeneity * completeness, total, out=np.zeros(rows), where=total > 0)


def point_score(items: ItemScores) -> float:
  """The statistic on all items (equals the runner's main score)."""
  return float(replicate_scores(items, np.arange(items.size)[None, :])[0])


# --- the draws -----------------------------------------------------------------------


def _key(text: str) -> int:
  return zlib.crc32(text.encode('utf-8'))


def item_draws(task: str, n: int, replicates: int, seed: int) -> np.ndarray:
  """Int[B, n]: the items of task `task` in each replicate (step 1 of the scheme)."""
  return np.random.default_rng([seed, _key(task)]).integers(0, n, size=(replicates, n))


def task_draws(task_type: str, n_tasks: int, replicates: int, seed: int) -> np.ndarray:
  """Int[B, n_tasks]: which tasks of the type count in each replicate (step 2)."""
  return np.random.default_rng([seed, _key('tasks:' + task_type)]).integers(
      0, n_tasks, size=(replicates, n_tasks))


def task_replicates(items: ItemScores, task: str, replicates: int, seed: int) -> np.ndarray:
  """Float[B]: s_t of step 1 (a mean as drawn; any other statistic centred on its score)."""
  raw = replicate_scores(items, item_draws(task, items.size, replicates, seed))
  if items.statistic == 'mean':
    return raw
  return raw - (np.mean(raw) - point_score(items))


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
  samples = np.asarray(samples, np.float64)
  if samples.size == 0 or np.isnan(samples).any():
    return (float('nan'), float('nan'))
  lo, hi = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)])
  return float(lo), float(hi)


# --- the suite -----------------------------------------------------------------------


def suite_replicates(items: Mapping[str, ItemScores], task_types: Mapping[str, str],
                     replicates: int = REPLICATES, seed: int = 0) -> dict:
  """Replicates of every aggregate of one system.

  items: task id → ItemScores for the tasks the system ran; task_types: task id →
  type for every task of the suite (in order). A type (or the whole suite) with a task
  the system did not run has no replicates (None), as its mean is undefined.
  Returns {'tasks': {task: Float[B]}, 'type_means': {type: Float[B] | None},
           'mean_task': Float[B] | None, 'mean_type': Float[B] | None}.
  """
  tasks = {t: task_replicates(items[t], t, replicates, seed) for t in task_types if t in items}
  by_type: dict[str, list[str]] = {}
  for t, y in task_types.items():
    by_type.setdefault(y, []).append(t)
  type_means, picked_sums, picked_counts = {}, np.zeros(replicates), 0
  complete = True
  for y, members in by_type.items():
    if not all(t in tasks for t in members):
      type_means[y], complete = None, False
      continue
    table = np.stack([tasks[t] for t in members])           # [T_y, B]
    pick = task_draws(y, len(members), replicates, seed)     # [B, T_y]
    picked = table[pick, np.arange(replicates)[:, None]]     # [B, T_y]
    type_means[y] = picked.mean(axis=1)
    picked_sums += picked.sum(axis=1)
    picked_counts += len(members)
  mean_task = picked_sums / picked_counts if complete and picked_counts else None
  mean_type = (np.mean([type_means[y] for y in by_type], axis=0)
               if complete and by_type else None)
  return dict(tasks=tasks, type_means=type_means, mean_task=mean_task, mean_type=mean_type)


def intervals(reps: dict, level: float = LEVEL) -> dict:
  """The percentile interval of every replicate set of `suite_replicates` (None stays None)."""
  iv = lambda r: None if r is None else list(interval(r, level))
  return dict(tasks={t: iv(r) for t, r in reps['tasks'].items()},
              type_means={y: iv(r) for y, r in reps['type_means'].items()},
              mean_task=iv(reps['mean_task']), mean_type=iv(reps['mean_type']))


def paired(a: np.ndarray | None, b: np.ndarray | None, point_a: float, point_b: float,
           level: float = LEVEL) -> dict | None:
  """{difference (A − B), interval of the difference, p_a_greater}: replicate by replicate."""
  if a is None or b is None:
    return None
  diff = np.asarray(a) - np.asarray(b)
  return dict(difference=float(point_a - point_b), interval=list(interval(diff, level)),
              p_a_greater=float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0)))


def compare(reps_a: dict, reps_b: dict, points_a: dict, points_b: dict,
            level: float = LEVEL) -> dict:
  """Paired comparison of two systems' `suite_replicates` on every aggregate both have.

  points_*: {'tasks': {task: score}, 'type_means': {type: mean}, 'mean_task', 'mean_type'}.
  """
  shared = [t for t in reps_a['tasks'] if t in reps_b['tasks']]
  return dict(
      tasks={t: paired(reps_a['tasks'][t], reps_b['tasks'][t], points_a['tasks'][t],
                       points_b['tasks'][t], level) for t in shared},
      type_means={y: paired(reps_a['type_means'][y], reps_b['type_means'].get(y),
                            points_a['type_means'].get(y), points_b['type_means'].get(y), level)
                  for y in reps_a['type_means']},
      mean_task=paired(reps_a['mean_task'], reps_b['mean_task'], points_a['mean_task'],
                       points_b['mean_task'], level),
      mean_type=paired(reps_a['mean_type'], reps_b['mean_type'], points_a['mean_type'],
                       points_b['mean_type'], level))
