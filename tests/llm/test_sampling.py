"""Sampling: top-k / top-p filters against a NumPy float64 reference; seeded sampling
reproduces, seeds differ, and a row's tokens do not depend on its batch neighbours."""

import jax
import numpy as np
import pytest

from gemini_embed import sharding
from gemini_embed.llm.decode import Generator
from gemini_embed.llm.model import load_llm
from gemini_embed.llm.sampling import Sampling, filter_logits
from tests.llm.tiny_llm import save_tiny_llm

RULES = sharding.DEFAULT_RULES


def numpy_kept(logits: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
  """Which tokens survive top-k then top-p, by the definitions, in float64, row by row."""
  kept = np.zeros(logits.shape, bool)
  for r, row in enumerate(logits.astype(np.float64)):
    allowed = np.ones(len(row), bool)
    if top_k:
      kth = sorted(row, reverse=True)[top_k - 1]
      allowed = row >= kth
    if top_p < 1:
      p = np.where(allowed, np.exp(row - row[allowed].max()), 0.0)
      p /= p.sum()
      mass, smallest = 0.0, None
      for i in sorted(np.flatnonzero(allowed), key=lambda i: -p[i]):
        if mass >= top_p:
          break
        mass += p[i]
        smallest = p[i]
      allowed &= p >= smallest
    kept[r] = allowed
  return kept


@pytest.mark.parametrize('top_k,top_p', [(1, 1.0), (5, 1.0), (0, 0.5), (0, 0.9), (7, 0.8),
                                         (50, 0.3)])
def test_filters_match_numpy(top_k, top_p):
  logits = np.random.default_rng(top_k * 10 + int(top_p * 10)).normal(0, 2, (6, 50))
  logits = logits.astype(np.float32)
  logits[0, :3] = logits[0, 3]   # ties at the k-th are all kept
  ours = np.asarray(filter_logits(logits, top_k, top_p, use_top_k=top_k > 0,
                                  use_top_p=top_p < 1))
  want = numpy_kept(logits, top_k, top_p)
  np.testing.assert_array_equal(np.isfinite(ours), want)
  np.testing.assert_array_equal(ours[want], logits[want])


def test_sampling_flags_are_checked():
  for bad in (dict(temperature=-1), dict(top_k=-2), dict(top_p=0), dict(top_p=1.5)):
    with pytest.raises(ValueError, match='--(temperature|top_k|top_p)'):
      Sampling(**bad)


@pytest.fixture(scope='module')
def gen(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp('tiny'))
  save_tiny_llm(directory, 'llama', seed=1)
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  llm = load_llm(directory, mesh, RULES)
  return Generator(llm, mesh, RULES, batch_size=4, chunk=8)


PROMPTS = [[10, 20, 30], [40, 50], [60, 70, 80, 90], [100], [5, 6, 7], [8, 9]]


def _sample(gen, prompts, rows, seed):
  out = gen.generate(prompts, rows, max_new_tokens=12,
                     params=Sampling(temperature=1.0, top_k=40, top_p=0.95, seed=seed))
  return [c.tokens for c in out]


def test_seeded_sampling_reproduces_and_seeds_differ(gen):
  a = _sample(gen, PROMPTS[:4], range(4), seed=1)
  assert _sample(gen, PROMPTS[:4], range(4), seed=1) == a
  assert _sample(gen, PROMPTS[:4], range(4), seed=2) != a
  greedy = gen.generate(PROMPTS[:4], range(4), max_new_tokens=12)
  assert [c.tokens for c in greedy] != a   # it does sample


def test_a_row_does_not_depend_on_its_neighbours(gen):
  alone = _sample(gen, [PROMPTS[0]], [7], seed=3)
  mixed = _sample(gen, [PROMPTS[4], PROMPTS[5], PROMPTS[0], PROMPTS[1]], [0, 1, 7, 9], seed=3)
  assert mixed[2] == alone[0]
  assert mixed[0] != alone[0]
