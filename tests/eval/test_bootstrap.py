"""The bootstrap against an independent plain-NumPy bootstrap on fixed data.

The reference below follows the scheme bootstrap.py documents (the same index draws:
`default_rng([seed, crc32(task)])` for items, `default_rng([seed, crc32('tasks:' +
type)])` for tasks; replicates of non-mean statistics centred on the task's score), but
computes every statistic its own way — ranks and Pearson by hand, AP and V-measure with
scikit-learn — one replicate at a time in Python loops.
With the draws shared, the two must agree to rounding, replicate by replicate: a
mistake in the statistics, in the two-level resampling or in the aggregation shows.
A second test checks the interval's width against the normal theory on iid data.
"""

import zlib

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, v_measure_score

from gemini_embed.eval import bootstrap, evaluate_suite
from gemini_embed.eval.bootstrap import ItemScores
from gemini_embed.eval.suite_evaluation import main_scores
from tests.eval.synthetic_suite import ShuffledEncoder, write_suite

B, SEED = 100, 7
TYPES = {'retrieval/a': 'retrieval', 'retrieval/b': 'retrieval', 'retrieval/c': 'retrieval',
         'sts/a': 'sts', 'sts/b': 'sts', 'pair_classification/a': 'pair_classification',
         'clustering/a': 'clustering', 'bitext/a': 'bitext'}


def _items(rng, task_type, n, shift):
  if task_type in ('retrieval', 'bitext'):
    return ItemScores('mean', {'values': np.clip(rng.uniform(0, 1, n) + shift, 0, 1)})
  if task_type == 'sts':
    gold = np.round(rng.uniform(0, 5, n))  # ties in the gold scores
    return ItemScores('spearman', {'similarity': gold + rng.normal(0, 2 - shift, n),
                                   'gold': gold})
  if task_type == 'pair_classification':
    labels = (np.arange(n) % 2).astype(np.int64)
    sims = np.stack([labels * (0.5 + shift) + rng.normal(0, 1, n) for _ in range(3)])
    sims[1] = np.round(sims[1], 1)  # tied scores
    return ItemScores('max_ap', {'labels': labels, 'similarities': sims})
  labels = np.arange(n) % 4
  clusters = np.where(rng.uniform(size=n) < 0.6 + shift, labels, rng.integers(0, 4, n))
  return ItemScores('v_measure', {'labels': labels, 'clusters': clusters})


@pytest.fixture(scope='module')
def systems():
  rng = np.random.default_rng(0)
  sizes = dict(zip(TYPES, (30, 45, 20, 40, 25, 40, 36, 30)))
  return {name: {t: _items(rng, TYPES[t], sizes[t], shift) for t in TYPES}
          for name, shift in (('A', 0.1), ('B', 0.0))}


def _ranks(x):
  order = sorted(range(len(x)), key=lambda i: x[i])
  ranks = [0.0] * len(x)
  i = 0
  while i < len(order):
    j = i
    while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
      j += 1
    for k in range(i, j + 1):
      ranks[order[k]] = (i + j) / 2 + 1
    i = j + 1
  return np.array(ranks)


def _reference_statistic(items, idx):
  c = items.columns
  if items.statistic == 'mean':
    return float(np.mean([c['values'][i] for i in idx]))
  if items.statistic == 'spearman':
    x, y = _ranks(list(c['similarity'][idx])), _ranks(list(c['gold'][idx]))
    x, y = x - x.mean(), y - y.mean()
    return float((x @ y) / np.sqrt((x @ x) * (y @ y)))
  if items.statistic == 'max_ap':
    return max(average_precision_score(c['labels'][idx], s[idx]) for s in c['similarities'])
  return float(v_measure_score(c['labels'][idx], c['clusters'][idx]))


def _reference_replicates(items_by_task):
  """{'tasks': {t: [B]}, 'type_means': {y: [B]}, 'mean_task': [B], 'mean_type': [B]}."""
  crc = lambda s: zlib.crc32(s.encode())
  draws = {t: np.random.default_rng([SEED, crc(t)]).integers(0, it.size, size=(B, it.size))
           for t, it in items_by_task.items()}
  by_type = {}
  for t, y in TYPES.items():
    by_type.setdefault(y, []).append(t)
  picks = {y: np.random.default_rng([SEED, crc('tasks:' + y)]).integers(0, len(m), (B, len(m)))
           for y, m in by_type.items()}
  out = dict(tasks={t: [] for t in TYPES}, type_means={y: [] for y in by_type},
             mean_task=[], mean_type=[])
  raw = {t: [_reference_statistic(items_by_task[t], draws[t][b]) for b in range(B)]
         for t in TYPES}
  point = {t: _reference_statistic(items_by_task[t], np.arange(items_by_task[t].size))
           for t in TYPES}
  centred = {t: raw[t] if items_by_task[t].statistic == 'mean' else
             [r - (sum(raw[t]) / B - point[t]) for r in raw[t]] for t in TYPES}
  for b in range(B):
    score = {t: centred[t][b] for t in TYPES}
    for t in TYPES:
      out['tasks'][t].append(score[t])
    picked_all, type_means = [], []
    for y, members in by_type.items():
      picked = [score[members[j]] for j in picks[y][b]]
      out['type_means'][y].append(np.mean(picked))
      type_means.append(np.mean(picked))
      picked_all += picked
    out['mean_task'].append(np.mean(picked_all))
    out['mean_type'].append(np.mean(type_means))
  return out


@pytest.fixture(scope='module')
def replicates(systems):
  ours = {n: bootstrap.suite_replicates(items, TYPES, B, SEED) for n, items in systems.items()}
  theirs = {n: _reference_replicates(items) for n, items in systems.items()}
  return ours, theirs


def test_replicates_equal_an_independent_bootstrap(replicates):
  ours, theirs = replicates
  for name in ours:
    for t in TYPES:
      np.testing.assert_allclose(ours[name]['tasks'][t], theirs[name]['tasks'][t], atol=1e-12)
    for y in set(TYPES.values()):
      np.testing.assert_allclose(ours[name]['type_means'][y], theirs[name]['type_means'][y],
                                 atol=1e-12)
    for key in ('mean_task', 'mean_type'):
      np.testing.assert_allclose(ours[name][key], theirs[name][key], atol=1e-12)
    iv = bootstrap.intervals(ours[name])
    lo, hi = np.percentile(theirs[name]['mean_task'], [2.5, 97.5])
    assert iv['mean_task'] == pytest.approx([lo, hi], abs=1e-12)
    assert lo < hi


def test_point_scores_equal_the_plain_statistics(systems):
  for items in systems['A'].values():
    assert bootstrap.point_score(items) == pytest.approx(
        _reference_statistic(items, np.arange(items.size)), abs=1e-12)


def test_paired_comparison_equals_the_reference(replicates, systems):
  ours, theirs = replicates
  points = {n: dict(tasks={t: bootstrap.point_score(i) for t, i in items.items()})
            for n, items in systems.items()}
  for n in points:
    p = points[n]
    by_type = {}
    for t, y in TYPES.items():
      by_type.setdefault(y, []).append(p['tasks'][t])
    p['type_means'] = {y: float(np.mean(v)) for y, v in by_type.items()}
    p['mean_task'] = float(np.mean(list(p['tasks'].values())))
    p['mean_type'] = float(np.mean(list(p['type_means'].values())))
  got = bootstrap.compare(ours['A'], ours['B'], points['A'], points['B'])
  diff = np.array(theirs['A']['mean_task']) - np.array(theirs['B']['mean_task'])
  want = np.mean(diff > 0) + 0.5 * np.mean(diff == 0)
  assert got['mean_task']['p_a_greater'] == pytest.approx(want)
  assert got['mean_task']['interval'] == pytest.approx(np.percentile(diff, [2.5, 97.5]), abs=1e-12)
  assert got['mean_task']['difference'] == pytest.approx(
      points['A']['mean_task'] - points['B']['mean_task'])
  assert 0.5 < got['mean_task']['p_a_greater'] <= 1.0  # A is B shifted up
  same = bootstrap.compare(ours['A'], ours['A'], points['A'], points['A'])
  assert same['mean_type'] == dict(difference=0.0, interval=[0.0, 0.0], p_a_greater=0.5)


def test_interval_width_matches_normal_theory_on_iid_data():
  # The mean of n iid N(0, 1) items: a 95% interval about ±1.96/√n wide; the percentile
  # bootstrap's width has a Monte-Carlo spread of a few percent at B = 2000.
  values = np.random.default_rng(3).standard_normal(400)
  reps = bootstrap.suite_replicates({'retrieval/x': bootstrap.mean_of(values)},
                                    {'retrieval/x': 'retrieval'}, 2000, 0)
  lo, hi = bootstrap.interval(reps['tasks']['retrieval/x'])
  half_width = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
  assert (hi - lo) / 2 == pytest.approx(half_width, rel=0.1)
  assert lo < values.mean() < hi
  # one task in its type: resampling tasks changes nothing
  np.testing.assert_array_equal(reps['mean_task'], reps['tasks']['retrieval/x'])


def test_a_missing_task_leaves_its_type_and_the_suite_without_interval(systems):
  items = dict(systems['A'])
  del items['sts/b']
  reps = bootstrap.suite_replicates(items, TYPES, 50, 0)
  iv = bootstrap.intervals(reps)
  assert iv['type_means']['sts'] is None and iv['mean_task'] is None and iv['mean_type'] is None
  assert iv['type_means']['retrieval'] is not None and iv['tasks']['sts/a'] is not None


def test_runner_items_reproduce_every_main_score(tmp_path):
  root = tmp_path / 'suite'
  truth = write_suite(root)
  results = evaluate_suite(root, {'m': ShuffledEncoder(truth, seed=2)}, dims=[8], replicates=200)
  label = 'm@8'
  for task, score in main_scores(results, label).items():
    items = ItemScores.from_json(results['systems'][label]['items'][task])
    assert bootstrap.point_score(items) == pytest.approx(score, abs=1e-9), task
  iv = results['aggregates'][label]['intervals']
  assert iv['mean_task'][0] <= results['aggregates'][label]['mean_task'] <= iv['mean_task'][1]
