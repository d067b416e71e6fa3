"""The mining arithmetic: expected grades, rankings, Reciprocal Rank Fusion, the pick.

    expected_grade(p, grades)   = Σ_g p_g · g          (p: option_probabilities over grades)
    ranks(scores)               = 1-based rank of each candidate, highest score first;
                                  ties keep the candidates' order (the embedder's)
    rrf(rankings, k)            = Σ_r 1 / (k + rank_r(d))   for each candidate d
    fused order                 = candidates by rrf descending (ties: the embedder's order)
    the hard negative           = the `rank`-th of the fused order (1-based; the paper takes
                                  the k-th of k, the least relevant of the near neighbours)

Pure functions over float64 NumPy arrays; mine.py feeds them the LLM's scores.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def expected_grade(probs: Sequence[float], grades: Sequence[float]) -> float:
  """The mean grade under the option probabilities (they must sum to 1)."""
  p = np.asarray(probs, np.float64)
  g = np.asarray(grades, np.float64)
  if p.shape != g.shape:
    raise ValueError(f'{p.shape[0]} probabilities for {g.shape[0]} grades')
  return float(p @ g)


def ranks(scores: Sequence[float]) -> np.ndarray:
  """1-based ranks, the highest score first; equal scores keep their input order."""
  s = np.asarray(scores, np.float64)
  order = np.argsort(-s, kind='stable')
  out = np.empty(len(s), np.int64)
  out[order] = np.arange(1, len(s) + 1)
  return out


def rrf(rankings: Sequence[Sequence[int]], k: float) -> np.ndarray:
  """Reciprocal Rank Fusion of 1-based rankings of the same candidates."""
  if k < 0:
    raise ValueError(f'--rrf_k={k}: must be >= 0')
  r = np.asarray(rankings, np.float64)
  return (1.0 / (k + r)).sum(axis=0)


def fused_order(score_lists: Sequence[Sequence[float]], k: float) -> tuple[np.ndarray,
                                                                           np.ndarray]:
  """(candidate indices in fused order, each candidate's fused score)."""
  fused = rrf([ranks(s) for s in score_lists], k)
  return np.argsort(-fused, kind='stable'), fused


def pick(order: Sequence[int], rank: int) -> tuple[int, int]:
  """(candidate index, the rank used): the `rank`-th of `order`, or its last when there
  are fewer candidates than `rank`."""
  if rank < 1:
    raise ValueError(f'--rank={rank}: must be >= 1')
  if not len(order):
    raise ValueError('no candidates to pick from')
  used = min(rank, len(order))
  return int(order[used - 1]), used
