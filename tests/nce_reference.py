"""An independent NumPy float64 reference of the paper's NCE loss and its exact
gradients, written from the formula with plain loops (docs/paper-notes.md), and
random test inputs with planted duplicates. Imports NumPy only, never the code
under test (the fixtures that do are in tests/loss_fixtures.py)."""

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


def nce_and_grads(q, p, tau, neg=None, has_neg=None, qid=None, pid=None, cross=False,
                  alpha=0.0):
  """`nce`'s loss and its gradients by hand: (loss, dL/dq, dL/dp, dL/dneg, dL/d log τ).

  Row i's loss is logsumexp(z) − z_target over its kept logits z; dL_i/dz =
  softmax(z) − [target]. A logit cos(u, w)/τ sends (dL/dz)·w/τ to u and
  (dL/dz)·u/τ to w (u, w unit vectors) and −(dL/dz)·cos/τ to log τ; the
  hardness term α·cos has no gradient (a stop-gradient weight). The unit
  vectors' gradients go back through x/|x|: dL/dx = (g − u (u·g)) / |x|."""
  q, p = np.asarray(q, np.float64), np.asarray(p, np.float64)
  u, v = _unit(q), _unit(p)
  n = None if neg is None else _unit(neg)
  b = len(q)
  du, dv = np.zeros_like(u), np.zeros_like(v)
  dn = None if n is None else np.zeros_like(n)
  total, dlog_tau = 0.0, 0.0
  for i in range(b):
    # (cosine, hardness bonus, the unit vector paired with u_i, its gradient row)
    terms = [(u[i] @ v[i], 0.0, v[i], dv[i])]  # the target first
    for j in range(b):
      if j != i and not (qid is not None and (qid[j] == qid[i] or pid[j] == pid[i])):
        terms.append((u[i] @ v[j], 0.0, v[j], dv[j]))
    if n is not None:
      for j in (range(b) if cross else [i]):
        for k in range(n.shape[1]):
          if has_neg is None or has_neg[j][k]:
            c = u[i] @ n[j, k]
            terms.append((c, alpha * c if j == i else 0.0, n[j, k], dn[j, k]))
    z = np.array([c / tau + bonus for c, bonus, _, _ in terms])
    m = z.max()
    total += m + np.log(np.sum(np.exp(z - m))) - z[0]
    dz = np.exp(z - m) / np.sum(np.exp(z - m))
    dz[0] -= 1.0
    for g, (c, _, w, dw) in zip(dz, terms):
      du[i] += g * w / tau
      dw += g * u[i] / tau  # a view into dv or dn: accumulates in place
      dlog_tau -= g * c / tau

  def through_norm(x, unit, g):
    return (g - unit * np.sum(unit * g, axis=-1, keepdims=True)) / np.linalg.norm(
        x, axis=-1, keepdims=True)

  dq, dp = through_norm(q, u, du) / b, through_norm(p, v, dv) / b
  dneg = None if n is None else through_norm(np.asarray(neg, np.float64), n, dn) / b
  return total / b, dq, dp, dneg, dlog_tau / b


def mrl_and_grads(q, p, dims, weights=None, neg=None, **kw):
  """`mrl`'s total and its gradients: (loss, dL/dq, dL/dp, dL/dneg, dL/d log τ).

  Each prefix's gradient lands in its first d columns, weighted by w_d."""
  weights = weights or [1.0] * len(dims)
  total, dlog_tau = 0.0, 0.0
  dq, dp = np.zeros(np.shape(q)), np.zeros(np.shape(p))
  dneg = None if neg is None else np.zeros(np.shape(neg))
  for d, w in zip(dims, weights):
    loss, gq, gp, gn, gt = nce_and_grads(q[:, :d], p[:, :d], neg=None if neg is None else
                                         neg[..., :d], **kw)
    total, dlog_tau = total + w * loss, dlog_tau + w * gt
    dq[:, :d] += w * gq
    dp[:, :d] += w * gp
    if neg is not None:
      dneg[..., :d] += w * gn
  return total, dq, dp, dneg, dlog_tau


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
