"""The training input pipeline: config + tokenizer → this process's `Batch` stream.

    data = training_data(config, tokenizer)          # process index/count from JAX
    it = data.iterator()                             # a grain DatasetIterator
    batch = next(it)                                 # this process's slice, NumPy
    state = it.get_state(); it.set_state(state)      # or orbax grain.checkpoint.CheckpointSave(it)
    metrics.update(it.bad_input_counts())            # bad rows skipped, by dataset and reason
    it = train_iterator(config, tokenizer, family, process_index, process_count)  # the same

Every global batch (`config.batch_size` rows over all processes) comes from one
dataset of `config.stage`, chosen by `MixtureSchedule`. Per dataset, a grain
MapDataset shuffles (per epoch) and repeats its examples and cuts the stream into
global batches; process p of P reads only rows [p·B/P, (p+1)·B/P) of each, then
prompts, tokenises and pads them (collate.py). Everything is index-addressed, so
the iterator's state is the next step and restoring resumes at exactly that batch.

Token lengths: one process pads each batch to the smallest length bucket that
holds it (tokenization.py). With P > 1 processes every process pads to the top
bucket (`config.data.query_max_len`, `doc_max_len`), which all of them know from
the config, so `jax.make_array_from_process_local_data` sees equal local shapes
with one compilation and no per-step communication.

Packing (`config.data.pack`, data/packing.py): each process packs its slice's texts into
rows of max(query_max_len, doc_max_len) tokens; one process uses the smallest of a few
row counts that holds the batch, several processes all use the largest (known from the
config), so the same rule holds: equal local shapes, no per-step communication.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from typing import Any, Sequence

import grain
import jax
import ml_collections
import numpy as np
from absl import logging

from gemini_embed import sharding
from gemini_embed.data import packing, spec
from gemini_embed.data.batch import Batch, PackedBatch
from gemini_embed.data.collate import Collator, DatasetPrompts
from gemini_embed.data.mixture import MixtureSchedule
from gemini_embed.data.sources import Example, InputReport, load_examples
from gemini_embed.data.tokenization import encoders_from_config

class TrainingIterator(grain.DatasetIterator):
  """This process's batches; grain-checkpointable; counts the bad rows skipped; names the
  dataset each step's batch comes from."""

  def __init__(self, parent: grain.DatasetIterator, report: InputReport, names: list[str],
               schedule: MixtureSchedule):
    super().__init__(parent)
    self._report, self._names, self._schedule = report, names, schedule

  def __next__(self) -> Batch | PackedBatch:
    return next(self._parent)

  def get_state(self) -> dict[str, Any]:
    return self._parent.get_state()

  def set_state(self, state: dict[str, Any]) -> None:
    self._parent.set_state(state)

  def dataset_name(self, index: int) -> str:
    """The dataset of the batch at 0-based position `index` (the step it trains)."""
    return self._names[self._schedule[index][0]]

  def bad_input_counts(self) -> dict[str, int]:
    """{'skipped/DATASET/REASON': n, 'skipped/total': n}: rows dropped while loading."""
    return {k.removeprefix('data/'): v for k, v in self._report.metrics().items()}


def batch_shapes(batch: Batch | PackedBatch) -> list[tuple[int, int]]:
  """(sequences, padded length) of queries, positives and negatives (for FLOP counts);
  (rows, row length) of a packed batch."""
  if isinstance(batch, PackedBatch):
    return [tuple(int(n) for n in batch.tokens.shape)]
  shapes = [batch.query_tokens.shape, batch.pos_tokens.shape]
  if batch.neg_tokens is not None:
    b, k, length = batch.neg_tokens.shape
    shapes.append((b * k, length))
  return [(int(n), int(length)) for n, length in shapes]


def dataset_seed(seed: int, name: str) -> int:
  """Shuffle seed of one dataset: adding or removing another leaves it unchanged."""
  return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**32


def example_stream(examples: Sequence[Example], seed: int) -> grain.MapDataset:
  """Examples shuffled anew each epoch, repeated forever (index-addressed)."""
  return grain.MapDataset.source(examples).shuffle(seed=seed).repeat()


def process_batches(stream: grain.MapDataset, global_batch: int, process_index: int,
                    process_count: int) -> grain.MapDataset:
  """Batch k of the result = rows [p·b, (p+1)·b) of global batch k (b = global/P)."""
  local = global_batch // process_count
  return stream.batch(local, drop_remainder=True, batch_fn=list)[process_index::process_count]


def _tag(dataset_index: int, rows: list[Example]) -> tuple[int, list[Example]]:
  return dataset_index, rows


@dataclasses.dataclass
class _ProcessBatch:
  """(step, (dataset, rows)) → this process's Batch; picklable for grain workers."""
  collate: Collator
  prompts: list[DatasetPrompts]
  first_row: int

  def __call__(self, step: int, tagged: tuple[int, list[Example]]) -> Batch | PackedBatch:
    index, rows = tagged
    return self.collate(step, rows, self.prompts[index], self.first_row)


def task_homogeneous_batches(datasets: Sequence[grain.MapDataset], schedule: MixtureSchedule
                             ) -> grain.MapDataset:
  """Step → (dataset index, that dataset's next batch): one dataset per batch."""
  tagged = [ds.map(functools.partial(_tag, d)) for d, ds in enumerate(datasets)]
  return grain.MapDataset.select_from_datasets(tagged, schedule)


@dataclasses.dataclass
class TrainingData:
  """This process's view of the training mixture."""
  names: list[str]
  rates: np.ndarray
  schedule: MixtureSchedule
  report: InputReport
  dataset: grain.IterDataset
  process_index: int
  process_count: int
  local_batch_size: int

  def iterator(self) -> TrainingIterator:
    return TrainingIterator(iter(self.dataset), self.report, self.names, self.schedule)

  def dataset_name(self, step: int) -> str:
    return self.names[self.schedule[step][0]]

  def metrics(self) -> dict[str, int]:
    return self.report.metrics()


def training_data(config: ml_collections.ConfigDict, tokenizer, *, family: str | None = None,
                  process_index: int | None = None, process_count: int | None = None
                  ) -> TrainingData:
  """Builds the pipeline of `config.stage`'s datasets for one process.

  `family` picks BOS/EOS when config.data.*_token is 'auto' (default config.model.family;
  the trainer passes the checkpoint's).
  """
  spec.check_data_config(config)
  d = config.data
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if config.batch_size % process_count:
    raise ValueError(f'config.batch_size={config.batch_size}: not divisible by the '
                     f'{process_count} processes')
  local = config.batch_size // process_count
  entries = spec.stage_datasets(config)
  report = InputReport()
  streams, prompts = [], []
  for name, entry in entries.items():
    rows = load_examples(name, entry, root=d.root, strict=d.strict, max_chars=d.max_chars,
                         report=report)
    if len(rows) < config.batch_size:
      logging.warning('dataset %s has %d examples < batch_size %d: batches repeat examples',
                      name, len(rows), config.batch_size)
    streams.append(process_batches(example_stream(rows, dataset_seed(config.seed, name)),
                                   config.batch_size, process_index, process_count))
    prompts.append(DatasetPrompts(entry.task, entry.query_template, entry.doc_template))

  rates = np.array([e.rate for e in entries.values()], np.float64)
  schedule = MixtureSchedule(rates, config.seed)
  # P > 1: the top bucket only, so every process's local shapes agree (module docstring).
  num_buckets = d.num_buckets if process_count == 1 else 1
  query_encoder, doc_encoder = encoders_from_config(d, family or config.model.family, tokenizer,
                                                    num_buckets=num_buckets)
  negatives = 0 if config.stage == 'prefinetune' else d.num_negatives
  layout = None
  if d.pack:
    dp = sharding.config_data_parallel_size(config, jax.device_count())
    layout = packing.row_layout(
        local, negatives, query_max_len=d.query_max_len, doc_max_len=d.doc_max_len,
        num_row_counts=d.pack_row_counts, row_multiple=dp // math.gcd(dp, process_count),
        fixed=process_count > 1)
    logging.info('data: packed rows of %d tokens, %s rows per process', layout.row_length,
                 layout.row_counts)
  collate = Collator(query_encoder, doc_encoder, negatives, config.seed, d.task_dropout,
                     layout, config.batch_size)
  make_batch = _ProcessBatch(collate, prompts, process_index * local)
  batches = task_homogeneous_batches(streams, schedule).map_with_index(make_batch)
  dataset = batches.to_iter_dataset(grain.ReadOptions(
      num_threads=d.read_threads, prefetch_buffer_size=d.prefetch_batches))
  logging.info('data: %s, rates %s, %d rows per process', list(entries), rates / rates.sum(),
               local)
  if process_count > 1 and not d.pack:
    logging.info('data: %d processes: every batch is padded to the top bucket (queries %d, '
                 'documents %d tokens) so that local shapes agree without communication',
                 process_count, d.query_max_len, d.doc_max_len)
  return TrainingData(list(entries), rates / rates.sum(), schedule, report, dataset,
                      process_index, process_count, local)


def train_iterator(config: ml_collections.ConfigDict, tokenizer, family: str | None = None,
                   process_index: int | None = None, process_count: int | None = None
                   ) -> TrainingIterator:
  """The trainer's entry point: `training_data(...).iterator()`."""
  return training_data(config, tokenizer, family=family, process_index=process_index,
                       process_count=process_count).iterator()
