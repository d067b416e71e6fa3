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


def _sts(sts):
  class LocalSts(AbsTaskSTS):
    metadata = task_metadata('LocalSts', 'STS', 'cosine_spearman')
    min_score, max_score = 0, 5

    def load_data(self, **kwargs):
      self.dataset = _split({'sentence1': sts.texts1, 'sentence2': sts.texts2,
                             'score': list(sts.scores)})
      self.data_loaded = True
  return LocalSts()


def _retrieval(retrieval):
  class LocalRetrieval(AbsTaskRetrieval):
    metadata = task_metadata('LocalRetrieval', 'Retrieval', 'ndcg_at_10')

    def load_data(self, **kwargs):
      split = RetrievalSplitData(
          queries=Dataset.from_dict({'id': retrieval.query_ids, 'text': retrieval.query_texts}),
          corpus=Dataset.from_dict({'id': retrieval.corpus_ids, 'text': retrieval.corpus_texts}),
          relevant_docs=retrieval.qrels, top_ranked=None)
      self.dataset = {'default': {'test': split}}
      self.data_loaded = True
  return LocalRetrieval()


def _classification(classification):
  class LocalClassification(AbsTaskClassification):
    metadata = task_metadata('LocalClassification', 'Classification', 'accuracy')

    def load_data(self, **kwargs):
      self.dataset = DatasetDict({
          'train': Dataset.from_dict({'text': classification.train_texts,
                                      'label': classification.train_labels}),
          'test': Dataset.from_dict({'text': classification.test_texts,
                                     'label': classification.test_labels})})
      self.data_loaded = True
  return LocalClassification()


def _clustering(clustering):
  class LocalClustering(AbsTaskClusteringLegacy):
    metadata = task_metadata('LocalClustering', 'Clustering', 'v_measure')

    def load_data(self, **kwargs):
      self.dataset = _split({'sentences': [clustering.texts], 'labels': [clustering.labels]})
      self.data_loaded = True
  return LocalClustering()


def _pairs(pairs):
  class LocalPairs(AbsTaskPairClassification):
    metadata = task_metadata('LocalPairs', 'PairClassification', 'max_ap')

    def load_data(self, **kwargs):
      self.dataset = _split({'sentence1': pairs.texts1, 'sentence2': pairs.texts2,
                             'labels': pairs.labels.tolist()})
      self.data_loaded = True
  return LocalPairs()


def _bitext(bitext):
  class LocalBitext(AbsTaskBitextMining):
    metadata = task_metadata('LocalBitext', 'BitextMining', 'f1')

    def load_data(self, **kwargs):
      self.dataset = _split({'sentence1': bitext.sources, 'sentence2': bitext.targets})
      self.data_loaded = True
  return LocalBitext()


_BY_TYPE = {'sts': _sts, 'retrieval': _retrieval, 'classification': _classification,
            'clustering': _clustering, 'pair_classification': _pairs, 'bitext': _bitext}


def local_tasks(tasks):
  """One mteb task object per task type of `tasks` (our suite's tasks) that has one here,
  holding the same data, keyed by our task type."""
  by_type = {t.type: t for t in tasks}
  return {kind: make(by_type[kind]) for kind, make in _BY_TYPE.items() if kind in by_type}
