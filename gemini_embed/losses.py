"""The contrastive objective: NCE with in-batch and hard negatives, duplicate
masking, under a Matryoshka (MRL) head: pure functions of embeddings
(`nce_loss`, `mrl_loss`), and the train step's entry `loss_and_grads`.

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
can be learned (see `loss_and_grads` and `config.loss.learn_temperature`).

The train step's entry is `loss_and_grads` (bottom of this file): it embeds a
`Batch` with the model, applies `mrl_loss` over the whole global batch, and
returns the parameter gradients, optionally by gradient caching
(grad_cache.py):

    loss, metrics, grads = loss_and_grads(model, batch, mrl_dims=config.mrl_dims,
                                          loss_config=config.loss,
                                          grad_cache_chunk=config.grad_cache_chunk)

Call it inside the step's one `jax.jit` with batch-sharded global arrays: the
loss is a function of global arrays, so every query's denominator covers the
positives of every device and host (GSPMD inserts the gathers).

Learnable τ (`config.loss.learn_temperature`): the differentiated module must
carry `log_temperature`, an `nnx.Param` scalar; τ = exp(log τ), and its
gradient comes back with the others (so it is optimised and checkpointed like
any parameter). E.g. a trainer-side wrapper:

    class WithTemperature(nnx.Module):
      def __init__(self, embedder, tau):
        self.embedder = embedder
        self.log_temperature = nnx.Param(jnp.log(jnp.float32(tau)))
      def __call__(self, tokens, valid):
        return self.embedder(tokens, valid)
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import Array

from gemini_embed import grad_cache
from gemini_embed.data.batch import Batch
from gemini_embed.models.embedder import l2_normalize


def duplicate_mask(query_id: Array, pos_id: Array) -> Array:
  """query_id Int[B], pos_id Int[B] → keep Bool[B, B].

  keep[i, j] is False when j ≠ i and example j repeats the query or the positive
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


def nce_loss(q: Array, p: Array, *, temperature, negatives: Array | None = None,
             has_neg: Array | None = None, query_id: Array | None = None,
             pos_id: Array | None = None, cross_negatives: bool = False,
             hardness_alpha: float = 0.0, row_chunk: int = 0) -> tuple[Array, dict[str, Array]]:
  """The paper's NCE loss on one embedding width.

  Args:
    q: F[B, D] query embeddings (any norm: cosine similarity is used).
    p: F[B, D] positive embeddings; row i is the target of query i.
    temperature: τ > 0, float or traced scalar; logits are cos / τ.
    negatives: F[B, K, D] hard negatives of each example, or None.
    has_neg: Bool[B, K], False where example i has no k-th negative (that term
      is dropped from the denominator). None = all present.
    query_id, pos_id: Int[B] duplicate ids (equal id ⇔ equal text); both None
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
    chunks = jax.tree.map(lambda x: grad_cache.split_chunks(x, b // row_chunk), xs)
    losses, hits = jax.lax.map(jax.checkpoint(lambda x: per_row(*x)), chunks)
  else:
    losses, hits = per_row(*xs)
  loss = jnp.mean(losses)
  return loss, {'loss': loss, 'acc': jnp.mean(hits.astype(jnp.float32))}


def mrl_loss(q: Array, p: Array, *, dims: Sequence[int], weights: Sequence[float] | None = None,
             **nce_kwargs) -> tuple[Array, dict[str, Array]]:
  """Matryoshka: `nce_loss` on each prefix q[:, :d] (re-normalised), weighted sum.

  Args:
    q, p: F[B, D]; negatives (in nce_kwargs) F[B, K, D]; D ≥ max(dims).
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


# ---- the train step's entry: embed, loss, gradients ----------------------------

def temperature_of(model: nnx.Module, loss_config) -> Any:
  """τ: exp(model.log_temperature) when learned, else config.loss.temperature."""
  if not loss_config.learn_temperature:
    return loss_config.temperature
  log_t = getattr(model, 'log_temperature', None)
  if not isinstance(log_t, nnx.Param):
    raise ValueError('config.loss.learn_temperature=True needs the model to carry '
                     '`log_temperature = nnx.Param(jnp.log(tau))` (see gemini_embed/losses.py)')
  return jnp.exp(log_t[...].astype(jnp.float32))


def doc_inputs(batch: Batch) -> tuple[jax.Array, jax.Array]:
  """Positives and hard negatives as one stream: Int[B·(1+K), Ld], Bool[B·(1+K), Ld].

  Row i·(1+K) is p_i+, rows i·(1+K)+1+k its negatives: stacking on axis 1 keeps
  each example's documents next to it, so a batch-sharded input stays local."""
  if batch.neg_tokens is None:
    return batch.pos_tokens, batch.pos_valid
  tokens = jnp.concatenate([batch.pos_tokens[:, None], batch.neg_tokens], axis=1)
  valid = jnp.concatenate([batch.pos_valid[:, None], batch.neg_valid], axis=1)
  return tokens.reshape(-1, tokens.shape[-1]), valid.reshape(-1, valid.shape[-1])


def batch_loss(q_emb: jax.Array, d_emb: jax.Array, batch: Batch, *, mrl_dims: Sequence[int],
               loss_config, temperature, row_chunk: int = 0
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """q_emb F32[B, D], d_emb F32[B·(1+K), D] (the `doc_inputs` order) → MRL NCE loss."""
  b, k = q_emb.shape[0], batch.num_negatives
  docs = d_emb.reshape(b, 1 + k, -1)
  mask = loss_config.mask_duplicates
  return mrl_loss(
      q_emb, docs[:, 0], dims=mrl_dims, weights=tuple(loss_config.mrl_weights) or None,
      temperature=temperature,
      negatives=docs[:, 1:] if k else None, has_neg=batch.has_neg if k else None,
      query_id=batch.query_id if mask else None, pos_id=batch.pos_id if mask else None,
      cross_negatives=loss_config.cross_negatives, hardness_alpha=loss_config.hardness_alpha,
      row_chunk=row_chunk)


def loss_and_grads(model: nnx.Module, batch: Batch, *, mrl_dims: Sequence[int], loss_config,
                   grad_cache_chunk: int = 0) -> tuple[jax.Array, dict[str, jax.Array], nnx.State]:
  """(loss, metrics, grads) of the MRL NCE loss on one global batch.

  Args:
    model: callable as model(tokens Int[N, L], valid Bool[N, L]) → F32[N, D]
      un-normalised embeddings (the `Embedder`), plus `log_temperature` when
      the temperature is learned. Deterministic (GradCache replays it).
    batch: a `Batch` of global arrays (B examples, K hard negatives each).
    mrl_dims: `config.mrl_dims`.
    loss_config: `config.loss` (temperature, learn_temperature, mask_duplicates,
      cross_negatives, hardness_alpha, mrl_weights).
    grad_cache_chunk: examples per chunk for gradient caching; 0, or ≥ B, is
      the plain full-batch backward. B must be a multiple of it. With caching
      the loss also runs over query rows in chunks of this size (nce_loss's
      row_chunk), so no [B, B] logits are kept either.

  Returns:
    loss F32[], metrics (losses.mrl_loss's plus 'temperature'), and grads: an
    nnx.State of the model's nnx.Param leaves (nnx.state(model, nnx.Param)'s
    structure), ready for `optimizer.update(model, grads)`.
  """
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  inputs = {'q': (batch.query_tokens, batch.query_valid), 'd': doc_inputs(batch)}

  def embed_fn(params, inputs):
    m = nnx.merge(graphdef, params, rest)
    return {name: m(tokens, valid) for name, (tokens, valid) in inputs.items()}

  b = batch.size
  caching = 0 < grad_cache_chunk < b

  def loss_fn(params, emb):
    tau = temperature_of(nnx.merge(graphdef, params, rest), loss_config)
    loss, metrics = batch_loss(emb['q'], emb['d'], batch, mrl_dims=mrl_dims,
                               loss_config=loss_config, temperature=tau,
                               row_chunk=grad_cache_chunk if caching else 0)
    return loss, {**metrics, 'temperature': jnp.asarray(tau, jnp.float32)}

  if caching:
    if b % grad_cache_chunk:
      raise ValueError(f'config.grad_cache_chunk={grad_cache_chunk}: must divide the batch size {b}')
    (loss, metrics), grads = grad_cache.value_and_grad(loss_fn, embed_fn, params, inputs,
                                                       num_chunks=b // grad_cache_chunk)
  else:
    (loss, metrics), grads = jax.value_and_grad(
        lambda p: loss_fn(p, embed_fn(p, inputs)), has_aux=True)(params)
  return loss, metrics, grads
