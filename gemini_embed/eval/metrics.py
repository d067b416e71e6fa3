"""The non-ranking metrics of MTEB as pure NumPy functions (definitions as MTEB computes them).

    average_precision        pair classification AP (scikit-learn's step-wise AP, ties grouped)
    best_threshold_accuracy  pair classification accuracy at the best threshold (MTEB's search)
    best_threshold_f1        pair classification F1 at the best threshold (MTEB's search)
    spearman / pearson       STS correlation of a similarity with the gold scores
    v_measure                clustering agreement with the labels (harmonic mean of
                             homogeneity and completeness)
    bitext_scores            bitext mining F1 of nearest-neighbour matching (sklearn's
                             weighted average over gold indices, as MTEB)
    accuracy / macro_f1      classification
"""

from __future__ import annotations

import numpy as np


def _descending(scores: np.ndarray) -> np.ndarray:
  return np.argsort(-np.asarray(scores, np.float64), kind='stable')


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
  """AP = Σ_n (R_n − R_{n−1}) P_n over the distinct score thresholds, high score = positive.

  Tied scores form one threshold (as sklearn.metrics.average_precision_score).
  NaN when there is no positive label.
  """
  labels = np.asarray(labels).astype(bool)
  scores = np.asarray(scores, np.float64)
  if not labels.any():
    return float('nan')
  order = _descending(scores)
  s, y = scores[order], labels[order]
  last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
  true_pos = np.cumsum(y)[last_of_tie]
  precision = true_pos / (last_of_tie + 1.0)
  recall = true_pos / true_pos[-1]
  return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _split_points(scores: np.ndarray, labels: np.ndarray):
  """Rows sorted by score (most similar first) and the positions i where a threshold
  can fall between row i and i+1 (scores differ; ties are never split)."""
  order = _descending(scores)
  s, y = scores[order], np.asarray(labels)[order].astype(bool)
  splits = np.flatnonzero(s[:-1] != s[1:])
  return s, y, splits


def best_threshold_accuracy(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
  """(accuracy, threshold): the best accuracy of "score > threshold ⇒ label 1".

  As MTEB: thresholds lie midway between consecutive distinct scores (never above
  the highest or below the lowest score); 0 accuracy when no split exists.
  """
  s, y, splits = _split_points(np.asarray(scores, np.float64), labels)
  if len(splits) == 0:
    return 0.0, -1.0
  pos_above = np.cumsum(y)[splits]
  neg_below = np.sum(~y) - np.cumsum(~y)[splits]
  acc = (pos_above + neg_below) / len(y)
  best = int(np.argmax(acc))
  return float(acc[best]), float((s[splits[best]] + s[splits[best] + 1]) / 2)


def best_threshold_f1(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """{f1, precision, recall, threshold} at the threshold with the best F1 (MTEB's search)."""
  s, y, splits = _split_points(np.asarray(scores, np.float64), labels)
  out = dict(f1=0.0, precision=0.0, recall=0.0, threshold=0.0)
  correct = np.cumsum(y)[splits].astype(np.float64)
  keep = correct > 0
  if not keep.any():
    return out
  splits, correct = splits[keep], correct[keep]
  precision = correct / (splits + 1.0)
  recall = correct / np.sum(y)
  f1 = 2 * precision * recall / (precision + recall)
  best = int(np.argmax(f1))
  return dict(f1=float(f1[best]), precision=float(precision[best]), recall=float(recall[best]),
              threshold=float((s[splits[best]] + s[splits[best] + 1]) / 2))


def average_ranks(x: np.ndarray) -> np.ndarray:
  """1-based ranks of x, ascending, ties given the mean of the ranks they span."""
  x = np.asarray(x, np.float64)
  order = np.argsort(x, kind='stable')
  sorted_x = x[order]
  starts = np.r_[0, np.flatnonzero(np.diff(sorted_x) != 0) + 1]
  ends = np.r_[starts[1:], len(x)]
  group_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 … ends
  ranks = np.empty(len(x))
  ranks[order] = np.repeat(group_rank, ends - starts)
  return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
  """Pearson's r; 0 (not scipy's NaN) when x or y is constant, so a degenerate encoder
  scores "no correlation" instead of making every mean undefined."""
  x = np.asarray(x, np.float64) - np.mean(x)
  y = np.asarray(y, np.float64) - np.mean(y)
  denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
  return float(np.sum(x * y) / denominator) if denominator > 0 else 0.0


def spearman(x: np.ndarray, y: np.ndarray) -> float:
  """Pearson correlation of the average ranks (scipy.stats.spearmanr's definition)."""
  return pearson(average_ranks(x), average_ranks(y))


def _entropy(counts: np.ndarray) -> float:
  p = counts[counts > 0] / np.sum(counts)
  return float(-np.sum(p * np.log(p)))


def v_measure(labels_true, labels_pred, beta: float = 1.0) -> float:
  """V-measure = (1+β)·h·c / (β·h + c), h = 1 − H(C|K)/H(C), c = 1 − H(K|C)/H(K).

  C: true classes, K: predicted clusters; h (c) is 1 when H(C) (H(K)) is 0.
  """
  _, classes = np.unique(np.asarray(labels_true), return_inverse=True)
  _, clusters = np.unique(np.asarray(labels_pred), return_inverse=True)
  n = len(classes)
  joint = np.zeros((classes.max() + 1, clusters.max() + 1))
  np.add.at(joint, (classes, clusters), 1)
  h_class, h_cluster = _entropy(joint.sum(1)), _entropy(joint.sum(0))
  nz = joint > 0
  p_joint = joint[nz] / n
  # H(C|K) = −Σ p(c,k) log(p(c,k)/p(k)); H(K|C) likewise with p(c).
  p_cluster = (joint.sum(0, keepdims=True) / n).repeat(joint.shape[0], 0)[nz]
  p_class = (joint.sum(1, keepdims=True) / n).repeat(joint.shape[1], 1)[nz]
  h_class_given_cluster = float(-np.sum(p_joint * np.log(p_joint / p_cluster)))
  h_cluster_given_class = float(-np.sum(p_joint * np.log(p_joint / p_class)))
  homogeneity = 1.0 if h_class == 0 else 1.0 - h_class_given_cluster / h_class
  completeness = 1.0 if h_cluster == 0 else 1.0 - h_cluster_given_class / h_cluster
  if homogeneity + completeness == 0:
    return 0.0
  return float((1 + beta) * homogeneity * completeness / (beta * homogeneity + completeness))


def bitext_scores(predicted: np.ndarray) -> dict[str, float]:
  """Nearest-neighbour bitext mining: source i's gold target is i; predicted[i] is its match.

  Each gold index is a class with support 1, so sklearn's "weighted" averages are
  plain means over i: precision_i = [pred_i = i] / #{j: pred_j = i}, recall_i = [pred_i = i],
  f1_i = 2 p r / (p + r) (0 when both are 0).
  """
  precision, hit, f1 = _bitext_per_source(predicted)
  return dict(f1=float(np.mean(f1)), precision=float(np.mean(precision)),
              recall=float(np.mean(hit)), accuracy=float(np.mean(hit)))


def _bitext_per_source(predicted: np.ndarray):
  predicted = np.asarray(predicted, np.int64)
  n = len(predicted)
  hit = (predicted == np.arange(n)).astype(np.float64)
  times_predicted = np.bincount(predicted, minlength=n)[:n]
  precision = np.divide(hit, times_predicted, out=np.zeros(n), where=times_predicted > 0)
  denominator = precision + hit
  f1 = np.divide(2 * precision * hit, denominator, out=np.zeros(n), where=denominator > 0)
  return precision, hit, f1


def bitext_source_f1(predicted: np.ndarray) -> np.ndarray:
  """Float[N]: f1_i of each source (their mean is bitext_scores' f1)."""
  return _bitext_per_source(predicted)[2]


def accuracy(y_true, y_pred) -> float:
  return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def macro_f1(y_true, y_pred) -> float:
  """Unweighted mean over the classes of y_true ∪ y_pred of per-class F1 (0 when undefined)."""
  y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
  f1s = []
  for c in np.union1d(y_true, y_pred):
    tp = np.sum((y_pred == c) & (y_true == c))
    denominator = np.sum(y_pred == c) + np.sum(y_true == c)
    f1s.append(2.0 * tp / denominator if denominator else 0.0)
  return float(np.mean(f1s))
