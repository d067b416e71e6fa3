"""The mteb adapter, run offline by mteb itself on local tasks built from the synthetic
suite; mteb's scores must equal our runners' on the same encoder: an independent
implementation of the same protocols (retrieval, classification, legacy clustering,
pair classification, STS, bitext mining)."""

import numpy as np
import pytest

mteb = pytest.importorskip('mteb', reason='mteb is an optional extra (the adapter needs it)')

from datasets import Dataset  # noqa: E402  (installed with mteb)

from gemini_embed.eval.mteb_adapter import MtebEncoder  # noqa: E402
from gemini_embed.eval.suite import load_suite  # noqa: E402
from gemini_embed.eval.task_runners import RUNNERS, undersample_indices  # noqa: E402
from tests.eval.mteb_tasks import local_tasks, task_metadata  # noqa: E402
from tests.eval.synthetic_suite import WIDTH, ShuffledEncoder, write_suite  # noqa: E402


# our task type → the metrics both report (same names in mteb and here)
SHARED_METRICS = {
    'sts': ['cosine_spearman', 'cosine_pearson'],
    'retrieval': ['ndcg_at_10', 'map_at_100', 'recall_at_5', 'mrr_at_10'],
    'classification': ['accuracy', 'f1'],
    'clustering': ['v_measure'],
    'pair_classification': ['max_ap', 'max_accuracy', 'max_f1', 'cosine_ap', 'manhattan_ap'],
    'bitext': ['f1', 'precision', 'recall', 'accuracy'],
}


@pytest.fixture(scope='module')
def suite(tmp_path_factory):
  root = tmp_path_factory.mktemp('suite')
  truth = write_suite(root)
  return load_suite(root), ShuffledEncoder(truth, seed=1)


def test_mteb_scores_equal_our_runners(suite):
  tasks, encoder = suite
  calls = []

  def recording(texts, kind, task):
    calls.append((kind, task))
    return encoder(texts, kind, task)

  local = local_tasks(tasks)
  model = MtebEncoder(recording, name='local/shuffled', embed_dim=WIDTH)
  result = mteb.evaluate(model, list(local.values()), cache=None, show_progress_bar=False)
  theirs = {r.task_name: r.scores['test'][0] for r in result.task_results}
  for task in tasks:
    if task.type not in local:
      continue
    ours = RUNNERS[task.type](task, encoder, None, task.type)[WIDTH].metrics
    for metric in SHARED_METRICS[task.type]:
      expected = theirs[local[task.type].metadata.name][metric]
      assert ours[metric] == pytest.approx(expected, abs=1e-5), (task.type, metric)
    main = ours[SHARED_METRICS[task.type][0]]
    assert main < 0.99, f'{task.type}: a perfect score would not test much'
  assert {('query', 'retrieval'), ('document', 'retrieval'), ('query', 'sts'),
          ('query', 'classification'), ('query', 'clustering'), ('query', 'pair_classification'),
          ('query', 'bitext')} == set(calls)


def test_undersampling_equals_mtebs(suite):
  tasks, _ = suite
  classification = next(t for t in tasks if t.type == 'classification')
  local = local_tasks(tasks)['classification']
  train = Dataset.from_dict({'text': classification.train_texts, 'label': classification.train_labels})
  idxs = None
  theirs = []
  for i in range(10):
    _, idxs, selected = local._undersample_data(train, i, idxs)
    theirs.append(selected)
  assert undersample_indices(classification.train_labels, 8, 10) == theirs


def test_mrl_dim_and_similarity():
  encode = lambda texts, kind, task: np.tile([[3.0, 4.0, 12.0]], (len(texts), 1))
  model = MtebEncoder(encode, name='local/constant', embed_dim=3, dim=2)
  assert model.mteb_model_meta.embed_dim == 2
  inputs = [{'text': ['a', 'b']}]
  meta = task_metadata('LocalSts', 'STS', 'cosine_spearman')
  out = model.encode(inputs, task_metadata=meta, hf_split='test', hf_subset='default')
  np.testing.assert_allclose(out, [[0.6, 0.8], [0.6, 0.8]], rtol=1e-6)
  np.testing.assert_allclose(model.similarity(out, 2 * out), np.ones((2, 2)), rtol=1e-6)
  np.testing.assert_allclose(model.similarity_pairwise(out, -out), [-1, -1], rtol=1e-6)
