"""One runner per task type: encode once, score at every MRL dim.

    run(task, system, dims, task_string) -> {dim: DimScores(metrics={metric: value}, items)}

`system` is an encoder callback (see embeddings.py), scored at each dim of `dims`
(capped at the encoder's width; None = full width), or a lexical `Bm25Okapi`, scored once
under the key None. Encoders see `kind='query'` for queries and for both sides of
symmetric tasks (classification, clustering, pair classification, STS, bitext), and
`kind='document'` for retrieval/reranking documents, as only queries carry the task prompt.

Protocols follow MTEB: retrieval ranks the top 1000 documents by cosine; reranking
scores each query's candidates only; classification trains scikit-learn's
LogisticRegression(max_iter=100) on `samples_per_label` examples per label drawn
`n_experiments` times (MTEB's undersampling, seed 42) and averages; clustering runs
MiniBatchKMeans(k = number of labels, batch_size=500, n_init='auto', seed 42).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from gemini_embed.eval import metrics
from gemini_embed.eval.bm25 import Bm25Okapi
from gemini_embed.eval.bootstrap import ItemScores, mean_of
from gemini_embed.eval.embeddings import EncodeFn, encode_texts, mrl_view, resolve_dims
from gemini_embed.eval.ranking_metrics import (average_precision_at_k, descending_id_tie_break,
                                               gains_of_ranking, ndcg_at_k, ranking_metrics,
                                               top_k_ranking)
from gemini_embed.eval.suite import (BitextTask, ClassificationTask, ClusteringTask,
                                     PairClassificationTask, RerankingTask, RetrievalTask, StsTask,
                                     Task, task_id)

System = EncodeFn | Bm25Okapi


@dataclasses.dataclass(frozen=True)
class DimScores:
  """One system at one dim on one task: its metrics, and the per-item data of the main
  metric (bootstrap.py resamples them)."""
  metrics: dict[str, float]
  items: ItemScores


Scores = dict[int | None, DimScores]

MAIN_METRIC = {
    'retrieval': 'ndcg_at_10',
    'reranking': 'map_at_1000',
    'classification': 'accuracy',
    'clustering': 'v_measure',
    'pair_classification': 'max_ap',
    'sts': 'cosine_spearman',
    'bitext': 'f1',
}
RETRIEVAL_DEPTH = 1000
QUERY_BLOCK = 256  # queries scored against the whole corpus at once
SEED = 42


def supports(system: System, task: Task) -> bool:
  return not isinstance(system, Bm25Okapi) or task.type in system.task_types


def _top_k_in_blocks(score_block: Callable[[slice], np.ndarray], num_queries: int, k: int,
                     tie_break: np.ndarray) -> np.ndarray:
  return np.concatenate([
      top_k_ranking(score_block(slice(s, s + QUERY_BLOCK)), k, tie_break)
      for s in range(0, num_queries, QUERY_BLOCK)])


def run_retrieval(task: RetrievalTask, system: System, dims: list[int] | None,
                  task_string: str) -> Scores:
  tie_break = descending_id_tie_break(task.corpus_ids)
  num_queries = len(task.query_ids)

  def metrics_of(score_block):
    ranking = _top_k_in_blocks(score_block, num_queries, RETRIEVAL_DEPTH, tie_break)
    ranked_gain, ideal_gain = gains_of_ranking(ranking, task.corpus_ids, task.query_ids,
                                               task.qrels)
    return DimScores(ranking_metrics(ranked_gain, ideal_gain),
                     mean_of(ndcg_at_k(ranked_gain, ideal_gain, 10)))

  if isinstance(system, Bm25Okapi):
    index = system.index(task.corpus_texts)
    return {None: metrics_of(lambda rows: index.score(task.query_texts[rows]))}
  name = task_id(task)
  queries = encode_texts(system, task.query_texts, 'query', task_string, f'{name} queries')
  docs = encode_texts(system, task.corpus_texts, 'document', task_string, f'{name} corpus')
  out = {}
  for dim in resolve_dims(dims, queries.shape[1]):
    q, d = mrl_view(queries, dim), mrl_view(docs, dim)
    out[dim] = metrics_of(lambda rows: q[rows] @ d.T)
  return out


def run_reranking(task: RerankingTask, system: System, dims: list[int] | None,
                  task_string: str) -> Scores:
  """Per query, rank its own candidates (positives then negatives); MAP over candidates.

  Instances without a positive or without a negative are skipped (nothing to rank).
  Tied scores rank later-listed candidates first, so ties never favour the positives.
  """
  instances = [x for x in task.instances if x.positives and x.negatives]
  if not instances:
    raise ValueError(f'{task_id(task)}: no instance has both a positive and a negative')
  candidates = [x.positives + x.negatives for x in instances]
  width = max(len(c) for c in candidates)
  ideal_gain = np.zeros((len(instances), width))
  for i, x in enumerate(instances):
    ideal_gain[i, :len(x.positives)] = 1.0

  def metrics_of(candidate_scores: list[np.ndarray]):
    ranked_gain = np.zeros((len(instances), width))
    for i, (scores, x) in enumerate(zip(candidate_scores, instances)):
      order = top_k_ranking(scores[None, :], len(scores), np.arange(len(scores)))[0]
      ranked_gain[i, :len(scores)] = order < len(x.positives)
    per_query_ap = average_precision_at_k(ranked_gain >= 1, np.sum(ideal_gain >= 1, axis=1), 1000)
    return DimScores(ranking_metrics(ranked_gain, ideal_gain, k_values=(1, 10, 1000)),
                     mean_of(per_query_ap))

  all_docs = list(dict.fromkeys(d for c in candidates for d in c))
  doc_row = {d: i for i, d in enumerate(all_docs)}
  rows = [np.array([doc_row[d] for d in c]) for c in candidates]
  queries = [x.query for x in instances]
  if isinstance(system, Bm25Okapi):
    index = system.index(all_docs)
    full = [index.score(queries[s:s + QUERY_BLOCK]) for s in range(0, len(queries), QUERY_BLOCK)]
    full = np.concatenate(full)
    return {None: metrics_of([full[i, r] for i, r in enumerate(rows)])}
  name = task_id(task)
  q_raw = encode_texts(system, queries, 'query', task_string, f'{name} queries')
  d_raw = encode_texts(system, all_docs, 'document', task_string, f'{name} candidates')
  out = {}
  for dim in resolve_dims(dims, q_raw.shape[1]):
    q, d = mrl_view(q_raw, dim), mrl_view(d_raw, dim)
    out[dim] = metrics_of([d[r] @ q[i] for i, r in enumerate(rows)])
  return out


def undersample_indices(labels: list[str], samples_per_label: int, n_experiments: int,
                        seed: int = SEED) -> list[list[int]]:
  """MTEB's training subsets: per experiment, shuffle the (already shuffled) index list
  with a fresh RandomState(seed) and keep the first `samples_per_label` of each label."""
  idxs = list(range(len(labels)))
  subsets = []
  for _ in range(n_experiments):
    np.random.RandomState(seed).shuffle(idxs)
    taken: dict[str, int] = {}
    chosen = []
    for i in idxs:
      if taken.get(labels[i], 0) < samples_per_label:
        taken[labels[i]] = taken.get(labels[i], 0) + 1
        chosen.append(i)
    subsets.append(chosen)
  return subsets


def run_classification(task: ClassificationTask, system: EncodeFn, dims: list[int] | None,
                       task_string: str, samples_per_label: int = 8,
                       n_experiments: int = 10) -> Scores:
  subsets = undersample_indices(task.train_labels, samples_per_label, n_experiments)
  used = sorted(set().union(*subsets))
  name = task_id(task)
  train_raw = encode_texts(system, [task.train_texts[i] for i in used], 'query', task_string,
                           f'{name} train')
  row_of = {i: r for r, i in enumerate(used)}
  test_raw = encode_texts(system, task.test_texts, 'query', task_string, f'{name} test')
  train_labels = np.asarray(task.train_labels)
  out = {}
  for dim in resolve_dims(dims, train_raw.shape[1]):
    train, test = mrl_view(train_raw, dim), mrl_view(test_raw, dim)
    accuracies, f1s, correct = [], [], np.zeros(len(task.test_labels))
    for subset in subsets:
      # One BLAS thread: a 45-class fit on a few hundred rows took 1.3 s instead of 0.08 s
      # with OpenBLAS's second thread waiting on a busy core.
      with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter('ignore', ConvergenceWarning)
        model = LogisticRegression(max_iter=100)
        model.fit(train[[row_of[i] for i in subset]], train_labels[subset])
      predicted = model.predict(test)
      correct += predicted == np.asarray(task.test_labels)
      accuracies.append(metrics.accuracy(task.test_labels, predicted))
      f1s.append(metrics.macro_f1(task.test_labels, predicted))
    out[dim] = DimScores(dict(accuracy=float(np.mean(accuracies)), f1=float(np.mean(f1s)),
                              accuracy_std=float(np.std(accuracies))),
                         mean_of(correct / len(subsets)))
  return out


def run_clustering(task: ClusteringTask, system: EncodeFn, dims: list[int] | None,
                   task_string: str) -> Scores:
  raw = encode_texts(system, task.texts, 'query', task_string, f'{task_id(task)} texts')
  label_codes = np.unique(np.asarray(task.labels), return_inverse=True)[1]
  out = {}
  for dim in resolve_dims(dims, raw.shape[1]):
    kmeans = MiniBatchKMeans(n_clusters=len(set(task.labels)), batch_size=500, n_init='auto',
                             random_state=SEED)
    assigned = kmeans.fit(mrl_view(raw, dim)).labels_
    out[dim] = DimScores(dict(v_measure=metrics.v_measure(task.labels, assigned)),
                         ItemScores('v_measure', {'labels': label_codes, 'clusters': assigned}))
  return out


def _encode_pairs(task, system, task_string):
  name = task_id(task)
  both = encode_texts(system, task.texts1 + task.texts2, 'query', task_string, f'{name} pairs')
  return both[:len(task.texts1)], both[len(task.texts1):]


def run_pair_classification(task: PairClassificationTask, system: EncodeFn, dims: list[int] | None,
                            task_string: str) -> Scores:
  """AP, best-threshold accuracy and F1 (with its precision and recall) for each similarity
  MTEB uses, and the max of each over similarities (as MTEB); main: max AP."""
  raw1, raw2 = _encode_pairs(task, system, task_string)
  out = {}
  for dim in resolve_dims(dims, raw1.shape[1]):
    a, b = mrl_view(raw1, dim), mrl_view(raw2, dim)
    similarities = {  # higher = more similar; distances are negated
        'cosine': np.sum(a * b, axis=1),
        'dot': np.sum(a * b, axis=1),  # = cosine once normalised; kept for MTEB parity
        'euclidean': -np.linalg.norm(a - b, axis=1),
        'manhattan': -np.sum(np.abs(a - b), axis=1),
    }
    scores = {}
    for name, sim in similarities.items():
      scores[f'{name}_ap'] = metrics.average_precision(task.labels, sim)
      scores[f'{name}_accuracy'] = metrics.best_threshold_accuracy(sim, task.labels)[0]
      best_f1 = metrics.best_threshold_f1(sim, task.labels)
      for metric in ('f1', 'precision', 'recall'):
        scores[f'{name}_{metric}'] = best_f1[metric]
    for metric in ('ap', 'accuracy', 'f1', 'precision', 'recall'):
      scores[f'max_{metric}'] = max(scores[f'{n}_{metric}'] for n in similarities)
    distinct = [similarities[n] for n in ('cosine', 'euclidean', 'manhattan')]  # dot = cosine
    out[dim] = DimScores(scores, ItemScores('max_ap', {
        'labels': task.labels, 'similarities': np.stack(distinct)}))
  return out


def run_sts(task: StsTask, system: EncodeFn, dims: list[int] | None, task_string: str) -> Scores:
  raw1, raw2 = _encode_pairs(task, system, task_string)
  out = {}
  for dim in resolve_dims(dims, raw1.shape[1]):
    a, b = mrl_view(raw1, dim), mrl_view(raw2, dim)
    cosine = np.sum(a * b, axis=1)
    out[dim] = DimScores(dict(
        cosine_spearman=metrics.spearman(cosine, task.scores),
        cosine_pearson=metrics.pearson(cosine, task.scores),
        manhattan_spearman=metrics.spearman(-np.sum(np.abs(a - b), axis=1), task.scores),
        euclidean_spearman=metrics.spearman(-np.linalg.norm(a - b, axis=1), task.scores)),
        ItemScores('spearman', {'similarity': cosine.astype(np.float64), 'gold': task.scores}))
  return out


def run_bitext(task: BitextTask, system: EncodeFn, dims: list[int] | None,
               task_string: str) -> Scores:
  """Each source's nearest target by cosine is its predicted translation."""
  name = task_id(task)
  src_raw = encode_texts(system, task.sources, 'query', task_string, f'{name} sources')
  tgt_raw = encode_texts(system, task.targets, 'query', task_string, f'{name} targets')
  out = {}
  for dim in resolve_dims(dims, src_raw.shape[1]):
    src, tgt = mrl_view(src_raw, dim), mrl_view(tgt_raw, dim)
    predicted = np.concatenate([np.argmax(src[s:s + QUERY_BLOCK] @ tgt.T, axis=1)
                                for s in range(0, len(src), QUERY_BLOCK)])
    out[dim] = DimScores(metrics.bitext_scores(predicted),
                         mean_of(metrics.bitext_source_f1(predicted)))
  return out


RUNNERS = {
    'retrieval': run_retrieval,
    'reranking': run_reranking,
    'classification': run_classification,
    'clustering': run_clustering,
    'pair_classification': run_pair_classification,
    'sts': run_sts,
    'bitext': run_bitext,
}
