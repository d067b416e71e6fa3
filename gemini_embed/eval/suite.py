"""Loading an evaluation suite laid out as in design.md (MTEB / BEIR conventions).

    SUITE/retrieval/NAME/{corpus.jsonl, queries.jsonl, qrels.tsv}
    SUITE/reranking/NAME/test.jsonl              {"query", "positive": [...], "negative": [...]}
    SUITE/classification/NAME/{train,test}.jsonl {"text", "label"}
    SUITE/clustering/NAME/test.jsonl             {"text", "label"}
    SUITE/pair_classification/NAME/test.jsonl    {"text1", "text2", "label": 0|1}
    SUITE/sts/NAME/test.jsonl                    {"text1", "text2", "score"}
    SUITE/bitext/NAME/test.jsonl                 {"src", "tgt"}

Every bad row raises `SuiteFormatError` naming the file and the 1-based line.
Blank lines are skipped. A task is identified by `"TYPE/NAME"` (its `task_id`).

A suite may come in two disjoint halves, each a suite of the layout above:

    SUITE/halves.json   {"halves": ["select", "report"], "unit": ..., "seed": ...}
    SUITE/select/TYPE/NAME/...   every choice a tool makes (soup, sweeps, early stopping)
    SUITE/report/TYPE/NAME/...   the numbers in tables

`resolve_half(SUITE, half)` gives the folder to load; a suite without halves (the older
layout) is used whole, whatever half is asked for, and says so.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Callable, Iterator

import numpy as np
from etils.epath import Path

from gemini_embed.data.jsonl import JsonLineError, read_jsonl

log = logging.getLogger(__name__)

HALVES = ('select', 'report')
HALVES_FILE = 'halves.json'
# Suite folder name → the task string given to encoders (design.md's prompt keys).
TASK_TYPES = ('retrieval', 'reranking', 'classification', 'clustering',
              'pair_classification', 'sts', 'bitext')


class SuiteFormatError(ValueError):
  """A suite file is missing or has a malformed row; the message says where."""


@dataclasses.dataclass(frozen=True)
class RetrievalTask:
  name: str
  corpus_ids: list[str]
  corpus_texts: list[str]      # "title text" (MTEB's join), or text when there is no title
  query_ids: list[str]         # only queries that appear in qrels, in qrels order
  query_texts: list[str]
  qrels: dict[str, dict[str, int]]  # query id → {corpus id: graded relevance}
  type = 'retrieval'


@dataclasses.dataclass(frozen=True)
class RerankingInstance:
  query: str
  positives: list[str]
  negatives: list[str]


@dataclasses.dataclass(frozen=True)
class RerankingTask:
  name: str
  instances: list[RerankingInstance]
  type = 'reranking'


@dataclasses.dataclass(frozen=True)
class ClassificationTask:
  name: str
  train_texts: list[str]
  train_labels: list[str]
  test_texts: list[str]
  test_labels: list[str]
  type = 'classification'


@dataclasses.dataclass(frozen=True)
class ClusteringTask:
  name: str
  texts: list[str]
  labels: list[str]
  type = 'clustering'


@dataclasses.dataclass(frozen=True)
class PairClassificationTask:
  name: str
  texts1: list[str]
  texts2: list[str]
  labels: np.ndarray  # Int[N] in {0, 1}
  type = 'pair_classification'


@dataclasses.dataclass(frozen=True)
class StsTask:
  name: str
  texts1: list[str]
  texts2: list[str]
  scores: np.ndarray  # Float[N] gold similarity
  type = 'sts'


@dataclasses.dataclass(frozen=True)
class BitextTask:
  name: str
  sources: list[str]
  targets: list[str]  # targets[i] is the translation of sources[i]
  type = 'bitext'


Task = (RetrievalTask | RerankingTask | ClassificationTask | ClusteringTask
        | PairClassificationTask | StsTask | BitextTask)


def task_id(task: Task) -> str:
  return f'{task.type}/{task.name}'


# --- row readers ---------------------------------------------------------------


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
  """(line number, JSON object) for each non-blank line of a JSONL file."""
  if not path.is_file():
    raise SuiteFormatError(f'{path}: file not found')
  try:
    yield from read_jsonl(str(path))
  except JsonLineError as e:
    raise SuiteFormatError(str(e)) from None


def _field(row: dict, key: str, check: Callable[[Any], bool], want: str, where: str) -> Any:
  if key not in row:
    raise SuiteFormatError(f'{where}: missing field "{key}" (row has {sorted(row)})')
  value = row[key]
  if not check(value):
    raise SuiteFormatError(f'{where}: field "{key}" must be {want}, got {value!r:.80}')
  return value


def _is_text(v: Any) -> bool:
  return isinstance(v, str)


def _is_text_list(v: Any) -> bool:
  return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_label(v: Any) -> bool:
  return isinstance(v, (str, int)) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _nonempty(path: Path, items: list) -> list:
  if not items:
    raise SuiteFormatError(f'{path}: no rows')
  return items


# --- one loader per task type ----------------------------------------------------


def load_retrieval(folder: Path) -> RetrievalTask:
  corpus_path, queries_path, qrels_path = (folder / 'corpus.jsonl', folder / 'queries.jsonl',
                                           folder / 'qrels.tsv')
  corpus: dict[str, str] = {}
  for number, row in _rows(corpus_path):
    where = f'{corpus_path}:{number}'
    doc_id = _field(row, '_id', _is_text, 'a string', where)
    text = _field(row, 'text', _is_text, 'a string', where)
    title = row.get('title') or ''
    if not isinstance(title, str):
      raise SuiteFormatError(f'{where}: field "title" must be a string, got {title!r:.80}')
    if doc_id in corpus:
      raise SuiteFormatError(f'{where}: duplicate corpus _id {doc_id!r}')
    corpus[doc_id] = f'{title} {text}'.strip()
  queries: dict[str, str] = {}
  for number, row in _rows(queries_path):
    where = f'{queries_path}:{number}'
    query_id = _field(row, '_id', _is_text, 'a string', where)
    if query_id in queries:
      raise SuiteFormatError(f'{where}: duplicate query _id {query_id!r}')
    queries[query_id] = _field(row, 'text', _is_text, 'a string', where)
  qrels = _read_qrels(qrels_path, queries, corpus)
  return RetrievalTask(folder.name, list(corpus), list(corpus.values()), list(qrels),
                       [queries[q] for q in qrels], qrels)


def _read_qrels(path: Path, queries: dict, corpus: dict) -> dict[str, dict[str, int]]:
  if not path.is_file():
    raise SuiteFormatError(f'{path}: file not found')
  qrels: dict[str, dict[str, int]] = {}
  with path.open('rb') as f:
    for number, raw in enumerate(f, start=1):
      try:
        line = raw.decode('utf-8-sig' if number == 1 else 'utf-8')
      except UnicodeDecodeError as e:
        raise SuiteFormatError(
            f'{path}:{number}: not valid UTF-8 ({e.reason} at byte {e.start})') from None
      if number == 1:
        header = line.rstrip('\r\n').split('\t')
        if header != ['query-id', 'corpus-id', 'score']:
          raise SuiteFormatError(f'{path}:1: header must be "query-id<TAB>corpus-id<TAB>score", '
                                 f'got {header}')
        continue
      if not line.strip():
        continue
      fields = line.rstrip('\r\n').split('\t')
      if len(fields) != 3:
        raise SuiteFormatError(
            f'{path}:{number}: expected 3 tab-separated fields, got {len(fields)}')
      query_id, doc_id, score = fields
      try:
        relevance = int(score)
      except ValueError:
        raise SuiteFormatError(
            f'{path}:{number}: score must be an integer, got {score!r}') from None
      if query_id not in queries:
        raise SuiteFormatError(f'{path}:{number}: query-id {query_id!r} is not in queries.jsonl')
      if doc_id not in corpus:
        raise SuiteFormatError(f'{path}:{number}: corpus-id {doc_id!r} is not in corpus.jsonl')
      qrels.setdefault(query_id, {})[doc_id] = relevance
  return _nonempty(path, qrels)


def load_reranking(folder: Path) -> RerankingTask:
  path = folder / 'test.jsonl'
  instances = []
  for number, row in _rows(path):
    where = f'{path}:{number}'
    instances.append(RerankingInstance(
        _field(row, 'query', _is_text, 'a string', where),
        _field(row, 'positive', _is_text_list, 'a list of strings', where),
        _field(row, 'negative', _is_text_list, 'a list of strings', where)))
  return RerankingTask(folder.name, _nonempty(path, instances))


def _text_label_rows(path: Path) -> tuple[list[str], list[str]]:
  texts, labels = [], []
  for number, row in _rows(path):
    where = f'{path}:{number}'
    texts.append(_field(row, 'text', _is_text, 'a string', where))
    labels.append(str(_field(row, 'label', _is_label, 'a string or an integer', where)))
  return _nonempty(path, texts), labels


def load_classification(folder: Path) -> ClassificationTask:
  train_texts, train_labels = _text_label_rows(folder / 'train.jsonl')
  test_texts, test_labels = _text_label_rows(folder / 'test.jsonl')
  if len(set(train_labels)) < 2:
    raise SuiteFormatError(
        f"{folder / 'train.jsonl'}: task 'classification/{folder.name}' has one label "
        f'({train_labels[0]!r}); a classifier needs at least two')
  unseen = sorted(set(test_labels) - set(train_labels))
  if unseen:
    raise SuiteFormatError(
        f'{folder / "test.jsonl"}: labels {unseen[:5]} never occur in train.jsonl')
  return ClassificationTask(folder.name, train_texts, train_labels, test_texts, test_labels)


def load_clustering(folder: Path) -> ClusteringTask:
  texts, labels = _text_label_rows(folder / 'test.jsonl')
  return ClusteringTask(folder.name, texts, labels)


def _pair_rows(path: Path, target: str, check: Callable[[Any], bool], want: str):
  texts1, texts2, targets = [], [], []
  for number, row in _rows(path):
    where = f'{path}:{number}'
    texts1.append(_field(row, 'text1', _is_text, 'a string', where))
    texts2.append(_field(row, 'text2', _is_text, 'a string', where))
    targets.append(_field(row, target, check, want, where))
  return _nonempty(path, texts1), texts2, targets


def load_pair_classification(folder: Path) -> PairClassificationTask:
  is_binary = lambda v: v in (0, 1) and not isinstance(v, (bool, float))
  texts1, texts2, labels = _pair_rows(folder / 'test.jsonl', 'label', is_binary, '0 or 1')
  if 1 not in labels:
    raise SuiteFormatError(f'{folder / "test.jsonl"}: no pair has label 1 (AP is undefined)')
  return PairClassificationTask(folder.name, texts1, texts2, np.asarray(labels, np.int64))


def load_sts(folder: Path) -> StsTask:
  texts1, texts2, scores = _pair_rows(folder / 'test.jsonl', 'score', _is_number, 'a finite number')
  return StsTask(folder.name, texts1, texts2, np.asarray(scores, np.float64))


def load_bitext(folder: Path) -> BitextTask:
  path = folder / 'test.jsonl'
  sources, targets = [], []
  for number, row in _rows(path):
    where = f'{path}:{number}'
    sources.append(_field(row, 'src', _is_text, 'a string', where))
    targets.append(_field(row, 'tgt', _is_text, 'a string', where))
  return BitextTask(folder.name, _nonempty(path, sources), targets)


LOADERS: dict[str, Callable[[Path], Task]] = {
    'retrieval': load_retrieval,
    'reranking': load_reranking,
    'classification': load_classification,
    'clustering': load_clustering,
    'pair_classification': load_pair_classification,
    'sts': load_sts,
    'bitext': load_bitext,
}


def load_suite(suite_dir: str | Path) -> list[Task]:
  """Every task of the suite, ordered by type (TASK_TYPES order) then name."""
  suite_dir = Path(suite_dir)
  if not suite_dir.is_dir():
    raise SuiteFormatError(f'{suite_dir}: suite directory not found')
  if has_halves(suite_dir):
    raise SuiteFormatError(f'{suite_dir} has two halves: load {suite_dir}/select or '
                           f'{suite_dir}/report (suite.resolve_half)')
  unknown = sorted(p.name for p in suite_dir.iterdir()
                   if p.is_dir() and p.name not in LOADERS and not p.name.startswith('.'))
  if unknown:
    raise SuiteFormatError(f'{suite_dir}: unknown task type folder(s) {unknown}; '
                           f'expected some of {list(TASK_TYPES)}')
  tasks = []
  for task_type in TASK_TYPES:
    type_dir = suite_dir / task_type
    if type_dir.is_dir():
      for folder in sorted(p for p in type_dir.iterdir() if p.is_dir()):
        tasks.append(LOADERS[task_type](folder))
  if not tasks:
    raise SuiteFormatError(f'{suite_dir}: no tasks (expected folders like {suite_dir}/sts/NAME/)')
  return tasks


def has_halves(suite_dir: str | Path) -> bool:
  suite_dir = Path(suite_dir)
  return (suite_dir / HALVES_FILE).is_file() or all((suite_dir / h).is_dir() for h in HALVES)


def resolve_half(suite_dir: str | Path, half: str | None) -> tuple[Path, str | None]:
  """(folder to load, the half it is): SUITE/HALF for a suite with halves; SUITE itself
  when it is one half already (SUITE/../halves.json) or has no halves (None)."""
  suite_dir = Path(suite_dir)
  if half is not None and half not in HALVES:
    raise ValueError(f'half={half!r}: expected one of {HALVES}')
  if not suite_dir.is_dir():
    raise SuiteFormatError(f'{suite_dir}: suite directory not found')
  if has_halves(suite_dir):
    if half is None:
      raise SuiteFormatError(f'{suite_dir} has two halves {HALVES}: choose one (--half)')
    return suite_dir / half, half
  if suite_dir.name in HALVES and has_halves(suite_dir.parent):
    if half is not None and half != suite_dir.name:
      log.warning('%s is the %s half; the %s half was asked for: using %s', suite_dir,
                  suite_dir.name, half, suite_dir.name)
    return suite_dir, suite_dir.name
  if half is not None:
    log.warning('%s has no halves (older layout): using all of it for %s', suite_dir, half)
  return suite_dir, None
