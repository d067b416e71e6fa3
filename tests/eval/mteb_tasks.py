"""mteb task objects holding the data of our suite's tasks, for mteb itself to score:
the independent reference our runners are checked against (tests/eval/test_mteb_adapter.py,
tests/test_export.py). Import after pytest.importorskip('mteb')."""

from datasets import Dataset, DatasetDict
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
from mteb.abstasks.pair_classification import AbsTaskPairClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.abstasks.text.bitext_mining import AbsTaskBitextMining


def task_metadata(name, task_type, main_score):
  return TaskMetadata(
      name=name, type=task_type, main_score=main_score, description='A local test task.',
      reference=None, dataset={'path': 'local/none', 'revision': 'none'}, category='t2t',
      eval_splits=['test'], eval_langs=['eng-Latn'], date=('2026-01-01', '2026-01-01'),
      dialect=[], domains=[], task_subtypes=[], license='cc-by-4.0',
      annotations_creators='derived', modalities=['text'], sample_creation='created',
      bibtex_citation='')


def _split(columns):
  return DatasetDict({'test': Dataset.from_dict(columns)})


def _task(base, name, task_type, main_score, load, **attributes):
  """An instance of a subclass of mteb's `base` whose dataset is load()."""
  class Local(base):
    metadata = task_metadata(name, task_type, main_score)

    def load_data(self, **kwargs):
      self.dataset = load()
      self.data_loaded = True

  for key, value in attributes.items():
    setattr(Local, key, value)
  return Local()


def _retrieval_split(t):
  return {'default': {'test': RetrievalSplitData(
      queries=Dataset.from_dict({'id': t.query_ids, 'text': t.query_texts}),
      corpus=Dataset.from_dict({'id': t.corpus_ids, 'text': t.corpus_texts}),
      relevant_docs=t.qrels, top_ranked=None)}}


def _classification_splits(t):
  return DatasetDict({
      'train': Dataset.from_dict({'text': t.train_texts, 'label': t.train_labels}),
      'test': Dataset.from_dict({'text': t.test_texts, 'label': t.test_labels})})


# our task type → its mteb task over our task `t`
_BY_TYPE = {
    'sts': lambda t: _task(
        AbsTaskSTS, 'LocalSts', 'STS', 'cosine_spearman',
        lambda: _split({'sentence1': t.texts1, 'sentence2': t.texts2, 'score': list(t.scores)}),
        min_score=0, max_score=5),
    'retrieval': lambda t: _task(AbsTaskRetrieval, 'LocalRetrieval', 'Retrieval', 'ndcg_at_10',
                                 lambda: _retrieval_split(t)),
    'classification': lambda t: _task(AbsTaskClassification, 'LocalClassification',
                                      'Classification', 'accuracy',
                                      lambda: _classification_splits(t)),
    'clustering': lambda t: _task(
        AbsTaskClusteringLegacy, 'LocalClustering', 'Clustering', 'v_measure',
        lambda: _split({'sentences': [t.texts], 'labels': [t.labels]})),
    'pair_classification': lambda t: _task(
        AbsTaskPairClassification, 'LocalPairs', 'PairClassification', 'max_ap',
        lambda: _split({'sentence1': t.texts1, 'sentence2': t.texts2,
                        'labels': t.labels.tolist()})),
    'bitext': lambda t: _task(AbsTaskBitextMining, 'LocalBitext', 'BitextMining', 'f1',
                              lambda: _split({'sentence1': t.sources, 'sentence2': t.targets})),
}


def local_tasks(tasks):
  """One mteb task object per task type of `tasks` (our suite's tasks) that has one here,
  holding the same data, keyed by our task type."""
  by_type = {t.type: t for t in tasks}
  return {kind: make(by_type[kind]) for kind, make in _BY_TYPE.items() if kind in by_type}
