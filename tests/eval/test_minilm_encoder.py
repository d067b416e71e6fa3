"""all-MiniLM-L6-v2 from its offline wheel as an encoder, on the synthetic suite."""

import os

import numpy as np
import pytest

from gemini_embed.eval import evaluate_suite, minilm_model_dir, sentence_transformer_encoder
from gemini_embed.eval.suite_evaluation import main_scores
from tests.eval.synthetic_suite import write_suite

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def minilm():
  assert os.environ.get('HF_HUB_OFFLINE') == '1'  # conftest: nothing may come from a hub
  return sentence_transformer_encoder(minilm_model_dir())


def test_minilm_embeds_paraphrases_closer_than_unrelated_text(minilm):
  x = minilm(['The copper kettle is whistling.', 'A copper teakettle whistles.',
              'Quarterly invoices are due on Friday.'], 'query', 'sts')
  assert x.shape == (3, 384) and x.dtype == np.float32
  x = x / np.linalg.norm(x, axis=1, keepdims=True)
  assert x[0] @ x[1] > x[0] @ x[2] + 0.3


def test_minilm_runs_every_task_type_and_beats_chance(minilm, tmp_path):
  write_suite(tmp_path)
  results = evaluate_suite(tmp_path, {'MiniLM': minilm}, dims=[128, 3072])
  assert list(results['systems']) == ['MiniLM@128', 'MiniLM@384']
  scores = main_scores(results, 'MiniLM@384')
  # Item names are shared by queries and their documents: a real encoder finds them.
  assert scores['retrieval/shelves'] > 0.8
  assert scores['reranking/boxes'] > 0.6
  assert scores['bitext/mirror'] < scores['retrieval/shelves']  # reversed-word "translations"
  assert len(scores) == 7
