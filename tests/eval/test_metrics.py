"""Pair-classification, STS, clustering, bitext and classification metrics against
scikit-learn / SciPy, and hand-worked cases."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sk

from gemini_embed.eval import metrics


def _tied_scores(rng, n):
  return rng.integers(0, 6, n).astype(float)  # few distinct values: ties everywhere


@pytest.mark.parametrize('seed', range(4))
def test_average_precision_matches_sklearn_with_ties(seed):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, 60)
  for scores in (_tied_scores(rng, 60), rng.standard_normal(60)):
    assert metrics.average_precision(labels, scores) == pytest.approx(
        sk.average_precision_score(labels, scores), abs=1e-12)


def test_average_precision_hand_case():
  # Ranked labels 1, 0, 1: precision at the two positives 1/1 and 2/3 → AP = (1 + 2/3) / 2.
  assert metrics.average_precision([1, 0, 1], [0.9, 0.8, 0.1]) == pytest.approx(5 / 6)
  assert np.isnan(metrics.average_precision([0, 0], [0.3, 0.2]))


def _brute_force_best(scores, labels, score_fn):
  """Try "score > t" for every t midway between consecutive distinct scores (MTEB's grid)."""
  distinct = np.unique(scores)
  best = 0.0
  for t in (distinct[:-1] + distinct[1:]) / 2:
    best = max(best, score_fn(labels, (scores > t).astype(int)))
  return best


@pytest.mark.parametrize('seed', range(4))
def test_best_threshold_accuracy_and_f1_match_a_brute_force_search(seed):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, 40)
  scores = _tied_scores(rng, 40) + 0.5 * labels  # informative, with ties
  acc, threshold = metrics.best_threshold_accuracy(scores, labels)
  assert acc == pytest.approx(_brute_force_best(scores, labels, sk.accuracy_score))
  assert sk.accuracy_score(labels, scores > threshold) == pytest.approx(acc)
  f1 = metrics.best_threshold_f1(scores, labels)
  assert f1['f1'] == pytest.approx(_brute_force_best(scores, labels, sk.f1_score))
  predicted = scores > f1['threshold']
  assert sk.precision_score(labels, predicted) == pytest.approx(f1['precision'])
  assert sk.recall_score(labels, predicted) == pytest.approx(f1['recall'])


def test_best_threshold_never_splits_ties():
  # All scores equal: no threshold exists → MTEB reports 0.
  assert metrics.best_threshold_accuracy(np.ones(4), np.array([1, 0, 1, 0]))[0] == 0.0
  assert metrics.best_threshold_f1(np.ones(4), np.array([1, 0, 1, 0]))['f1'] == 0.0


@pytest.mark.parametrize('seed', range(3))
def test_spearman_and_pearson_match_scipy(seed):
  rng = np.random.default_rng(seed)
  x = _tied_scores(rng, 50)
  y = x + rng.standard_normal(50)
  assert metrics.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
  assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
  np.testing.assert_allclose(metrics.average_ranks(x), stats.rankdata(x))


def test_correlation_with_a_constant_is_zero_not_nan():
  # scipy returns NaN here; we report "no correlation" so means stay defined.
  assert metrics.spearman(np.ones(5), np.arange(5)) == 0.0
  assert metrics.pearson(np.arange(5), np.full(5, 2.0)) == 0.0


@pytest.mark.parametrize('seed', range(4))
def test_v_measure_matches_sklearn(seed):
  rng = np.random.default_rng(seed)
  truth = rng.integers(0, 4, 80)
  predicted = np.where(rng.random(80) < 0.6, truth, rng.integers(0, 5, 80))
  assert metrics.v_measure(truth, predicted) == pytest.approx(
      sk.v_measure_score(truth, predicted), abs=1e-12)
  labels_as_strings = np.array(['abcd'[t] for t in truth])
  assert metrics.v_measure(labels_as_strings, predicted) == pytest.approx(
      sk.v_measure_score(truth, predicted), abs=1e-12)


@pytest.mark.parametrize('truth, predicted', [
    ([0, 0, 1, 1], [5, 5, 5, 5]),   # one cluster
    ([0, 0, 0, 0], [1, 2, 3, 4]),   # one class
    ([0, 0, 1, 1], [1, 1, 0, 0]),   # perfect, renamed
])
def test_v_measure_edge_cases_match_sklearn(truth, predicted):
  assert metrics.v_measure(truth, predicted) == pytest.approx(sk.v_measure_score(truth, predicted))


def test_bitext_hand_case():
  # 4 sources; predicted targets [0, 0, 2, 1]; gold i → i.
  # Hits at 0 and 2. Target 0 was predicted twice → precision_0 = 1/2, f1_0 = 2·(1/2·1)/(3/2) = 2/3;
  # target 2 predicted once → f1_2 = 1; sources 1 and 3 miss → 0. F1 = (2/3 + 1) / 4 = 5/12.
  s = metrics.bitext_scores(np.array([0, 0, 2, 1]))
  assert s['f1'] == pytest.approx(5 / 12)
  assert s['accuracy'] == 0.5 and s['recall'] == 0.5
  assert s['precision'] == pytest.approx((1 / 2 + 1) / 4)


@pytest.mark.parametrize('seed', range(3))
def test_bitext_matches_sklearn_weighted_scores(seed):
  rng = np.random.default_rng(seed)
  n = 30
  predicted = np.where(rng.random(n) < 0.5, np.arange(n), rng.integers(0, n, n))
  gold = np.arange(n)
  s = metrics.bitext_scores(predicted)
  kw = dict(average='weighted', zero_division=0)
  assert s['f1'] == pytest.approx(sk.f1_score(gold, predicted, **kw))
  assert s['precision'] == pytest.approx(sk.precision_score(gold, predicted, **kw))
  assert s['recall'] == pytest.approx(sk.recall_score(gold, predicted, **kw))


def test_accuracy_and_macro_f1_match_sklearn():
  rng = np.random.default_rng(0)
  y_true = rng.choice(['a', 'b', 'c'], 50)
  y_pred = rng.choice(['a', 'b', 'c', 'd'], 50)
  assert metrics.accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))
  assert metrics.macro_f1(y_true, y_pred) == pytest.approx(
      sk.f1_score(y_true, y_pred, average='macro', zero_division=0))
