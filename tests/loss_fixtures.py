"""Fixtures for the tests of the loss and its gradients (test_losses, test_grad_cache,
test_global_negatives): the tiny experiment config, random token batches with planted
duplicates, and the train step's `loss_and_grads` under one jit. These use the
code under test; the independent reference is tests/nce_reference.py."""

import functools
import os

import jax
import numpy as np
from flax import nnx

from gemini_embed.configlib import load_config_file
from gemini_embed.data.batch import Batch
from gemini_embed.train_step import loss_and_grads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAST_COMPILE = {'xla_backend_optimization_level': 0}  # halves compile time; same HLO


def tiny_config():
  """configs/prefinetune.py in its tiny mode (what the tests run)."""
  return load_config_file(os.path.join(ROOT, 'configs', 'prefinetune.py'), 'tiny')


def random_batch(seed, b, vocab, lq=10, ld=12, k=0):
  """A `Batch` of random token ids with ragged padding and planted duplicate ids
  (examples 1, 4 share a query; 2, 7 share a positive) and some absent negatives."""
  rng = np.random.default_rng(seed)

  def tokens(*shape):
    valid = np.arange(shape[-1]) < rng.integers(3, shape[-1] + 1, shape[:-1] + (1,))
    return rng.integers(1, vocab, shape).astype(np.int32), valid

  qt, qv = tokens(b, lq)
  pt, pv = tokens(b, ld)
  qid, pid = np.arange(b, dtype=np.int32), np.arange(b, dtype=np.int32) + 1000
  qt[4], qv[4], qid[4] = qt[1], qv[1], qid[1]
  pt[7], pv[7], pid[7] = pt[2], pv[2], pid[2]
  fields = dict(query_tokens=qt, query_valid=qv, pos_tokens=pt, pos_valid=pv,
                query_id=qid, pos_id=pid)
  if k:
    nt, nv = tokens(b, k, ld)
    has = rng.random((b, k)) < 0.7
    has[0] = False
    fields.update(neg_tokens=nt, neg_valid=nv, has_neg=has)
  return Batch(**fields)


def jitted_loss_and_grads(loss_config, chunk, mrl_dims):
  """The train step's loss_and_grads under one jit, as train.py calls it."""

  @functools.partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
  def step(graphdef, state, batch):
    return loss_and_grads(nnx.merge(graphdef, state), batch, mrl_dims=mrl_dims,
                          loss_config=loss_config, grad_cache_chunk=chunk)
  return lambda model, batch: step(*nnx.split(model), batch)
