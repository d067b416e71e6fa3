"""BM25 Okapi against rank_bm25's BM25Okapi on the same tokens."""

import numpy as np
import pytest
from rank_bm25 import BM25Okapi as ReferenceBm25

from gemini_embed.eval.bm25 import Bm25Okapi, tokenize

DOCUMENTS = [
    'The copper kettle whistles on the stove.',
    'A paper kite drifted over the garden and the shed.',
    'The the the kettle, the kite, the lantern.',      # repeated terms, "the" everywhere
    'Brass compass; brass hinges; brass everything!',
    'Nothing here mentions any of those things.',
    'Lantern light in the attic.',
]
QUERIES = [
    'copper kettle',
    'the kite the kite',            # repeated query terms count twice
    'brass lantern in the attic',
    'zeppelin',                     # out of vocabulary
    'the',                          # in more than half the documents: negative idf → ε floor
]


@pytest.mark.parametrize('params', [{}, dict(k1=0.9, b=0.4, epsilon=0.5)])
def test_scores_match_rank_bm25(params):
  reference = ReferenceBm25([tokenize(d) for d in DOCUMENTS], **params)
  expected = np.stack([reference.get_scores(tokenize(q)) for q in QUERIES])
  ours = Bm25Okapi(**params).index(DOCUMENTS).score(QUERIES)
  np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
  assert np.any(expected[-1] != 0), 'the ε-floor case must be exercised'


def test_tokenize_lowercases_and_splits_on_word_characters():
  assert tokenize("Brass, brass-hinges; it's ÉTÉ") == ['brass', 'brass', 'hinges', 'it', 's', 'été']
