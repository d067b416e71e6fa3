"""Retrieval metrics against pytrec_eval (the C trec_eval MTEB itself calls), plus a worked case."""

import numpy as np
import pytest
import pytrec_eval

from gemini_embed.eval.ranking_metrics import (descending_id_tie_break, gains_of_ranking,
                                               ranking_metrics, top_k_ranking)

K = (1, 3, 5, 10, 20)


def _random_run(seed, num_queries=25, num_docs=40):
  """Integer scores (many ties) and graded qrels (0..3) with a few judged docs per query."""
  rng = np.random.default_rng(seed)
  doc_ids = [f'd{rng.integers(1000)}_{i}' for i in range(num_docs)]
  query_ids = [f'q{i}' for i in range(num_queries)]
  scores = rng.integers(0, 5, size=(num_queries, num_docs)).astype(float)
  qrels = {}
  for q in query_ids:
    judged = rng.choice(num_docs, size=rng.integers(1, 8), replace=False)
    qrels[q] = {doc_ids[d]: int(rng.integers(0, 4)) for d in judged}
  return doc_ids, query_ids, scores, qrels


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_ndcg_map_recall_match_pytrec_eval_with_ties_and_graded_qrels(seed):
  doc_ids, query_ids, scores, qrels = _random_run(seed)
  run = {q: {d: float(scores[i, j]) for j, d in enumerate(doc_ids)} for i, q in enumerate(query_ids)}
  cut = ','.join(map(str, K))
  reference = pytrec_eval.RelevanceEvaluator(
      qrels, {f'ndcg_cut.{cut}', f'map_cut.{cut}', f'recall.{cut}'}).evaluate(run)

  ranking = top_k_ranking(scores, max(K), descending_id_tie_break(doc_ids))
  ours = ranking_metrics(*gains_of_ranking(ranking, doc_ids, query_ids, qrels), k_values=K)
  for k in K:
    for name, trec_name in [('ndcg', 'ndcg_cut'), ('map', 'map_cut'), ('recall', 'recall')]:
      expected = np.mean([reference[q][f'{trec_name}_{k}'] for q in query_ids])
      assert ours[f'{name}_at_{k}'] == pytest.approx(expected, abs=1e-12), (name, k)


@pytest.mark.parametrize('k', [1, 3, 10])
def test_mrr_at_k_matches_trec_reciprocal_rank_of_the_top_k(k):
  doc_ids, query_ids, scores, qrels = _random_run(5)
  ranking = top_k_ranking(scores, k, descending_id_tie_break(doc_ids))
  # trec_eval's recip_rank over a run cut to our top k is MRR@k (it re-sorts the run itself).
  run = {q: {doc_ids[d]: float(scores[i, d]) for d in ranking[i]} for i, q in enumerate(query_ids)}
  reference = pytrec_eval.RelevanceEvaluator(qrels, {'recip_rank'}).evaluate(run)
  ours = ranking_metrics(*gains_of_ranking(ranking, doc_ids, query_ids, qrels), k_values=(k,))
  assert ours[f'mrr_at_{k}'] == pytest.approx(np.mean([reference[q]['recip_rank'] for q in query_ids]))


def test_worked_example():
  # One query; ranked relevances [0, 2, 1, 0]; judged relevances {2, 1, 0}.
  # DCG@10 = 0/log2(2) + 2/log2(3) + 1/log2(4) = 1.26186 + 0.5 = 1.76186
  # IDCG@10 = 2/log2(2) + 1/log2(3) = 2.63093       → nDCG@10 = 0.66967
  # MAP@10 = (1/2 + 2/3) / 2 relevant = 0.58333;  MRR@10 = 1/2;  recall@1 = 0, recall@3 = 1
  ranked = np.array([[0., 2., 1., 0.]])
  ideal = np.array([[2., 1., 0.]])
  m = ranking_metrics(ranked, ideal, k_values=(1, 3, 10))
  assert m['ndcg_at_10'] == pytest.approx(1.76186 / 2.63093, abs=1e-5)
  assert m['map_at_10'] == pytest.approx((1 / 2 + 2 / 3) / 2)
  assert m['mrr_at_10'] == 0.5
  assert (m['recall_at_1'], m['recall_at_3']) == (0.0, 1.0)
  assert m['ndcg_at_1'] == 0.0


def test_query_without_relevant_documents_scores_zero():
  m = ranking_metrics(np.array([[0., 0.]]), np.array([[0.]]), k_values=(10,))
  assert all(v == 0.0 for v in m.values())


def test_top_k_ranking_equals_a_full_sort_when_ties_straddle_the_cut():
  rng = np.random.default_rng(3)
  scores = rng.integers(0, 3, size=(50, 30)).astype(float)  # heavy ties around any k
  tie_break = rng.permutation(30)
  for k in (1, 4, 7, 30):
    expected = np.stack([np.lexsort((-tie_break, -row))[:k] for row in scores])
    np.testing.assert_array_equal(top_k_ranking(scores, k, tie_break), expected)


def test_descending_id_tie_break_prefers_the_larger_id():
  ids = ['b', 'a', 'c']
  ranking = top_k_ranking(np.zeros((1, 3)), 3, descending_id_tie_break(ids))
  assert [ids[i] for i in ranking[0]] == ['c', 'b', 'a']
