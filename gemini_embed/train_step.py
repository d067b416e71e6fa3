"""The one train step: embed a global `Batch`, the MRL NCE loss over all of it,
gradients (optionally by gradient caching), one optimiser update.

    step, traces = jitted_train_step(graphdef, shardings, config)
    state, metrics, finite = step(state, batch)   # batch: global arrays, batch-sharded

The loss is a function of global arrays, so every query's denominator covers the
positives of every device and host (GSPMD inserts the gathers).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from gemini_embed import grad_cache, optim, sharding
from gemini_embed.data.batch import Batch, PackedBatch
from gemini_embed.losses import mrl_loss


def temperature_of(model: nnx.Module, loss_config) -> Any:
  """τ: exp(model.log_temperature) when learned, else config.loss.temperature."""
  if not loss_config.learn_temperature:
    return loss_config.temperature
  log_t = getattr(model, 'log_temperature', None)
  if not isinstance(log_t, nnx.Param):
    raise ValueError('config.loss.learn_temperature=True needs the model to carry '
                     '`log_temperature = nnx.Param(jnp.log(tau))` (Embedder(..., temperature=τ))')
  return jnp.exp(log_t[...].astype(jnp.float32))


def doc_inputs(batch: Batch) -> tuple[Int[Array, 'N Ld'], Bool[Array, 'N Ld']]:
  """Positives and hard negatives as one stream of N = B·(1+K) documents.

  Row i·(1+K) is p_i+, rows i·(1+K)+1+k its negatives: stacking on axis 1 keeps
  each example's documents next to it, so a batch-sharded input stays local."""
  if batch.neg_tokens is None:
    return batch.pos_tokens, batch.pos_valid
  tokens = jnp.concatenate([batch.pos_tokens[:, None], batch.neg_tokens], axis=1)
  valid = jnp.concatenate([batch.pos_valid[:, None], batch.neg_valid], axis=1)
  return tokens.reshape(-1, tokens.shape[-1]), valid.reshape(-1, valid.shape[-1])


def batch_loss(q_emb: Float[Array, 'B D'], d_emb: Float[Array, 'N D'],
               batch: Batch | PackedBatch, *,
               mrl_dims: Sequence[int], loss_config, temperature, row_chunk: int = 0
               ) -> tuple[Float[Array, ''], dict[str, Array]]:
  """The MRL NCE loss of a batch; d_emb in the `doc_inputs` order (N = B·(1+K))."""
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


def loss_and_grads(model: nnx.Module, batch: Batch | PackedBatch, *, mrl_dims: Sequence[int],
                   loss_config, grad_cache_chunk: int = 0, frozen: Sequence[str] = ()
                   ) -> tuple[Float[Array, ''], dict[str, Array], nnx.State]:
  """(loss, metrics, grads) of the MRL NCE loss on one global batch.

  Args:
    model: callable as model(tokens Int[N, L], valid Bool[N, L]) → F32[N, D]
      un-normalised embeddings (the `Embedder`), carrying `log_temperature`
      when the temperature is learned. Deterministic (GradCache replays it).
      A `PackedBatch` needs `model.embed_packed` (the `Embedder`'s).
    batch: a `Batch` of global arrays (B examples, K hard negatives each), or a
      `PackedBatch` of the same examples, embedded in one call and split by text
      number (queries 0..B-1, then the documents in the `doc_inputs` order); not
      with gradient caching.
    mrl_dims: `config.mrl_dims`.
    loss_config: `config.loss` (temperature, learn_temperature, mask_duplicates,
      cross_negatives, hardness_alpha, mrl_weights).
    grad_cache_chunk: examples per chunk for gradient caching; 0, or ≥ B, is
      the plain full-batch backward. B must be a multiple of it. With caching
      the loss also runs over query rows in chunks of this size (nce_loss's
      row_chunk), so no [B, B] logits are kept either.
    frozen: `config.optim.frozen`: regexes of parameter paths held behind
      stop_gradient (their grads are zeros, never computed).

  Returns:
    loss F32[], metrics (losses.mrl_loss's plus 'temperature'), and grads: an
    nnx.State of the model's nnx.Param leaves (nnx.state(model, nnx.Param)'s
    structure), ready for `optimizer.update(model, grads)`.
  """
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  b = batch.size
  caching = 0 < grad_cache_chunk < b
  if isinstance(batch, PackedBatch):
    if caching:
      raise ValueError(f'grad_cache_chunk={grad_cache_chunk}: gradient caching needs one '
                       'text per row; turn config.data.pack off')
    inputs = (batch.tokens, batch.segment_ids, batch.positions, batch.text_index)

    def embed_fn(params, inputs):
      params = optim.stop_frozen_gradients(params, frozen)
      texts = nnx.merge(graphdef, params, rest).embed_packed(*inputs, batch.num_texts)
      return {'q': texts[:b], 'd': texts[b:]}
  else:
    inputs = {'q': (batch.query_tokens, batch.query_valid), 'd': doc_inputs(batch)}

    def embed_fn(params, inputs):
      m = nnx.merge(graphdef, optim.stop_frozen_gradients(params, frozen), rest)
      return {name: m(tokens, valid) for name, (tokens, valid) in inputs.items()}

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


def jitted_train_step(graphdef, shardings, config):
  """The one train step: jit with explicit state shardings, donated state; the batch
  arrives as global arrays already sharded over the batch axes, and the residual
  stream stays split over them (sharding.activation_sharding on the state's mesh).

  Returns (step, traces): `traces` grows by one entry (the batch shapes) each time
  the step is traced, i.e. once per compiled shape bucket. The step returns
  (state, metrics, finite): `finite` is one bool, is every float in the updated state
  (parameters and optimiser moments) finite — what the loop checks before it saves
  (the loss and grad_norm in `metrics` are of the parameters before the update).
  """
  schedule = optim.learning_rate_schedule(config.optim, config.total_steps)
  traces = []
  mesh = jax.tree.leaves(shardings)[0].mesh

  def train_step(state, batch):
    traces.append(jax.tree.map(jnp.shape, batch))
    ts = nnx.merge(graphdef, state)
    with sharding.activation_sharding(mesh, config.sharding_rules):
      loss, metrics, grads = loss_and_grads(
          ts.model, batch, mrl_dims=tuple(config.mrl_dims), loss_config=config.loss,
          grad_cache_chunk=config.grad_cache_chunk, frozen=tuple(config.optim.frozen))
    ts.optimizer.update(ts.model, grads)
    metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads),
                   lr=schedule(ts.optimizer.step[...] - 1))
    new_state = nnx.state(ts)
    finite = jnp.all(jnp.stack([jnp.isfinite(x).all() for x in jax.tree.leaves(new_state)
                                if jnp.issubdtype(x.dtype, jnp.inexact)]))
    return new_state, metrics, finite

  step = jax.jit(train_step, in_shardings=(shardings, None),
                 out_shardings=(shardings, None, None), donate_argnums=0)
  return step, traces
