"""The contrastive objective: NCE with in-batch and hard negatives, duplicate
masking, under a Matryoshka (MRL) head: pure functions of embeddings
(`duplicate_mask`, `nce_loss`, `mrl_loss`).

For a batch of B examples (q_i, p_i+, optional p_i−) and s(x, y) = cos(x, y) / τ
(Gemini Embedding, arXiv 2503.07891):

    L = 1/B · Σ_i −log  e^{s(q_i, p_i+)} / ( e^{s(q_i, p_i−)} + Σ_j mask(i, j) e^{s(q_i, p_j+)} )

Row i of the logits the loss builds (its softmax denominator):

    columns  ┌──── positives of every example (B) ────┐┌ own hard negatives (K) ┐
    row i    │ p_1+  …  p_i+ (target)  …  p_B+        ││ p_i,1−  …  p_i,K−      │
    kept     │ mask(i, j): j = i, or q_j ≠ q_i        ││ has_neg[i, k]          │
             │             and p_j+ ≠ p_i+            ││                        │

    duplicate mask for query_id = (7, 7, 3), pos_id = (1, 2, 1):   ■ kept  · dropped
        j=  0 1 2
    i=0    ■ · ·     (1 shares the query, 2 shares the positive)
    i=1    · ■ ■
    i=2    · ■ ■

Options, each off by default (the paper's formula is the default):
  * K > 1 hard negatives per query: `negatives` F[B, K, D]; absent ones are
    masked by `has_neg` (the term is omitted from the denominator, not a zero
    logit). K = 1 is the paper; "a few help, too many hurt".
  * `cross_negatives`: every example's hard negatives join every query's
    denominator (what sentence-transformers' MultipleNegativesRankingLoss does);
    other examples' negatives are not duplicate-masked (the batch has no ids
    for negatives).
  * `hardness_alpha` (EmbeddingGemma, arXiv 2509.20354; α = 5 there): the own
    hard negative term is weighted by w_i = exp(α · sg(cos(q_i, p_i−))), i.e.
    its logit gains α·sg(cos). The similarity in the weight is the raw cosine
    (as in sentence-transformers' `hardness_mode='hard_negatives'`), not cos/τ.

Temperature: `temperature` may be a Python float or a traced scalar, so τ
can be learned (train_step.py reads it from the model's `log_temperature`).

The train step (train_step.py) embeds a `Batch` and calls `mrl_loss` on the
whole global batch inside its one `jax.jit`.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from gemini_embed.models.embedder import l2_normalize


def duplicate_mask(query_id: Int[Array, 'B'], pos_id: Int[Array, 'B']) -> Bool[Array, 'B B']:
  """keep[i, j] is False when j ≠ i and example j repeats the query or the positive
  of example i (a false negative); the diagonal (the target) is always kept."""
  return _keep_rows(jnp.arange(query_id.shape[0]), query_id, pos_id, query_id, pos_id)


def _keep_rows(rows, qid_rows, pid_rows, qid, pid):
  """Rows `rows` Int[r] of the duplicate mask: Bool[r, B]."""
  same = (qid_rows[:, None] == qid[None, :]) | (pid_rows[:, None] == pid[None, :])
  return ~same | (rows[:, None] == jnp.arange(qid.shape[0])[None, :])


def _row_losses(rows, q, qid_rows, pid_rows, own_neg, own_present, *, p, qid, pid, all_neg,
                all_present, k, temperature, hardness_alpha):
  """Per-row loss F32[r] and top-1 hit Bool[r] for the query rows `rows` Int[r].

  q F[r, D] (unit), p F[B, D] (unit); own_neg F[r, K, D] and own_present
  Bool[r, K] (own negatives only), or all_neg F[B·K, D] and all_present
  Bool[B·K] (cross negatives); ids None = no duplicate mask."""
  pos = q @ p.T / temperature                                   # F[r, B]
  is_target = rows[:, None] == jnp.arange(p.shape[0])[None, :]
  keep = (jnp.ones(pos.shape, bool) if qid is None
          else _keep_rows(rows, qid_rows, pid_rows, qid, pid))
  target = jnp.sum(jnp.where(is_target, pos, 0.0), axis=1)
  blocks = [(pos, keep)]
  if own_neg is not None:                                       # F[r, K]
    cos_n = jnp.einsum('rd,rkd->rk', q, own_neg)
    blocks.append((cos_n / temperature + hardness_alpha * jax.lax.stop_gradient(cos_n),
                   own_present))
  if all_neg is not None:                                       # F[r, B·K], column j·K + k
    cos_n = q @ all_neg.T
    own = rows[:, None] == (jnp.arange(all_neg.shape[0]) // k)[None, :]
    bonus = jnp.where(own, hardness_alpha * jax.lax.stop_gradient(cos_n), 0.0)
    blocks.append((cos_n / temperature + bonus, jnp.broadcast_to(all_present, cos_n.shape)))
  # log Σ over kept columns only (a dropped column contributes no term at all);
  # the max is over kept columns, the target among them, so the sum is ≥ 1.
  others = [jnp.max(jnp.where(keep & ~is_target, pos, -jnp.inf), axis=1)]
  others += [jnp.max(jnp.where(m, x, -jnp.inf), axis=1) for x, m in blocks[1:]]
  best_other = functools.reduce(jnp.maximum, others)
  shift = jax.lax.stop_gradient(jnp.maximum(target, best_other))
  total = sum(jnp.sum(jnp.exp(x - shift[:, None]), axis=1, where=m) for x, m in blocks)
  return shift + jnp.log(total) - target, target > best_other


def nce_loss(q: Float[Array, 'B D'], p: Float[Array, 'B D'], *, temperature,
             negatives: Float[Array, 'B K D'] | None = None,
             has_neg: Bool[Array, 'B K'] | None = None,
             query_id: Int[Array, 'B'] | None = None, pos_id: Int[Array, 'B'] | None = None,
             cross_negatives: bool = False, hardness_alpha: float = 0.0, row_chunk: int = 0
             ) -> tuple[Float[Array, ''], dict[str, Array]]:
  """The paper's NCE loss on one embedding width.

  Args:
    q: query embeddings (any norm: cosine similarity is used).
    p: positive embeddings; row i is the target of query i.
    temperature: τ > 0, float or traced scalar; logits are cos / τ.
    negatives: the K hard negatives of each example, or None.
    has_neg: False where example i has no k-th negative (that term
      is dropped from the denominator). None = all present.
    query_id, pos_id: duplicate ids (equal id ⇔ equal text); both None
      turns duplicate masking off.
    cross_negatives: add every example's hard negatives to every denominator.
    hardness_alpha: EmbeddingGemma's α (0 = off).
    row_chunk: 0 = all rows at once (the [B, B] logits live through the
      backward pass); r (dividing B) = r query rows at a time, each block's
      logits recomputed in the backward pass (jax.checkpoint), so memory is
      O(r·B) instead of O(B²). Same value and gradients.

  Returns:
    (loss F32[], metrics) with metrics 'loss' = 1/B Σ_i loss_i and 'acc'
    (in-batch top-1: the target beats every other kept column; a tie misses).
  """
  if (query_id is None) != (pos_id is None):
    raise ValueError('nce_loss: pass both query_id and pos_id, or neither (no duplicate mask)')
  q, p = l2_normalize(q), l2_normalize(p)
  b = q.shape[0]
  rows = jnp.arange(b)
  own_neg = own_present = all_neg = all_present = None
  k = 0
  if negatives is not None:
    k = negatives.shape[1]
    n = l2_normalize(negatives)                                 # F[B, K, D]
    present = jnp.ones((b, k), bool) if has_neg is None else has_neg.astype(bool)
    if cross_negatives:
      all_neg, all_present = n.reshape(b * k, -1), present.reshape(b * k)
    else:
      own_neg, own_present = n, present
  per_row = functools.partial(_row_losses, p=p, qid=query_id, pid=pos_id, all_neg=all_neg,
                              all_present=all_present, k=k, temperature=temperature,
                              hardness_alpha=hardness_alpha)
  xs = (rows, q, query_id, pos_id, own_neg, own_present)
  if 0 < row_chunk < b:
    if b % row_chunk:
      raise ValueError(f'nce_loss: row_chunk={row_chunk} must divide the batch size {b}')
    n = b // row_chunk  # chunk c = rows {j·n + c}: each device keeps its share of every chunk
    chunks = jax.tree.map(lambda x: jnp.swapaxes(x.reshape(row_chunk, n, *x.shape[1:]), 0, 1), xs)
    losses, hits = jax.lax.map(jax.checkpoint(lambda x: per_row(*x)), chunks)
  else:
    losses, hits = per_row(*xs)
  loss = jnp.mean(losses)
  return loss, {'loss': loss, 'acc': jnp.mean(hits.astype(jnp.float32))}


def mrl_loss(q: Float[Array, 'B D'], p: Float[Array, 'B D'], *, dims: Sequence[int],
             weights: Sequence[float] | None = None, **nce_kwargs
             ) -> tuple[Float[Array, ''], dict[str, Array]]:
  """Matryoshka: `nce_loss` on each prefix q[:, :d] (re-normalised), weighted sum.

  Args:
    q, p: embeddings; negatives (in nce_kwargs) [B, K, D]; D ≥ max(dims).
    dims: increasing prefix widths, e.g. (768, 1536, 3072).
    weights: one per dim (None = all 1, as the paper and sentence-transformers).
    **nce_kwargs: everything else `nce_loss` takes (temperature, ids, options).

  Returns:
    (Σ_d w_d · L_d, metrics) with 'loss' (the sum), 'loss/{d}', 'acc/{d}' per
    prefix and 'acc' at the largest prefix.
  """
  dims = tuple(int(d) for d in dims)
  weights = (1.0,) * len(dims) if weights is None or len(weights) == 0 else tuple(weights)
  if len(weights) != len(dims):
    raise ValueError(f'mrl_loss: {len(weights)} weights for {len(dims)} dims {dims}')
  negatives = nce_kwargs.pop('negatives', None)
  total, metrics = 0.0, {}
  for d, w in zip(dims, weights):
    neg_d = None if negatives is None else negatives[..., :d]
    loss_d, m = nce_loss(q[:, :d], p[:, :d], negatives=neg_d, **nce_kwargs)
    total = total + w * loss_d
    metrics[f'loss/{d}'], metrics[f'acc/{d}'] = m['loss'], m['acc']
  metrics['loss'] = total
  metrics['acc'] = metrics[f'acc/{dims[-1]}']
  return total, metrics
