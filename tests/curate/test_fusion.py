"""The mining arithmetic against hand-computed values, and `mine` on a planted corpus
(embeddings and LLM scores injected) returning the documented rank."""

import json

import jax
import numpy as np
import pytest

from gemini_embed import sharding
from gemini_embed.curate import fusion
from gemini_embed.curate.mine import choose_negative, mine_file
from gemini_embed.curate.search import CorpusIndex


def test_expected_grade_by_hand():
  assert fusion.expected_grade([0.1, 0.2, 0.3, 0.4], [0, 1, 2, 3]) == pytest.approx(2.0, abs=1e-15)
  assert fusion.expected_grade([0.5, 0.5], [1, 5]) == pytest.approx(3.0, abs=1e-15)
  with pytest.raises(ValueError, match='2 probabilities for 3 grades'):
    fusion.expected_grade([0.5, 0.5], [1, 2, 3])


def test_rrf_by_hand():
  a = [0.9, 0.1, 0.5]        # ranks 1, 3, 2
  b = [-1.0, -0.5, -3.0]     # ranks 2, 1, 3
  order, fused = fusion.fused_order([a, b], k=60)
  want = [1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62 + 1 / 63]
  np.testing.assert_allclose(fused, want, rtol=0, atol=1e-17)
  assert order.tolist() == [0, 1, 2]
  # k = 0: the sum of 1/rank (ranks 1,2,3 and 3,1,2).
  order, fused = fusion.fused_order([[3, 2, 1], [1, 3, 2]], k=0)
  np.testing.assert_allclose(fused, [1 + 1 / 3, 1 / 2 + 1, 1 / 3 + 1 / 2], atol=1e-17)
  assert order.tolist() == [1, 0, 2]
  assert fusion.ranks([2.0, 2.0, 5.0]).tolist() == [2, 3, 1]   # equal scores: input order
  assert fusion.pick([4, 2, 7], 2) == (2, 2) and fusion.pick([4, 2, 7], 9) == (7, 3)
  with pytest.raises(ValueError, match='--rank=0'):
    fusion.pick([1], 0)


# The planted query's candidates in the embedder's order, with the LLM scores a good
# judge gives them: a near-duplicate of the positive, another relevant passage, two
# unrelated ones.
PLANTED = {  # text → (embedding direction weight, grade, query log-likelihood)
    'kettles boil water fast': (0.97, 2.9, -0.8),          # near-duplicate of the positive
    'a kettle heats water for tea': (0.93, 2.4, -1.2),      # relevant
    'bridges cross rivers': (0.60, 0.4, -4.0),               # unrelated
    'violins have four strings': (0.55, 0.1, -5.0),          # unrelated
}


def test_choose_negative_planted():
  texts = list(PLANTED)
  cos, grade, ql = zip(*PLANTED.values())
  for rank, want in ((4, 'violins have four strings'), (2, 'a kettle heats water for tea'),
                     (1, 'kettles boil water fast')):
    chosen, audit = choose_negative(cos, grade, ql, rrf_k=60, rank=rank)
    assert texts[chosen] == want
  assert [a['fused_rank'] for a in audit] == [1, 2, 3, 4]
  # The LLMs disagree on the middle two: the fused order ties them, first by the embedder.
  chosen, audit = choose_negative(cos, [2.9, 0.4, 2.4, 0.1], [-0.8, -1.2, -4.0, -5.0],
                                  rrf_k=60, rank=3)
  assert [a['fused_rank'] for a in audit] == [1, 2, 3, 4] and chosen == 2
  # A candidate the LLM could not score (None) ranks last on that list.
  _, audit = choose_negative(cos, [None, 2.4, 0.4, 0.1], ql, rrf_k=60, rank=4)
  assert audit[0]['fused_rank'] == 2


class _PlantedEncoder:
  """Texts → planted unit vectors: the query along e0, each candidate at its weight."""

  def __init__(self, table):
    self.table = table

  def __call__(self, texts, kind, task):
    return np.stack([self.table[t] for t in texts])


class _PlantedRun:

  def __init__(self, table):
    self.mesh = sharding.make_mesh({'data': 8}, jax.devices())
    self.rules = sharding.DEFAULT_RULES
    self._encoder = _PlantedEncoder(table)

  def encoder(self, **kwargs):
    return self._encoder


class _PlantedJudge:
  batch_size, tokens = 4, 0

  def graded(self, prompt, fills):
    return [PLANTED[f['passage']][1] for f in fills]

  def likelihood(self, prompt, fills, queries):
    return [PLANTED[f['passage']][2] for f in fills]


def _vec(weight):
  return np.asarray([weight, np.sqrt(1 - weight ** 2), 0, 0], np.float32)


def test_mine_planted_corpus(tmp_path):
  query, positive, other_positive = 'do kettles boil water', 'a kettle boils water', 'kettle'
  table = {t: _vec(w) for t, (w, _, _) in PLANTED.items()}
  table[query] = _vec(1.0)
  table[positive] = _vec(0.999)          # the nearest: excluded as the row's positive
  table[other_positive] = _vec(0.998)    # another row's positive of the same query text
  rows = [{'query': query, 'positive': positive, 'negative': 'structural'},
          {'query': query, 'positive': other_positive}]
  corpus = [positive, other_positive, positive] + list(PLANTED)   # an exact duplicate too
  (tmp_path / 'in.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  (tmp_path / 'c.jsonl').write_text(''.join(json.dumps({'text': t}) + '\n' for t in corpus))
  out = tmp_path / 'mined.jsonl'
  assert mine_file(_PlantedJudge(), _PlantedRun(table), str(tmp_path / 'in.jsonl'),
                   str(tmp_path / 'c.jsonl'), str(out), k=4, rrf_k=60)
  got = [json.loads(line) for line in out.read_text().splitlines()]
  assert [r['negative'] for r in got] == ['violins have four strings'] * 2
  assert got[0]['replaced_negative'] == 'structural'
  cands = got[0]['mining']['candidates']
  assert [c['text'] for c in cands] == list(PLANTED)     # no positive of the query text
  np.testing.assert_allclose([c['cosine'] for c in cands],
                             [w for w, _, _ in PLANTED.values()], atol=1e-6)
  summary = json.loads((tmp_path / 'mined.summary.json').read_text())
  assert summary['kept'] == 2 and summary['rejected'] == 0
  assert (tmp_path / 'mined.scores.png').stat().st_size > 0


@pytest.mark.parametrize('approx', [False, True])
def test_sharded_search_matches_numpy(approx):
  rng = np.random.default_rng(0)
  corpus = rng.normal(size=(37, 16)).astype(np.float32)     # not a multiple of 8 shards
  queries = rng.normal(size=(5, 16)).astype(np.float32)
  mesh = sharding.make_mesh({'data': 8}, jax.devices())
  scores, ids = CorpusIndex(corpus, mesh, sharding.DEFAULT_RULES, approx=approx).search(
      queries, 6)
  ref = queries.astype(np.float64) @ corpus.astype(np.float64).T
  want = np.argsort(-ref, axis=1)[:, :6]
  assert (ids == want).all()   # approx_max_k is exact on CPU (no TPU partial reduction)
  np.testing.assert_allclose(scores, np.take_along_axis(ref, want, 1), atol=1e-5)
