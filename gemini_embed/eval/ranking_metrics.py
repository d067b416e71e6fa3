"""Ranking and the retrieval metrics MTEB reports (trec_eval definitions, as pytrec_eval).

MTEB ranks the top 1000 documents of each query by cosine and hands the run to
pytrec_eval. trec_eval orders a run by score, then by document id *descending*
(so ties never depend on input order); `top_k_ranking` reproduces that with an
explicit `tie_break` rank per document.

The metrics work on the relevance of the ranked list, one row per query:

    ranked_gain  Float[Q, K]  graded relevance of the document at each rank (0: unjudged)
    ideal_gain   Float[Q, R]  each query's judged relevances sorted descending, 0-padded
    num_relevant Int[Q]       judged documents with relevance >= 1

    nDCG@k   Σ_{i<k} gain_i / log2(i+2) ÷ the same sum over ideal_gain (linear gain, trec_eval)
    MAP@k    Σ_{i<k, relevant i} precision@(i+1)  ÷  num_relevant   (trec_eval map_cut)
    recall@k relevant in the top k ÷ num_relevant
    MRR@k    1 / rank of the first relevant document, 0 when none is in the top k
A query with no relevant document scores 0 on every metric (trec_eval's convention).
"""

from __future__ import annotations

import numpy as np

K_VALUES = (1, 3, 5, 10, 100, 1000)


def top_k_ranking(scores: np.ndarray, k: int, tie_break: np.ndarray) -> np.ndarray:
  """scores Float[Q, D], tie_break Int[D] → Int[Q, min(k, D)] document indices, best first.

  Higher score first; among equal scores, higher `tie_break` first.
  """
  num_docs = scores.shape[1]
  k = min(k, num_docs)
  out = np.empty((scores.shape[0], k), np.int64)
  for row, s in enumerate(scores):
    if k < num_docs:
      kth_best = -np.partition(-s, k - 1)[k - 1]
      candidates = np.flatnonzero(s >= kth_best)  # every document tied with the k-th stays in
    else:
      candidates = np.arange(num_docs)
    order = np.lexsort((-tie_break[candidates], -s[candidates]))
    out[row] = candidates[order[:k]]
  return out


def descending_id_tie_break(doc_ids: list[str]) -> np.ndarray:
  """Int[D]: rank of each id in ascending string order, so ties go to the larger id (trec_eval)."""
  order = sorted(range(len(doc_ids)), key=doc_ids.__getitem__)
  rank = np.empty(len(doc_ids), np.int64)
  rank[order] = np.arange(len(doc_ids))
  return rank


def _discounts(n: int) -> np.ndarray:
  return 1.0 / np.log2(np.arange(n) + 2.0)


def ndcg_at_k(ranked_gain: np.ndarray, ideal_gain: np.ndarray, k: int) -> np.ndarray:
  """Float[Q]: nDCG@k with linear gains; 0 where the query has no positive gain."""
  ranked = np.maximum(ranked_gain[:, :k], 0.0)
  ideal = np.maximum(ideal_gain[:, :k], 0.0)
  dcg = ranked @ _discounts(ranked.shape[1])
  idcg = ideal @ _discounts(ideal.shape[1])
  return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def average_precision_at_k(ranked_relevant: np.ndarray, num_relevant: np.ndarray,
                           k: int) -> np.ndarray:
  """Float[Q]: AP over the top k, normalised by all relevant documents (trec_eval map_cut)."""
  rel = ranked_relevant[:, :k].astype(np.float64)
  precision = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
  total = np.sum(precision * rel, axis=1)
  return np.divide(total, num_relevant, out=np.zeros_like(total), where=num_relevant > 0)


def recall_at_k(ranked_relevant: np.ndarray, num_relevant: np.ndarray, k: int) -> np.ndarray:
  """Float[Q]: fraction of the relevant documents found in the top k."""
  hits = np.sum(ranked_relevant[:, :k], axis=1).astype(np.float64)
  return np.divide(hits, num_relevant, out=np.zeros_like(hits), where=num_relevant > 0)


def reciprocal_rank_at_k(ranked_relevant: np.ndarray, k: int) -> np.ndarray:
  """Float[Q]: 1 / (rank of the first relevant document) if it is in the top k, else 0."""
  rel = ranked_relevant[:, :k]
  first = np.argmax(rel, axis=1)
  found = np.any(rel, axis=1)
  return np.where(found, 1.0 / (first + 1.0), 0.0)


def ranking_metrics(ranked_gain: np.ndarray, ideal_gain: np.ndarray,
                    k_values: tuple[int, ...] = K_VALUES) -> dict[str, float]:
  """Mean over queries of nDCG, MAP, recall and MRR at each k (names as MTEB: ndcg_at_10 …).

  k values above the ranked list's length are evaluated on the whole list, as
  trec_eval does when a run is shorter than the cutoff.
  """
  ranked_relevant = ranked_gain >= 1
  num_relevant = np.sum(ideal_gain >= 1, axis=1)
  out = {}
  for k in k_values:
    out[f'ndcg_at_{k}'] = float(np.mean(ndcg_at_k(ranked_gain, ideal_gain, k)))
    out[f'map_at_{k}'] = float(np.mean(average_precision_at_k(ranked_relevant, num_relevant, k)))
    out[f'recall_at_{k}'] = float(np.mean(recall_at_k(ranked_relevant, num_relevant, k)))
    out[f'mrr_at_{k}'] = float(np.mean(reciprocal_rank_at_k(ranked_relevant, k)))
  return out


def gains_of_ranking(ranking: np.ndarray, doc_ids: list[str], query_ids: list[str],
                     qrels: dict[str, dict[str, int]]) -> tuple[np.ndarray, np.ndarray]:
  """Turn a ranking Int[Q, K] of document indices into (ranked_gain, ideal_gain) via qrels."""
  ranked_gain = np.zeros(ranking.shape, np.float64)
  most_judged = max(len(qrels.get(q, {})) for q in query_ids)
  ideal_gain = np.zeros((len(query_ids), max(most_judged, 1)), np.float64)
  for row, query_id in enumerate(query_ids):
    judged = qrels.get(query_id, {})
    ranked_gain[row] = [judged.get(doc_ids[d], 0) for d in ranking[row]]
    gains = sorted(judged.values(), reverse=True)
    ideal_gain[row, :len(gains)] = gains
  return ranked_gain, ideal_gain
