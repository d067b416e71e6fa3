"""BM25 Okapi, a lexical baseline for retrieval and reranking (SciPy sparse).

    score(q, d) = Σ_{t ∈ q} idf(t) · tf(t,d)·(k1+1) / (tf(t,d) + k1·(1 − b + b·|d|/avgdl))
    idf(t)      = ln((N − n_t + 0.5) / (n_t + 0.5)), and where that is negative
                  (a term in more than half the documents) ε · mean idf instead

This is rank_bm25's `BM25Okapi` (same constants k1=1.5, b=0.75, ε=0.25, same idf
floor, query terms counted with repetition); tests check the scores against it.
Text is lower-cased and split on \\w+ (Unicode word characters); no stemming.

Usage: `Bm25Okapi().index(documents).score(queries)` → Float[Q, D].
"""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp

_WORD = re.compile(r'\w+')


def tokenize(text: str) -> list[str]:
  return _WORD.findall(text.lower())


class Bm25Index:
  """Term weights of one document collection: weights[d, t] = BM25 contribution of term t."""

  def __init__(self, documents: list[str], k1: float, b: float, epsilon: float):
    self.vocabulary: dict[str, int] = {}
    rows, cols = [], []
    doc_len = np.zeros(len(documents))
    for d, text in enumerate(documents):
      tokens = tokenize(text)
      doc_len[d] = len(tokens)
      for token in tokens:
        rows.append(d)
        cols.append(self.vocabulary.setdefault(token, len(self.vocabulary)))
    num_docs, num_terms = len(documents), len(self.vocabulary)
    tf = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_docs, num_terms))
    tf.sum_duplicates()
    doc_freq = np.bincount(tf.indices, minlength=num_terms)
    idf = np.log(num_docs - doc_freq + 0.5) - np.log(doc_freq + 0.5)
    if num_terms:
      idf[idf < 0] = epsilon * np.mean(idf)
    avgdl = max(np.mean(doc_len), 1e-12) if num_docs else 1.0
    length_norm = k1 * (1 - b + b * doc_len / avgdl)            # per document
    per_entry_norm = np.repeat(length_norm, np.diff(tf.indptr))
    weights = tf.copy()
    weights.data = idf[tf.indices] * tf.data * (k1 + 1) / (tf.data + per_entry_norm)
    self.weights = weights.tocsc()  # [D, V]
    self.num_docs = num_docs

  def query_counts(self, queries: list[str]) -> sp.csr_matrix:
    """Sparse [Q, V] counts of each query's in-vocabulary tokens."""
    rows, cols = [], []
    for q, text in enumerate(queries):
      for token in tokenize(text):
        term = self.vocabulary.get(token)
        if term is not None:
          rows.append(q)
          cols.append(term)
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                           shape=(len(queries), len(self.vocabulary)))
    counts.sum_duplicates()
    return counts

  def score(self, queries: list[str]) -> np.ndarray:
    """Float64[Q, D] BM25 scores of every query against every indexed document."""
    return np.asarray((self.query_counts(queries) @ self.weights.T).todense())


class Bm25Okapi:
  """The BM25 baseline as a system of `evaluate_suite`: runs retrieval and reranking only."""

  task_types = ('retrieval', 'reranking')

  def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
    self.k1, self.b, self.epsilon = k1, b, epsilon

  def index(self, documents: list[str]) -> Bm25Index:
    return Bm25Index(documents, self.k1, self.b, self.epsilon)
