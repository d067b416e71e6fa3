"""The score cut of filter (--threshold) and synthesize_queries (--min_rating):

    3        keep a result whose score is at least 3
    q0.2     reject the lowest 20% of this run's scores: the cut is
             numpy.quantile(every such score of the run, 0.2) (linear interpolation);
             a result scoring below it is rejected, ties at the cut are kept

Small judges grade on a compressed, model-specific scale, where a fixed grade is hard to
choose; a quantile is not. The tools record every score in their ledger and the merge
(curate/ledger.py) applies the cut once every shard's ledger is complete, so a quantile
sees all the run's scores, and a rerun (after a kill, or with another cut) splits the
same ledger the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Threshold:
  """A fixed score (`value`) or a fraction of the run's scores to reject (`quantile`)."""
  value: float | None = None
  quantile: float | None = None

  def __str__(self) -> str:
    return f'q{self.quantile:g}' if self.quantile is not None else f'{self.value:g}'

  def cutoff(self, scores: Iterable[float]) -> float:
    """The lowest score kept: the value itself, or the quantile of `scores` (-inf when
    there are none: nothing to reject)."""
    if self.quantile is None:
      return self.value
    scores = np.asarray(list(scores), np.float64)
    return float(np.quantile(scores, self.quantile)) if scores.size else -np.inf


def parse(given: float | str | Threshold, field: str) -> Threshold:
  """`given` (a flag's value: 3, '3.5', 'q0.2') as a Threshold; field names the flag."""
  if isinstance(given, Threshold):
    return given
  text = str(given).strip()
  try:
    if text[:1] in ('q', 'Q'):
      quantile = float(text[1:])
      if 0 < quantile < 1:
        return Threshold(quantile=quantile)
    else:
      value = float(text)
      if np.isfinite(value):
        return Threshold(value=value)
  except ValueError:
    pass
  raise ValueError(f'{field}={given}: give a score (e.g. 3: keep scores >= 3) or a quantile '
                   'qF with 0 < F < 1 (e.g. q0.2: reject the lowest 20% of this run\'s scores)')


@dataclasses.dataclass(frozen=True)
class ScoreCut:
  """What the merge rejects: a kept result whose `score` is below `threshold`'s cut,
  with `reason`."""
  score: str
  threshold: Threshold
  reason: str

  def cutoff(self, results: Iterable[dict]) -> float:
    """The cut over ledger results (each {"kept", "scores", ...}): every `score` they hold."""
    return self.threshold.cutoff(r['scores'][self.score] for r in results
                                 if self.score in r['scores'])

  def summary(self, cutoff: float) -> dict:
    """The cut as OUT.summary.json shows it (cutoff null: nothing was scored)."""
    return {'score': self.score, 'threshold': str(self.threshold),
            'cutoff': cutoff if np.isfinite(cutoff) else None}
