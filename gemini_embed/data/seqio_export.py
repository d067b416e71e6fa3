"""Our datasets → seqio (the `seqio` extra; imports TensorFlow).

    register_seqio_tasks(config)   our `config.stage` datasets → seqio Tasks (raw text
                                   features) + a Mixture with the same rates

Rows are loaded and validated by sources.py exactly as the grain pipeline loads them.
The other direction (seqio Tasks read by our pipeline) is seqio_reader.py.
"""

from __future__ import annotations

import functools

import ml_collections
import seqio
import tensorflow as tf

from gemini_embed.data import spec
from gemini_embed.data.sources import InputReport, load_examples

_RAW = dict(vocabulary=seqio.PassThroughVocabulary(size=0), add_eos=False, dtype=tf.string)
RAW_TEXT_FEATURES = {'query': seqio.Feature(rank=0, **_RAW),
                     'positive': seqio.Feature(rank=0, **_RAW),
                     'title': seqio.Feature(rank=0, required=False, **_RAW),
                     'negative': seqio.Feature(rank=1, required=False, **_RAW)}


def _task_name(prefix: str, name: str) -> str:
  return f'{prefix}{name}'


def _rows_dataset(rows: list[dict]):
  """A tf.data source of raw rows: negatives as a (possibly empty) string vector."""
  def generate():
    for r in rows:
      yield {'query': r['query'], 'positive': r['positive'], 'title': r.get('title') or '',
             'negative': list(r.get('negative', ()))}
  signature = {'query': tf.TensorSpec([], tf.string), 'positive': tf.TensorSpec([], tf.string),
               'title': tf.TensorSpec([], tf.string), 'negative': tf.TensorSpec([None], tf.string)}
  return tf.data.Dataset.from_generator(generate, output_signature=signature)


def register_seqio_tasks(config: ml_collections.ConfigDict, prefix: str = 'gemini_embed.'
                         ) -> str:
  """Registers one Task per dataset of `config.stage` and their Mixture; returns the
  Mixture's name (`{prefix}{stage}`). Rows are validated as the grain pipeline does."""
  entries = spec.stage_datasets(config)
  report = InputReport()
  names = []
  for name, entry in entries.items():
    examples = load_examples(name, entry, root=config.data.root, strict=config.data.strict,
                             max_chars=config.data.max_chars, report=report)
    rows = [dict(query=e.query, positive=e.positive, negative=list(e.negatives),
                 title=e.title or '') for e in examples]
    task = _task_name(prefix, name)
    seqio.TaskRegistry.remove(task)
    seqio.TaskRegistry.add(
        task,
        source=seqio.FunctionDataSource(
            functools.partial(lambda rows, split, shuffle_files, seed=None: _rows_dataset(rows),
                              rows), splits=('train',)),
        output_features=RAW_TEXT_FEATURES,
        preprocessors=[])
    names.append((task, entry.rate))
  mixture = _task_name(prefix, config.stage)
  seqio.MixtureRegistry.remove(mixture)
  seqio.MixtureRegistry.add(mixture, names)
  return mixture
