"""The mixture fit finds a planted optimum and ranks held-out points (leave-one-out)."""

import numpy as np
import pytest
from scipy import stats

from gemini_embed.sweep import fit, points

NAMES = ['a', 'b', 'c']
OPTIMUM = np.array([0.5, 0.3, 0.2])
PRIOR = {'a': 1 / 3, 'b': 1 / 3, 'c': 1 / 3}


def planted(x: np.ndarray, noise: float, rng) -> np.ndarray:
  """A quadratic score with its maximum at OPTIMUM (inside the simplex)."""
  return 0.6 - ((x - OPTIMUM) ** 2).sum(axis=1) + noise * rng.standard_normal(len(x))


def test_linear_fit_recovers_a_planted_optimum():
  rng = np.random.default_rng(0)
  x = points.sample_mixtures(PRIOR, 30, 3.0, rng)
  proposal = fit.propose('linear', NAMES, x, planted(x, 0.002, rng), PRIOR, 3.0, seed=1)
  got = np.array([proposal.mixture[k] for k in NAMES])
  assert np.abs(got - OPTIMUM).max() < 0.05, proposal.mixture
  assert proposal.loo_spearman > 0.9
  assert proposal.predicted == pytest.approx(0.6, abs=0.01)


def test_gbm_fit_ranks_held_out_points():
  rng = np.random.default_rng(2)
  x = points.sample_mixtures(PRIOR, 24, 3.0, rng)
  y = x[:, 0] + 0.01 * rng.standard_normal(24)  # more of `a` is better
  proposal = fit.propose('gbm', NAMES, x, y, PRIOR, 3.0)
  assert proposal.loo_spearman > 0.8
  assert proposal.mixture['a'] > 0.6


def test_loo_spearman_is_the_rank_correlation_of_held_out_predictions():
  rng = np.random.default_rng(3)
  x = points.sample_mixtures(PRIOR, 12, 3.0, rng)
  y = planted(x, 0.01, rng)
  preds = []
  for i in range(len(y)):  # the reference: refit without point i, predict it
    keep = np.arange(len(y)) != i
    preds.append(fit.make_model('linear', 11).fit(x[keep], y[keep]).predict(x[i:i + 1])[0])
  assert fit.loo_spearman('linear', x, y) == pytest.approx(stats.spearmanr(preds, y).statistic)


def test_too_few_points_is_a_clear_error():
  with pytest.raises(ValueError, match='at least 3 finished, evaluated points; there are 2'):
    fit.propose('linear', NAMES, np.eye(3)[:2], np.ones(2), PRIOR, 3.0)
