"""Mean(Task), Mean(Type) and Borda on hand-worked tables."""

import math

import numpy as np
import pytest

from gemini_embed.eval import aggregates


TYPES = {'r/a': 'retrieval', 'r/b': 'retrieval', 'sts/c': 'sts'}


def test_mean_task_and_mean_type():
  scores = {'r/a': 0.2, 'r/b': 0.4, 'sts/c': 0.9}
  # Mean(Task) = (0.2 + 0.4 + 0.9) / 3 = 0.5; Mean(Type) = mean(0.3, 0.9) = 0.6.
  assert aggregates.mean_task(scores, list(TYPES)) == pytest.approx(0.5)
  assert aggregates.mean_type(scores, TYPES) == pytest.approx(0.6)
  assert aggregates.type_means(scores, TYPES) == pytest.approx({'retrieval': 0.3, 'sts': 0.9})


def test_means_are_nan_when_a_task_is_missing():
  scores = {'r/a': 0.2, 'r/b': 0.4}
  assert math.isnan(aggregates.mean_task(scores, list(TYPES)))
  assert math.isnan(aggregates.mean_type(scores, TYPES))
  assert aggregates.type_means(scores, TYPES)['retrieval'] == pytest.approx(0.3)


def test_borda_with_ties_hand_case():
  # 3 models (A, B, C) × 2 tasks.
  # task 1: A .9, B .9, C .5 → ranks 1.5, 1.5, 3 (A, B tie for 1st–2nd) → points 1.5, 1.5, 0
  # task 2: A .1, B .2, C .3 → ranks 3, 2, 1                            → points 0, 1, 2
  # totals A 1.5, B 2.5, C 2 → Borda ranks A 3, B 1, C 2
  scores = np.array([[.9, .1], [.9, .2], [.5, .3]])
  points = aggregates.borda_points(scores)
  np.testing.assert_allclose(points, [1.5, 2.5, 2.0])
  np.testing.assert_array_equal(aggregates.borda_rank(points), [3, 1, 2])


def test_borda_missing_task_gives_no_points_and_equal_totals_share_rank():
  # task 1: A .5, B .7 (C did not run it) → ranks A 2, B 1 → points 1, 2 (n_models = 3)
  # task 2: A .8, B .4, C .8 → ranks 1.5, 3, 1.5 → points 1.5, 0, 1.5
  # totals A 2.5, B 2, C 1.5 → ranks 1, 2, 3
  scores = np.array([[.5, .8], [.7, .4], [np.nan, .8]])
  points = aggregates.borda_points(scores)
  np.testing.assert_allclose(points, [2.5, 2.0, 1.5])
  np.testing.assert_array_equal(aggregates.borda_rank([2.0, 3.0, 2.0, 1.0]), [2, 1, 2, 4])
