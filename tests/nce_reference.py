"""An independent NumPy float64 reference of the paper's NCE loss, written from
the formula with plain loops (docs/paper-notes.md), and random test inputs with
planted duplicates. Never imports the code under test."""

import numpy as np


def _unit(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def nce(q, p, tau, neg=None, has_neg=None, qid=None, pid=None, cross=False, alpha=0.0):
  """L = 1/B Σ_i −log e^{s_ii+} / (Σ_{k present} w_ik e^{s(q_i, p_ik−)} + Σ_j mask(i,j) e^{s(q_i, p_j+)}).

  Returns (loss, top-1 accuracy). cross: every example's present negatives join
  every row (unweighted unless their own); alpha: w_ik = exp(α·cos(q_i, p_ik−))."""
  q, p = _unit(q), _unit(p)
  n = None if neg is None else _unit(neg)
  b = len(q)
  total, correct = 0.0, 0
  for i in range(b):
    target = q[i] @ p[i] / tau
    others = []
    for j in range(b):
      if j != i and qid is not None and (qid[j] == qid[i] or pid[j] == pid[i]):
        continue  # a duplicate of the query or the positive: not a negative
      if j != i:
        others.append(q[i] @ p[j] / tau)
    if n is not None:
      for j in (range(b) if cross else [i]):
        for k in range(n.shape[1]):
          if has_neg is not None and not has_neg[j][k]:
            continue  # no such negative: no term at all
          c = q[i] @ n[j, k]
          others.append(c / tau + (alpha * c if j == i else 0.0))
    terms = np.array([target] + others)
    m = terms.max()
    log_denom = m + np.log(np.sum(np.exp(terms - m)))
    total += log_denom - target
    correct += int(not others or target > max(others))
  return total / b, correct / b


def mrl(q, p, dims, weights=None, neg=None, **kw):
  """Σ_d w_d · nce(prefix d); returns (total, {d: (loss_d, acc_d)})."""
  weights = weights or [1.0] * len(dims)
  per = {d: nce(q[:, :d], p[:, :d], neg=None if neg is None else neg[..., :d], **kw)
         for d in dims}
  return sum(w * per[d][0] for d, w in zip(dims, weights)), per


def random_inputs(seed, b=12, d=48, k=0, noise=0.6):
  """Embeddings where q_i ≈ p_i (so the loss is informative), with planted
  duplicates: examples 1, 4 share a query (and its embedding); 2, 7, 9 share a
  positive (and its embedding); 5 and 6 share both. Returns a dict."""
  rng = np.random.default_rng(seed)
  p = rng.normal(size=(b, d))
  qid, pid = np.arange(b) + 100, np.arange(b) + 500
  for group in ((2, 7, 9), (5, 6)):
    p[list(group)] = p[group[0]]
    pid[list(group)] = pid[group[0]]
  q = p + noise * rng.normal(size=(b, d))
  for group in ((1, 4), (5, 6)):
    q[list(group)] = q[group[0]]
    qid[list(group)] = qid[group[0]]
  out = dict(q=q.astype(np.float32), p=p.astype(np.float32),
             qid=qid.astype(np.int32), pid=pid.astype(np.int32))
  if k:
    out['neg'] = (p[:, None] + 1.2 * rng.normal(size=(b, k, d))).astype(np.float32)
    has = rng.random((b, k)) < 0.6
    has[0] = True
    has[3] = False
    out['has_neg'] = has
  return out


def tiny_config():
  """configs/prefinetune.py in its tiny mode (what the tests run)."""
  import os
  from gemini_embed.configlib import load_config_file
  path = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'configs', 'prefinetune.py')
  return load_config_file(path, 'tiny')


def random_batch(seed, b, vocab, lq=10, ld=12, k=0):
  """A `Batch` of random token ids with ragged padding and planted duplicate ids
  (examples 1, 4 share a query; 2, 7 share a positive) and some absent negatives."""
  from gemini_embed.data.batch import Batch
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


FAST_COMPILE = {'xla_backend_optimization_level': 0}  # halves compile time; same HLO


def jitted_loss_and_grads(loss_config, chunk, mrl_dims):
  """The train step's loss_and_grads under one jit, as train.py calls it."""
  import functools

  import jax
  from flax import nnx

  from gemini_embed.train_step import loss_and_grads

  @functools.partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
  def step(graphdef, state, batch):
    return loss_and_grads(nnx.merge(graphdef, state), batch, mrl_dims=mrl_dims,
                          loss_config=loss_config, grad_cache_chunk=chunk)
  return lambda model, batch: step(*nnx.split(model), batch)
