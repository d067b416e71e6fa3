"""NCE and MRL against independent references: the paper's formula in NumPy
float64 (tests/nce_reference.py) and sentence-transformers' torch losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from sentence_transformers.sentence_transformer.losses import (MatryoshkaLoss,
                                                               MultipleNegativesRankingLoss)

from gemini_embed.configlib import check_config
from gemini_embed.configlib.checks import ConfigError
from gemini_embed.losses import duplicate_mask, mrl_loss, nce_loss
from tests import nce_reference as ref
from tests.loss_fixtures import tiny_config

TAU = 0.05
TOL = 1e-5


def _rel(got, want):
  return abs(float(got) - float(want)) / max(abs(float(want)), 1e-12)


def _max_rel(got, want):
  return float(np.max(np.abs(np.asarray(got) - want)) / np.max(np.abs(want)))


@pytest.fixture(scope='module')
def nce_jit():
  return jax.jit(nce_loss, static_argnames=('cross_negatives', 'row_chunk'))


# ---- the paper's formula (NumPy float64) -------------------------------------

def test_duplicate_mask_matches_the_docstring_picture():
  keep = duplicate_mask(jnp.array([7, 7, 3]), jnp.array([1, 2, 1]))
  np.testing.assert_array_equal(np.asarray(keep), [[1, 0, 0], [0, 1, 1], [0, 1, 1]])


@pytest.mark.parametrize('seed,row_chunk', [(0, 0), (1, 0), (0, 4)])
def test_in_batch_only_with_planted_duplicates(nce_jit, seed, row_chunk):
  x = ref.random_inputs(seed)
  want, want_acc = ref.nce(x['q'], x['p'], TAU, qid=x['qid'], pid=x['pid'])
  unmasked, _ = ref.nce(x['q'], x['p'], TAU)
  assert abs(want - unmasked) > 1e-2  # the planted duplicates matter
  loss, m = nce_jit(x['q'], x['p'], temperature=TAU, query_id=x['qid'], pos_id=x['pid'],
                    row_chunk=row_chunk)
  print(f'no negatives, seed {seed}, row_chunk {row_chunk}: rel err {_rel(loss, want):.1e}')
  assert _rel(loss, want) < TOL
  assert float(m['acc']) == pytest.approx(want_acc)
  assert float(m['loss']) == float(loss)


@pytest.mark.parametrize('k,row_chunk', [(1, 0), (3, 0), (3, 6)])
def test_hard_negatives_absent_ones_omitted(nce_jit, k, row_chunk):
  x = ref.random_inputs(2, k=k)
  assert not x['has_neg'].all()
  want, want_acc = ref.nce(x['q'], x['p'], TAU, neg=x['neg'], has_neg=x['has_neg'],
                           qid=x['qid'], pid=x['pid'])
  loss, m = nce_jit(x['q'], x['p'], temperature=TAU, negatives=x['neg'], has_neg=x['has_neg'],
                    query_id=x['qid'], pos_id=x['pid'], row_chunk=row_chunk)
  print(f'K={k} hard negatives, row_chunk {row_chunk}: rel err {_rel(loss, want):.1e}')
  assert _rel(loss, want) < TOL
  assert float(m['acc']) == pytest.approx(want_acc)


@pytest.mark.parametrize('cross,alpha,row_chunk', [(True, 0.0, 0), (False, 5.0, 0), (True, 5.0, 0),
                                                   (True, 5.0, 3)])
def test_options_cross_negatives_and_hardness_weight(nce_jit, cross, alpha, row_chunk):
  x = ref.random_inputs(3, k=2)
  want, want_acc = ref.nce(x['q'], x['p'], TAU, neg=x['neg'], has_neg=x['has_neg'],
                           qid=x['qid'], pid=x['pid'], cross=cross, alpha=alpha)
  loss, m = nce_jit(x['q'], x['p'], temperature=TAU, negatives=x['neg'], has_neg=x['has_neg'],
                    query_id=x['qid'], pos_id=x['pid'], cross_negatives=cross,
                    hardness_alpha=alpha, row_chunk=row_chunk)
  assert _rel(loss, want) < TOL
  assert float(m['acc']) == pytest.approx(want_acc)


def test_learnable_temperature_traced_scalar_and_its_gradient():
  x = ref.random_inputs(4, k=1)
  kw = dict(negatives=x['neg'], has_neg=x['has_neg'], query_id=x['qid'], pos_id=x['pid'])

  def loss_of_log_tau(log_tau):
    return nce_loss(x['q'], x['p'], temperature=jnp.exp(log_tau), **kw)[0]

  log_tau = np.log(0.07)
  value, grad = jax.jit(jax.value_and_grad(loss_of_log_tau))(jnp.float32(log_tau))

  def f(lt):
    return ref.nce(x['q'], x['p'], np.exp(lt), neg=x['neg'], has_neg=x['has_neg'],
                   qid=x['qid'], pid=x['pid'])[0]

  h = 1e-5
  fd = (f(log_tau + h) - f(log_tau - h)) / (2 * h)
  print(f'd loss / d log tau: {float(grad):.6f} vs finite difference {fd:.6f}')
  assert _rel(value, f(log_tau)) < TOL
  assert _rel(grad, fd) < 1e-4


@pytest.mark.parametrize('cross,alpha,row_chunk', [(False, 0.0, 0), (False, 5.0, 4), (True, 5.0, 0)])
def test_gradients_with_duplicate_mask_match_the_float64_reference(cross, alpha, row_chunk):
  """dL/dq, dL/dp, dL/dneg with masking on (sentence-transformers has none) and
  absent negatives, against nce_reference.nce_and_grads."""
  x = ref.random_inputs(9, k=2)
  _, *want, _ = ref.nce_and_grads(x['q'], x['p'], TAU, neg=x['neg'], has_neg=x['has_neg'],
                                  qid=x['qid'], pid=x['pid'], cross=cross, alpha=alpha)

  def ours(q, p, n):
    return nce_loss(q, p, temperature=TAU, negatives=n, has_neg=x['has_neg'], query_id=x['qid'],
                    pos_id=x['pid'], cross_negatives=cross, hardness_alpha=alpha,
                    row_chunk=row_chunk)[0]

  got = jax.jit(jax.grad(ours, argnums=(0, 1, 2)))(x['q'], x['p'], x['neg'])
  errs = [_max_rel(g, w) for g, w in zip(got, want)]
  print(f'grads vs float64 cross={cross} alpha={alpha} row_chunk={row_chunk}: {errs}')
  assert max(errs) < TOL
  assert not np.any(np.asarray(got[2])[~x['has_neg']])  # absent negatives: no gradient


# ---- Matryoshka ----------------------------------------------------------------

def test_mrl_prefixes_weights_and_per_dim_metrics():
  x = ref.random_inputs(5, d=48, k=1)
  dims, weights = (12, 24, 48), (0.5, 1.0, 2.0)
  kw = dict(qid=x['qid'], pid=x['pid'], has_neg=x['has_neg'])
  want, per = ref.mrl(x['q'], x['p'], dims, list(weights), neg=x['neg'], tau=TAU, **kw)
  loss, m = jax.jit(lambda q, p, n: mrl_loss(
      q, p, dims=dims, weights=weights, temperature=TAU, negatives=n, has_neg=x['has_neg'],
      query_id=x['qid'], pos_id=x['pid']))(x['q'], x['p'], x['neg'])
  assert _rel(loss, want) < TOL
  for d in dims:
    assert _rel(m[f'loss/{d}'], per[d][0]) < TOL
    assert float(m[f'acc/{d}']) == pytest.approx(per[d][1])
  assert float(m['acc']) == pytest.approx(per[48][1])


# ---- sentence-transformers (torch), masking off ------------------------------------

class _GivenEmbeddings(torch.nn.Module):
  """Stands in for a SentenceTransformer: each input column is {'emb': tensor}
  and comes back as its sentence embedding (MatryoshkaLoss patches forward)."""

  def __init__(self, dim):
    super().__init__()
    self.dim = dim

  def forward(self, features):
    return {'sentence_embedding': features['emb']}

  def get_embedding_dimension(self):
    return self.dim


def _st_loss_and_grads(columns, make_loss):
  tensors = [torch.tensor(np.asarray(c, np.float64), requires_grad=True) for c in columns]
  model = _GivenEmbeddings(tensors[0].shape[-1])
  loss = make_loss(model)([{'emb': t} for t in tensors], None)
  loss.backward()
  return float(loss.detach()), [t.grad.numpy() for t in tensors]


@pytest.mark.parametrize('k,alpha,row_chunk', [(0, 0.0, 0), (1, 0.0, 0), (2, 0.0, 0), (1, 5.0, 0),
                                               (2, 5.0, 4)])
def test_matches_multiple_negatives_ranking_loss(k, alpha, row_chunk):
  """Loss and its gradients w.r.t. every embedding (row_chunk > 0: the
  rematerialised row blocks' backward)."""
  x = ref.random_inputs(6, k=max(k, 1))
  neg = x['neg'][:, :k]
  columns = [x['q'], x['p']] + [neg[:, i] for i in range(k)]
  st_kw = dict(hardness_mode='hard_negatives', hardness_strength=alpha) if alpha else {}
  want, want_grads = _st_loss_and_grads(
      columns, lambda m: MultipleNegativesRankingLoss(m, scale=1 / TAU, **st_kw))

  def ours(q, p, n):
    return nce_loss(q, p, temperature=TAU, negatives=n if k else None,
                    cross_negatives=True, hardness_alpha=alpha, row_chunk=row_chunk)[0]

  loss, grads = jax.jit(jax.value_and_grad(ours, argnums=(0, 1, 2)))(x['q'], x['p'], neg)
  errs = [_rel(loss, want), _max_rel(grads[0], want_grads[0]), _max_rel(grads[1], want_grads[1])]
  if k:
    errs.append(_max_rel(grads[2], np.stack(want_grads[2:], axis=1)))
  print(f'vs MNRL K={k} alpha={alpha} row_chunk={row_chunk}: loss rel err {errs[0]:.1e}, grads {max(errs[1:]):.1e}')
  assert max(errs) < TOL


@pytest.mark.parametrize('weights', [None, (1.0, 0.3, 2.0)])
def test_matches_matryoshka_loss(weights):
  x = ref.random_inputs(7, d=64, k=1)
  dims = (16, 32, 64)
  want, want_grads = _st_loss_and_grads(
      [x['q'], x['p'], x['neg'][:, 0]],
      lambda m: MatryoshkaLoss(m, MultipleNegativesRankingLoss(m, scale=1 / TAU), list(dims),
                               matryoshka_weights=None if weights is None else list(weights)))

  def ours(q, p, n):
    return mrl_loss(q, p, dims=dims, weights=weights, temperature=TAU, negatives=n,
                    cross_negatives=True)[0]

  loss, grads = jax.jit(jax.value_and_grad(ours, argnums=(0, 1, 2)))(
      x['q'], x['p'], x['neg'])
  errs = [_rel(loss, want), _max_rel(grads[0], want_grads[0]), _max_rel(grads[1], want_grads[1]),
          _max_rel(grads[2][:, 0], want_grads[2])]
  print(f'vs MatryoshkaLoss weights={weights}: loss rel err {errs[0]:.1e}, grads {max(errs[1:]):.1e}')
  assert max(errs) < TOL


# ---- config fields ---------------------------------------------------------------

@pytest.mark.parametrize('field,value,message', [
    ('loss.hardness_alpha', -1.0, r'config\.loss\.hardness_alpha'),
    ('loss.mrl_weights', (1.0, 2.0), r'config\.loss\.mrl_weights.*one weight per'),
    ('loss.mrl_weights', (0.0, 0.0, 0.0), r'config\.loss\.mrl_weights.*not all 0'),
    ('loss.cross_negatives', 1, r'config\.loss\.cross_negatives'),
    ('grad_cache_chunk', 5, r'config\.grad_cache_chunk=5.*divide'),
    ('grad_cache_chunk', 4, r'config\.grad_cache_chunk=4.*data-parallel size 8'),
    ('grad_cache_chunk', -1, r'config\.grad_cache_chunk'),
])
def test_bad_loss_config_fields_are_named(field, value, message):
  config = tiny_config()
  check_config(config, num_devices=8)
  *parents, leaf = field.split('.')
  node = config
  for name in parents:
    node = node[name]
  with node.ignore_type():
    node[leaf] = value
  with pytest.raises(ConfigError, match=message):
    check_config(config, num_devices=8)
