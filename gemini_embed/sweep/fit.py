"""Score ~ mixture: fit the finished points, then propose the mixture the fit likes best
(RegMix: simulate many Dirichlet mixtures around the prior, keep the top ones).

    linear   ridge regression on the rates and their pairwise products (degree 2: a
             quadratic has an interior optimum; rates alone put it on a corner)
    gbm      gradient-boosted trees (scikit-learn), as RegMix's LightGBM

The fit is judged by leave-one-out: each point predicted by a fit of the others, then the
Spearman correlation of predictions with the scores (does the fit rank mixtures?).
The proposal is the mean of the TOP_K simulated mixtures of highest prediction (one
argmax over noisy predictions is itself noisy), rounded as sweep points are.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures

from gemini_embed.sweep.points import rounded_mixture, sample_mixtures

SIMULATED = 100_000
TOP_K = 100
MIN_POINTS = 3


@dataclasses.dataclass
class Proposal:
  kind: str
  points: int
  loo_spearman: float | None   # None: fewer than MIN_POINTS + 1 points
  mixture: dict[str, float]    # dataset → rate (normalised, rounded)
  predicted: float             # the fit's score at `mixture`
  best_observed: float


def make_model(kind: str, n_points: int):
  if kind == 'linear':
    return make_pipeline(PolynomialFeatures(2, include_bias=False),
                         RidgeCV(alphas=np.logspace(-6, 2, 17)))
  if kind == 'gbm':
    return GradientBoostingRegressor(n_estimators=200, learning_rate=0.05, max_depth=2,
                                     min_samples_leaf=max(1, min(5, n_points // 4)),
                                     subsample=1.0, random_state=0)
  raise ValueError(f'--fit={kind!r}: use linear or gbm')


def loo_spearman(kind: str, x: np.ndarray, y: np.ndarray) -> float | None:
  if len(y) <= MIN_POINTS:
    return None
  pred = cross_val_predict(make_model(kind, len(y) - 1), x, y, cv=LeaveOneOut())
  return float(stats.spearmanr(pred, y).statistic)


def propose(kind: str, names: list[str], x: np.ndarray, y: np.ndarray,
            mean: dict[str, float], concentration: float, seed: int = 0) -> Proposal:
  """Fit score ~ mixture on (x: Float[N, D] normalised rates, columns `names`; y: Float[N]),
  then the best of SIMULATED draws of Dirichlet(concentration · mean)."""
  if len(y) < MIN_POINTS:
    raise ValueError(f'--fit needs at least {MIN_POINTS} finished, evaluated points; '
                     f'there are {len(y)}')
  if sorted(mean) != names:
    raise ValueError(f'fit columns {names} and prior datasets {sorted(mean)} differ')
  model = make_model(kind, len(y)).fit(x, y)
  draws = sample_mixtures(mean, SIMULATED, concentration, np.random.default_rng(seed))
  pred = model.predict(draws)
  top = draws[np.argsort(pred)[-TOP_K:]].mean(axis=0)
  mixture = rounded_mixture(names, top / top.sum())
  predicted = float(model.predict(np.array([[mixture[k] for k in names]]))[0])
  return Proposal(kind, len(y), loo_spearman(kind, x, y), mixture, predicted, float(y.max()))
