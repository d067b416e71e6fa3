"""Exact (or approximate) top-k inner-product search, the corpus sharded on the mesh.

    corpus C  F32[N, D]  rows split over the data-parallel axes (padded to a multiple)
    queries Q F32[M, D]  replicated
    scores = Q Cᵀ, padding rows at -inf ─ jax.lax.top_k (exact) or
    jax.lax.approx_max_k (the TPU's partial reduction; recall_target) ─ (scores, ids)

One jit per (M, N, k) shape; mine.py calls it once per window of queries.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gemini_embed import sharding


class CorpusIndex:

  def __init__(self, corpus: np.ndarray, mesh, rules, *, approx: bool = False,
               recall_target: float = 0.95):
    n = corpus.shape[0]
    shards = sharding.data_parallel_size(mesh, rules)
    padded = -(-max(n, 1) // shards) * shards
    c = np.zeros((padded, corpus.shape[1]), np.float32)
    c[:n] = corpus
    valid = np.arange(padded) < n
    put = lambda x: jax.device_put(x, sharding.batch_sharding(mesh, rules, x.ndim))
    self.size = n
    self._corpus, self._valid = put(c), put(valid)
    self._search = jax.jit(functools.partial(_top_k, approx=approx,
                                             recall_target=recall_target),
                           static_argnames='k')

  def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores F32[M, k'], corpus ids I32[M, k']) best first, k' = min(k, corpus size)."""
    k = min(k, self.size)
    if k == 0:
      return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int32)
    scores, ids = self._search(jnp.asarray(queries, jnp.float32), self._corpus, self._valid,
                               k=k)
    return np.asarray(scores), np.asarray(ids)


def _top_k(queries, corpus, valid, *, k, approx, recall_target):
  scores = jnp.einsum('md,nd->mn', queries, corpus, preferred_element_type=jnp.float32)
  scores = jnp.where(valid[None, :], scores, -jnp.inf)
  if approx:
    return jax.lax.approx_max_k(scores, k, recall_target=recall_target)
  return jax.lax.top_k(scores, k)
