"""A tiny encoder small enough to differentiate by hand, for checking gradients
of the whole step (encoder + loss) against NumPy float64:

    e = tanh(x W1 + b1) W2,   x = mean over real tokens of one_hot(token)  F[V]

`numpy_embed` / `numpy_embed_vjp` are the float64 reference (no JAX);
`jax_embed` and `TinyEncoder` are the same function for the code under test."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

VOCAB, HIDDEN, DIM = 16, 12, 8


def init_params(seed: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  return {'w1': rng.normal(size=(VOCAB, HIDDEN)) * 2.0, 'b1': rng.normal(size=HIDDEN) * 0.3,
          'w2': rng.normal(size=(HIDDEN, DIM)) * HIDDEN ** -0.5}


def _pooled_one_hot(tokens, valid):
  x = np.eye(VOCAB)[np.asarray(tokens)] * np.asarray(valid, np.float64)[..., None]
  return x.sum(-2) / np.maximum(np.asarray(valid).sum(-1), 1)[..., None]


def numpy_embed(params, tokens, valid):
  """tokens Int[..., L], valid Bool[..., L] → F64[..., DIM]."""
  h = np.tanh(_pooled_one_hot(tokens, valid) @ params['w1'] + params['b1'])
  return h @ params['w2']


def numpy_embed_vjp(params, tokens, valid, d_emb):
  """The parameter gradients of Σ d_emb · numpy_embed(params, tokens, valid)."""
  x = _pooled_one_hot(tokens, valid).reshape(-1, VOCAB)
  h = np.tanh(x @ params['w1'] + params['b1'])
  g = np.asarray(d_emb, np.float64).reshape(-1, DIM)
  dz = (g @ params['w2'].T) * (1.0 - h * h)
  return {'w1': x.T @ dz, 'b1': dz.sum(0), 'w2': h.T @ g}


def jax_embed(params, tokens, valid):
  """numpy_embed in JAX (float32): tokens Int[N, L], valid Bool[N, L] → F32[N, DIM]."""
  w = valid.astype(jnp.float32)[..., None]
  x = jnp.sum(jax.nn.one_hot(tokens, VOCAB) * w, axis=-2) / jnp.maximum(jnp.sum(w, axis=-2), 1.0)
  return jnp.tanh(x @ params['w1'] + params['b1']) @ params['w2']


class TinyEncoder(nnx.Module):
  """`jax_embed` as a model for the train step's `loss_and_grads`."""

  def __init__(self, params):
    for name, value in params.items():
      setattr(self, name, nnx.Param(jnp.asarray(value, jnp.float32)))

  def __call__(self, tokens, valid):
    return jax_embed({n: getattr(self, n)[...] for n in ('w1', 'b1', 'w2')}, tokens, valid)
