"""The `config.data` section: pipeline defaults, dataset entries, and their checks.

A dataset entry is a ConfigDict under `config.data.datasets.NAME`, so every field
stays overridable from the command line:

    --config.data.datasets.wordnet_category.rate=0.3

    files           comma-separated globs, relative to `config.data.root` unless absolute
                    (format 'seqio': comma-separated names of registered seqio Tasks;
                    'hf_dataset': a `save_to_disk` directory, or a Hub name when online)
    format          'jsonl' | 'array_record' (records are the same JSON objects, UTF-8)
                    | 'seqio' (seqio_reader.py; needs the `seqio` extra)
                    | 'parquet' | 'hf_dataset' (table_sources.py; `datasets` extra)
    columns         table formats: source column → field (query, positive, negative,
                    title), e.g. {'anchor': 'query'}; sentence-transformers' column
                    names (anchor, positive, negative, negative_1, …) need none
    split           'hf_dataset': the split of a DatasetDict (default 'train')
    task            the task string the query template receives, e.g. 'code retrieval'
    stage           'prefinetune' | 'finetune': a run reads the entries of its `config.stage`
    rate            mixture rate (> 0); rates are normalised over the stage's entries
    type            one of TASK_TYPES (what kind of data; classification targets repeat)
    query_template  '{task}' and '{text}' are filled in
    doc_template    '{title}' ('none' when absent) and '{text}' are filled in
"""

from __future__ import annotations

import string

import ml_collections

STAGES = ('prefinetune', 'finetune')
FORMATS = ('jsonl', 'array_record', 'seqio', 'parquet', 'hf_dataset')
TASK_TYPES = ('retrieval', 'code_retrieval', 'classification', 'clustering',
              'pair_classification', 'sts', 'bitext', 'reranking')
QUERY_TEMPLATE = 'task: {task} | query: {text}'
DOC_TEMPLATE = 'title: {title} | text: {text}'
# 'auto' resolves per model family (see tokenization.special_tokens).
AUTO = 'auto'


def data_config() -> ml_collections.ConfigDict:
  """Defaults of `config.data`; experiment configs add their dataset entries."""
  d = ml_collections.ConfigDict()
  d.root = 'runs/corpora'          # where relative dataset globs point
  d.datasets = ml_collections.ConfigDict()
  d.query_max_len = 128            # tokens, prompt and BOS/EOS included
  d.doc_max_len = 256
  d.num_buckets = 3                # pad to max_len / 2**k, k < num_buckets
  d.pack = False                   # several texts per row (data/packing.py); same examples
  d.pack_row_counts = 8            # packed: how many row counts (= compilations) at most
  d.bos_token = AUTO               # 'auto' | '' (none) | a token string, e.g. '<bos>'
  d.eos_token = AUTO
  d.num_negatives = 1              # hard negatives per example (0: pair batches)
  d.task_dropout = 0.0             # probability of replacing a query's task by 'none'
  d.strict = False                 # True: stop at the first bad row (file:line, reason)
  d.max_chars = 20_000             # a longer text is bad input ('too_long')
  d.read_threads = 1               # grain prefetch threads (0: synchronous)
  d.prefetch_batches = 4
  return d


def dataset_entry(files: str, task: str, *, stage: str = 'finetune', rate: float = 1.0,
                  type: str = 'retrieval', format: str = 'jsonl',  # noqa: A002
                  query_template: str = QUERY_TEMPLATE,
                  doc_template: str = DOC_TEMPLATE, columns: dict[str, str] | None = None,
                  split: str = 'train') -> ml_collections.ConfigDict:
  entry = dict(files=files, format=format, task=task, stage=stage, rate=float(rate), type=type,
               query_template=query_template, doc_template=doc_template)
  if format in ('parquet', 'hf_dataset'):  # table formats only: JSONL entries stay as they were
    entry.update(columns=dict(columns or {}), split=split)
  elif columns:
    raise ValueError(f'dataset_entry({files!r}): columns= applies to parquet/hf_dataset only')
  return ml_collections.ConfigDict(entry)


def stage_datasets(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
  """The dataset entries of `config.stage`, in name order (the mixture's order)."""
  stage = config.stage
  return {name: entry for name, entry in sorted(config.data.datasets.items())
          if entry.stage == stage}


def _check_template(where: str, template: str, allowed: tuple[str, ...]) -> None:
  try:
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
  except ValueError as e:
    raise ValueError(f'{where}={template!r}: not a format string ({e})') from None
  if 'text' not in fields:
    raise ValueError(f'{where}={template!r}: must contain {{text}}')
  if fields - set(allowed):
    raise ValueError(f'{where}={template!r}: unknown fields {sorted(fields - set(allowed))}; '
                     f'allowed: {list(allowed)}')


def check_data_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad `config.data` field."""
  d = config.data
  stage = config.stage
  if stage not in STAGES:
    raise ValueError(f'config.stage={stage!r}: use one of {STAGES}')
  for field in ('query_max_len', 'doc_max_len', 'num_buckets', 'max_chars'):
    if d[field] <= 0:
      raise ValueError(f'config.data.{field}={d[field]}: must be positive')
  for field in ('query_max_len', 'doc_max_len'):
    if d[field] >> (d.num_buckets - 1) < 4:
      raise ValueError(f'config.data.{field}={d[field]} with config.data.num_buckets='
                       f'{d.num_buckets}: the smallest bucket would be under 4 tokens')
  if not isinstance(d.pack_row_counts, int) or d.pack_row_counts < 1:
    raise ValueError(f'config.data.pack_row_counts={d.pack_row_counts!r}: must be an integer '
                     '>= 1 (how many row counts packed batches may have)')
  if d.num_negatives < 0:
    raise ValueError(f'config.data.num_negatives={d.num_negatives}: must be >= 0')
  if stage == 'prefinetune' and d.num_negatives:
    raise ValueError(f'config.data.num_negatives={d.num_negatives}: pre-finetuning batches '
                     'are pairs without hard negatives; set it to 0')
  if not 0.0 <= d.task_dropout < 1.0:
    raise ValueError(f'config.data.task_dropout={d.task_dropout}: must be in [0, 1)')
  if d.read_threads < 0 or d.prefetch_batches < 0:
    raise ValueError('config.data.read_threads and config.data.prefetch_batches must be >= 0')
  if not stage_datasets(config):
    raise ValueError(f'config.data.datasets: no entry has stage={stage!r} '
                     f'(entries: {sorted(d.datasets)})')
  for name, e in d.datasets.items():
    where = f'config.data.datasets.{name}'
    if not e.files:
      raise ValueError(f'{where}.files: empty; give comma-separated globs')
    if e.format not in FORMATS:
      raise ValueError(f'{where}.format={e.format!r}: use one of {FORMATS}')
    if e.stage not in STAGES:
      raise ValueError(f'{where}.stage={e.stage!r}: use one of {STAGES}')
    if not e.rate > 0:
      raise ValueError(f'{where}.rate={e.rate}: must be > 0 (remove the entry to drop it)')
    if e.type not in TASK_TYPES:
      raise ValueError(f'{where}.type={e.type!r}: use one of {TASK_TYPES}')
    if not e.task.strip():
      raise ValueError(f'{where}.task: empty; the query template needs a task string')
    _check_template(f'{where}.query_template', e.query_template, ('task', 'text'))
    _check_template(f'{where}.doc_template', e.doc_template, ('title', 'text'))
