"""Runners on the synthetic suite: an encoder with the known right answer scores 1.0
on every task type; the same vectors on the wrong texts do not; MRL prefixes are
prefixes; the encoder sees the right kinds and task strings."""

import numpy as np
import pytest
import pytrec_eval

from gemini_embed.eval import Bm25Okapi, evaluate_suite, load_suite
from gemini_embed.eval.suite import task_id
from gemini_embed.eval.suite_evaluation import main_scores
from gemini_embed.eval.task_runners import run_reranking, run_retrieval, undersample_indices
from tests.eval.synthetic_suite import WIDTH, OracleEncoder, ShuffledEncoder, write_suite

TASKS = ['retrieval/shelves', 'reranking/boxes', 'classification/moods', 'clustering/moods',
         'pair_classification/lost', 'sts/closeness', 'bitext/mirror']


@pytest.fixture(scope='module')
def suite(tmp_path_factory):
  root = tmp_path_factory.mktemp('suite')
  return root, write_suite(root)


@pytest.fixture(scope='module')
def results(suite):
  root, truth = suite
  systems = {'oracle': OracleEncoder(truth), 'shuffled': ShuffledEncoder(truth),
             'prefixed': OracleEncoder(truth, constant_dims=4), 'bm25': Bm25Okapi()}
  return evaluate_suite(root, systems, dims=[4, 1000])


def test_systems_and_dims(results):
  # 1000 is above every width: it means the full embedding (16, or 4 + 16 for "prefixed").
  assert list(results['systems']) == [
      'oracle@4', f'oracle@{WIDTH}', 'shuffled@4', f'shuffled@{WIDTH}',
      'prefixed@4', f'prefixed@{WIDTH + 4}', 'bm25']
  assert list(results['tasks']) == TASKS


def test_oracle_is_perfect_on_every_task_type(results):
  scores = main_scores(results, f'oracle@{WIDTH}')
  assert scores == pytest.approx({t: 1.0 for t in TASKS})
  assert results['aggregates'][f'oracle@{WIDTH}']['mean_type'] == pytest.approx(1.0)


def test_shuffled_vectors_are_far_from_perfect(results):
  for task, score in main_scores(results, f'shuffled@{WIDTH}').items():
    assert score < 0.7, task


def test_mrl_prefix_is_the_first_dims_renormalised(results):
  # "prefixed" = 4 identical coordinates, then the oracle: the 4-dim prefix holds no
  # information, the full width (4 + 16) is perfect again despite the constant block.
  assert main_scores(results, f'prefixed@{WIDTH + 4}') == pytest.approx({t: 1.0 for t in TASKS})
  for task, score in main_scores(results, 'prefixed@4').items():
    assert score < 0.6, task


def test_bm25_runs_retrieval_and_reranking_only(results):
  assert list(results['systems']['bm25']['scores']) == ['retrieval/shelves', 'reranking/boxes']
  agg = results['aggregates']['bm25']
  assert np.isnan(agg['mean_task']) and agg['type_means']['retrieval'] > 0.5
  assert agg['borda_points'] > 0


def test_borda_puts_the_oracle_first(results):
  agg = results['aggregates']
  assert agg[f'oracle@{WIDTH}']['borda_rank'] == 1
  assert agg[f'prefixed@{WIDTH + 4}']['borda_rank'] == 1  # identical scores share the rank
  assert agg[f'shuffled@{WIDTH}']['borda_rank'] > 3


def test_row_scale_does_not_matter(suite):
  root, truth = suite
  tasks = load_suite(root)
  unscaled = ShuffledEncoder(truth)
  unscaled.scale_rows = False
  a = evaluate_suite(root, {'m': ShuffledEncoder(truth)})['systems']
  b = evaluate_suite(root, {'m': unscaled})['systems']
  assert len(tasks) == len(a[f'm@{WIDTH}']['scores'])
  for task in TASKS:
    assert a[f'm@{WIDTH}']['scores'][task] == pytest.approx(b[f'm@{WIDTH}']['scores'][task])


def test_encoder_sees_kinds_task_strings_and_each_text_once(suite):
  root, truth = suite
  seen = []
  oracle = OracleEncoder(truth)

  def recording(texts, kind, task):
    seen.extend((t, kind, task) for t in texts)
    return oracle(texts, kind, task)

  evaluate_suite(root, {'m': recording}, task_strings={'retrieval/shelves': 'code retrieval',
                                                       'sts': 'similarity'})
  tasks = {task_id(t): t for t in load_suite(root)}
  retrieval = tasks['retrieval/shelves']
  by_task = {}
  for text, kind, task in seen:
    by_task.setdefault(task, []).append((text, kind))
  assert set(by_task) == {'code retrieval', 'reranking', 'classification', 'clustering',
                          'pair_classification', 'similarity', 'bitext'}
  assert sorted(by_task['code retrieval']) == sorted(
      [(q, 'query') for q in retrieval.query_texts] + [(d, 'document') for d in retrieval.corpus_texts])
  assert {k for _, k in by_task['similarity']} == {'query'}
  texts = [t for t, _ in by_task['similarity']]
  assert len(texts) == len(set(texts))  # duplicates encoded once
  sts = tasks['sts/closeness']
  assert set(texts) == set(sts.texts1 + sts.texts2)


def test_retrieval_runner_matches_pytrec_eval_end_to_end(suite):
  root, truth = suite
  task = next(t for t in load_suite(root) if t.type == 'retrieval')
  shuffled = ShuffledEncoder(truth, seed=3)
  ours = run_retrieval(task, shuffled, None, 'retrieval')[WIDTH].metrics
  unit = lambda texts: np.stack([shuffled.vector(t) / np.linalg.norm(shuffled.vector(t))
                                 for t in texts]).astype(np.float32)
  cosine = unit(task.query_texts) @ unit(task.corpus_texts).T
  run = {q: {d: float(cosine[i, j]) for j, d in enumerate(task.corpus_ids)}
         for i, q in enumerate(task.query_ids)}
  reference = pytrec_eval.RelevanceEvaluator(task.qrels, {'ndcg_cut.10', 'recall.5'}).evaluate(run)
  assert 0 < ours['ndcg_at_10'] < 1
  assert ours['ndcg_at_10'] == pytest.approx(np.mean([r['ndcg_cut_10'] for r in reference.values()]))
  assert ours['recall_at_5'] == pytest.approx(np.mean([r['recall_5'] for r in reference.values()]))


def test_reranking_ties_never_favour_positives(suite):
  # A constant encoder ties every candidate; each query's 1 positive is ranked last of 3:
  # AP = precision at rank 3 = 1/3 for every query.
  root, _ = suite
  task = next(t for t in load_suite(root) if t.type == 'reranking')
  constant = lambda texts, kind, task: np.ones((len(texts), 8), np.float32)
  scores = run_reranking(task, constant, None, 'reranking')[8].metrics
  assert scores['map_at_1000'] == pytest.approx(1 / 3)
  assert scores['mrr_at_10'] == pytest.approx(1 / 3)


def test_undersampling_takes_n_per_label_and_varies_across_experiments():
  labels = ['a'] * 20 + ['b'] * 5 + ['c'] * 12
  subsets = undersample_indices(labels, samples_per_label=8, n_experiments=4)
  for subset in subsets:
    counts = {x: sum(labels[i] == x for i in subset) for x in 'abc'}
    assert counts == {'a': 8, 'b': 5, 'c': 8}
    assert len(set(subset)) == len(subset)
  assert len({tuple(sorted(s)) for s in subsets}) == 4
  assert subsets == undersample_indices(labels, samples_per_label=8, n_experiments=4)


def test_bad_encoder_output_is_reported(suite):
  root, _ = suite
  wrong_rows = lambda texts, kind, task: np.zeros((len(texts) + 1, 4), np.float32)
  with pytest.raises(ValueError, match=r'retrieval/shelves queries: the encoder returned shape'):
    evaluate_suite(root, {'m': wrong_rows})
  nan = lambda texts, kind, task: np.full((len(texts), 4), np.nan, np.float32)
  with pytest.raises(ValueError, match='NaN'):
    evaluate_suite(root, {'m': nan})
