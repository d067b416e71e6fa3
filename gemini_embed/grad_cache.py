"""Gradient caching (GradCache, Gao et al. 2021, arXiv 2101.06983) for batches
whose activations do not fit, with the loss still over the whole batch.

    1. embed   chunk by chunk, no activations kept       → E  F[R, D] (all rows)
    2. loss    over the whole batch, grads w.r.t. E       → L, ∂L/∂E
    3. replay  each chunk again with a VJP of ∂L/∂E_chunk → Σ_chunks ∂L/∂θ

Both passes are `jax.lax.scan`s over chunks, so the compiled step holds one
chunk's activations at a time: its peak memory follows the chunk size, plus
the O(R·D) embeddings and O(B²) logits of the loss itself. It costs one extra
forward pass. The encoder must be deterministic (no dropout), since step 3
re-runs it and must see the same function as step 1.

Chunk k takes rows {j·n + k} (n chunks), not a contiguous block: a batch
sharded in contiguous blocks over the data axes then gives every device its
share of every chunk, so all devices work on each chunk with no resharding.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

PyTree = Any


def split_chunks(x: jax.Array, num_chunks: int) -> jax.Array:
  """[R, ...] → [n, R/n, ...], chunk k = rows {j·n + k} (strided, see above)."""
  rows = x.shape[0]
  if rows % num_chunks:
    raise ValueError(f'{rows} rows do not split into {num_chunks} equal chunks')
  return jnp.swapaxes(x.reshape(rows // num_chunks, num_chunks, *x.shape[1:]), 0, 1)


def merge_chunks(x: jax.Array) -> jax.Array:
  """[n, c, ...] → [n·c, ...]: the inverse of `split_chunks`."""
  return jnp.swapaxes(x, 0, 1).reshape(-1, *x.shape[2:])


def embed_without_activations(embed_fn: Callable[[PyTree, PyTree], PyTree], params: PyTree,
                              inputs: PyTree, num_chunks: int) -> PyTree:
  """Step 1: `embed_fn(params, chunk_inputs)` chunk by chunk under stop_gradient.

  inputs: a pytree of [R, ...] arrays (each leaf's R may differ, e.g. queries
  and query+negative documents, as long as each splits into num_chunks).
  Returns embed_fn's output pytree with the chunks merged back in row order."""
  chunks = jax.tree.map(lambda x: split_chunks(x, num_chunks), inputs)

  # params ride in the carry (unchanged) rather than being closed over: NNX
  # transforms inside embed_fn refuse variables from an outer trace level.
  def body(params, chunk):
    return params, jax.lax.stop_gradient(embed_fn(params, chunk))

  _, out = jax.lax.scan(body, params, chunks)
  return jax.tree.map(merge_chunks, out)


def backprop_chunks(embed_fn: Callable[[PyTree, PyTree], PyTree], params: PyTree,
                    inputs: PyTree, cotangents: PyTree, num_chunks: int) -> PyTree:
  """Step 3: Σ_k VJP of embed_fn at chunk k with ∂L/∂E_k; grads shaped like params.

  The sum is accumulated in float32 whatever the parameter dtype."""
  xs = jax.tree.map(lambda x: split_chunks(x, num_chunks), (inputs, cotangents))
  acc0 = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)

  def body(carry, chunk):
    params, acc = carry
    x, g = chunk
    _, vjp = jax.vjp(lambda p: embed_fn(p, x), params)
    (grads,) = vjp(g)
    return (params, jax.tree.map(lambda a, d: a + d.astype(jnp.float32), acc, grads)), None

  (_, acc), _ = jax.lax.scan(body, (params, acc0), xs)
  return jax.tree.map(lambda a, p: a.astype(p.dtype), acc, params)


def value_and_grad(loss_fn: Callable[[PyTree, PyTree], tuple[jax.Array, Any]],
                   embed_fn: Callable[[PyTree, PyTree], PyTree], params: PyTree,
                   inputs: PyTree, num_chunks: int) -> tuple[tuple[jax.Array, Any], PyTree]:
  """GradCache's ((loss, aux), ∂loss/∂params) for loss_fn(params, embed_fn(params, inputs)).

  Args:
    loss_fn: (params, embeddings) → (loss, aux). It may use params directly
      (e.g. a learnable temperature); those gradients are added.
    embed_fn: (params, inputs) → embeddings; row-wise (row r of the output
      depends on row r of the inputs only) and deterministic.
    params: the pytree to differentiate.
    inputs: pytree of [R, ...] arrays.
    num_chunks: how many chunks each input splits into.
  """
  embeddings = embed_without_activations(embed_fn, params, inputs, num_chunks)
  (loss, aux), (g_direct, g_emb) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
      params, embeddings)
  g_encoder = backprop_chunks(embed_fn, params, inputs, g_emb, num_chunks)
  return (loss, aux), jax.tree.map(jnp.add, g_direct, g_encoder)
