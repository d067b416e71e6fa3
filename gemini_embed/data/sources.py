"""Training rows from JSONL, ArrayRecord, Parquet or HF-datasets sources, validated, with bad input counted.

A row is one JSON object `{"query": str, "positive": str, "negative"?: str | [str],
"title"?: str}`; other keys are ignored. A row is bad when it is not valid UTF-8,
not JSON (or nested too deeply), not an object, lacks `query`/`positive`, has an
empty or wrongly typed field, or has a text longer than `max_chars`. In strict mode the first bad row
raises `BadInputError` naming file:line (file:record for ArrayRecord) and the
reason; otherwise bad rows are skipped and counted by reason in an `InputReport`.
A dataset left with no valid row is an error naming it.

JSONL files are scanned once (jsonl.py) for the byte spans of their valid lines and
read again on access (JsonlExamples: not resident, random access for grain's exact
resume). ArrayRecord files are scanned once (to count and index the valid records every process agrees on) and
read lazily; so are Parquet files and Hugging Face datasets (table_sources.py: their
columns mapped to these fields). Format 'seqio' reads registered seqio Tasks (seqio_reader.py) through
the same checks.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Any, Iterator, Sequence

import numpy as np
from absl import logging
from array_record.python.array_record_module import ArrayRecordWriter
from grain.sources import ArrayRecordDataSource

from gemini_embed import storage
from gemini_embed.data import jsonl, table_sources

TABLE_FORMATS = ('parquet', 'hf_dataset')  # table_sources.py
# jsonl.REASONS (the line is not a JSON object), then the row-level reasons.
REASONS = jsonl.REASONS + ('missing_field', 'empty_field', 'wrong_type', 'too_long')


class BadInputError(ValueError):
  """A bad row met in strict mode, or a dataset without any valid row."""


@dataclasses.dataclass(frozen=True)
class Example:
  query: str
  positive: str
  negatives: tuple[str, ...] = ()
  title: str | None = None


@dataclasses.dataclass
class InputReport:
  """Bad rows skipped, by dataset and reason; `metrics()` is what the trainer logs."""
  skipped: dict[str, collections.Counter] = dataclasses.field(default_factory=dict)
  valid: dict[str, int] = dataclasses.field(default_factory=dict)

  def metrics(self) -> dict[str, int]:
    out = {f'data/skipped/{name}/{reason}': n
           for name, counts in sorted(self.skipped.items()) for reason, n in sorted(counts.items())}
    out['data/skipped/total'] = sum(sum(c.values()) for c in self.skipped.values())
    return out


class _BadRow(Exception):

  def __init__(self, reason: str, detail: str):
    super().__init__(reason, detail)
    self.reason, self.detail = reason, detail


def _text(row: dict, key: str, max_chars: int) -> str:
  value = row[key]
  if not isinstance(value, str):
    raise _BadRow('wrong_type', f'{key!r} is {type(value).__name__}, expected a string')
  if not value.strip():
    raise _BadRow('empty_field', f'{key!r} is empty')
  if len(value) > max_chars:
    raise _BadRow('too_long', f'{key!r} has {len(value)} characters > max_chars={max_chars}')
  try:
    value.encode('utf-8')  # lone surrogates from JSON escapes such as "\ud800"
  except UnicodeEncodeError:
    raise _BadRow('invalid_utf8', f'{key!r} holds an unpaired surrogate') from None
  return value


def parse_row(raw: bytes, max_chars: int) -> Example:
  """One JSON record → Example; raises jsonl.JsonLineError or _BadRow(reason, detail)."""
  return validate_row(jsonl.json_object(raw), max_chars)


def validate_row(row: dict[str, Any], max_chars: int) -> Example:
  """A JSON object → Example; raises _BadRow(reason, detail)."""
  for key in ('query', 'positive'):
    if key not in row or row[key] is None:
      raise _BadRow('missing_field', f'no {key!r}')
  query, positive = _text(row, 'query', max_chars), _text(row, 'positive', max_chars)
  negatives = row.get('negative')
  if negatives is None:
    negatives = []
  elif isinstance(negatives, str):
    negatives = [negatives]
  elif not isinstance(negatives, list):
    raise _BadRow('wrong_type', f"'negative' is {type(negatives).__name__}, "
                  'expected a string or a list of strings')
  negatives = tuple(_text({'negative': n}, 'negative', max_chars) for n in negatives)
  title = row.get('title')
  if title is not None and not isinstance(title, str):
    raise _BadRow('wrong_type', f"'title' is {type(title).__name__}, expected a string")
  if title is not None:
    title = title.strip() or None
    if title and len(title) > max_chars:
      raise _BadRow('too_long', f"'title' has {len(title)} characters > max_chars={max_chars}")
  return Example(query, positive, negatives, title)


def expand_files(name: str, files: str, root: str) -> list[str]:
  """Comma-separated globs (relative to root unless absolute or gs://) → sorted paths."""
  paths = []
  for pattern in filter(None, (p.strip() for p in files.split(','))):
    pattern = storage.join(root, pattern)
    try:
      matched = storage.glob(pattern)
    except Exception as e:  # an unreachable bucket, refused credentials
      raise storage.StorageError(f'config.data.datasets.{name}.files: cannot list {pattern!r} '
                                 f'({type(e).__name__}: {e})') from e
    if not matched:
      raise FileNotFoundError(f'config.data.datasets.{name}.files: {pattern!r} matches no file')
    paths.extend(matched)
  return paths


def _seqio_rows(name: str) -> Iterator[tuple[str, dict]]:
  # seqio imports TensorFlow: only for format 'seqio' (the `seqio` extra).
  from gemini_embed.data import seqio_reader  # noqa: PLC0415
  for i, row in enumerate(seqio_reader.task_rows(name)):
    yield f'seqio task {name}:example {i}', row


class ArrayRecordExamples:
  """Random access to the valid records of ArrayRecord files, parsed on read."""

  def __init__(self, paths: Sequence[str], valid: Sequence[tuple[int, int]], max_chars: int):
    self._sources = [ArrayRecordDataSource([p]) for p in paths]
    self._valid = list(valid)  # (file index, record index)
    self._max_chars = max_chars

  def __len__(self) -> int:
    return len(self._valid)

  def __getitem__(self, index: int) -> Example:
    file_index, record = self._valid[index]
    return parse_row(self._sources[file_index][record], self._max_chars)


class JsonlExamples:
  """Random access to the valid lines of JSONL files, parsed on read: the files stay on
  disk, and memory holds 16 bytes per valid line (its file, offset and length). Files on
  an object store (gs://) are read from their local copies (storage.local_copy): a
  shuffled order would otherwise cost one request per example."""

  def __init__(self, paths: Sequence[str], spans: Sequence[tuple[int, int, int]],
               max_chars: int):
    self._paths = list(paths)
    self._file = np.asarray([s[0] for s in spans], np.int32)
    self._offset = np.asarray([s[1] for s in spans], np.int64)
    self._length = np.asarray([s[2] for s in spans], np.int32)
    self._max_chars = max_chars
    self._fds: dict[int, int] = {}

  def __len__(self) -> int:
    return len(self._offset)

  def __getitem__(self, index: int) -> Example:
    file_index = int(self._file[index])  # IndexError past the end ends iteration
    fd = self._fds.get(file_index)
    if fd is None:  # pread: no shared file position, so reader threads need no lock
      fd = self._fds.setdefault(file_index, os.open(self._paths[file_index], os.O_RDONLY))
    raw = os.pread(fd, int(self._length[index]), int(self._offset[index]))
    return parse_row(raw, self._max_chars)

  def __getstate__(self):  # file descriptors do not cross process boundaries
    return {**self.__dict__, '_fds': {}}

  def __del__(self):
    for fd in getattr(self, '_fds', {}).values():
      os.close(fd)


def load_examples(name: str, entry, *, root: str, strict: bool, max_chars: int,
                  report: InputReport) -> Sequence[Example]:
  """The valid examples of one dataset entry, as a random-access sequence."""
  counts = report.skipped.setdefault(name, collections.Counter())

  def reject(where: str, reason: str, detail: str) -> None:
    if strict:
      raise BadInputError(f'{where}: {reason}: {detail} (dataset {name!r}; '
                          'config.data.strict=False skips and counts bad rows)') from None
    counts[reason] += 1

  def example(where: str, row: dict) -> Example | None:
    try:
      return validate_row(row, max_chars)
    except _BadRow as bad:
      reject(where, bad.reason, bad.detail)
      return None

  def bad_line(error: jsonl.JsonLineError) -> None:
    reject(error.where, error.reason, error.detail)

  if entry.format in TABLE_FORMATS:  # scanned once here, read again on access
    where = f'config.data.datasets.{name}'
    if entry.format == 'parquet':
      paths = expand_files(name, entry.files, root)
    else:  # a saved directory (relative to root, like globs), else a Hub name
      local = os.path.join(root, entry.files.strip())
      paths = [local if os.path.isdir(local) else entry.files.strip()]
    try:
      table = table_sources.open_table(entry, paths, where)
    except (OSError, ValueError) as e:
      raise BadInputError(f'dataset {name!r} ({", ".join(paths)}): {e}') from None
    valid = [i for i, row in table.scan() if example(table.where(i), row) is not None]
    result = table_sources.TableExamples(table, valid,
                                         lambda row: validate_row(row, max_chars))
  elif entry.format == 'array_record':  # scanned once here, read again on access
    paths = expand_files(name, entry.files, root)
    local = [storage.local_copy(path) for path in paths]  # gs://: read from a local copy
    valid = []  # (file index, record index)
    for file_index, path in enumerate(paths):
      source = ArrayRecordDataSource([local[file_index]])
      for record in range(len(source)):
        where = f'{path}:record {record}'
        try:
          row = jsonl.json_object(source[record])
        except jsonl.JsonLineError as bad:
          reject(where, bad.reason, bad.detail)
          continue
        if example(where, row) is not None:
          valid.append((file_index, record))
    result = ArrayRecordExamples(local, valid, max_chars)
  elif entry.format == 'seqio':  # `files` names seqio Tasks, comma-separated
    paths = [t.strip() for t in entry.files.split(',') if t.strip()]
    rows = ((where, row) for task in paths for where, row in _seqio_rows(task))
    result = [e for e in (example(where, row) for where, row in rows) if e is not None]
  else:  # JSONL: scanned once for the valid lines' byte spans, read again on access
    paths = expand_files(name, entry.files, root)
    local = [storage.local_copy(path) for path in paths]
    spans = [(file_index, offset, length) for file_index, path in enumerate(paths)
             for line, row, offset, length in jsonl.read_jsonl_spans(
                 local[file_index], on_error=bad_line, name=path)
             if example(f'{path}:{line}', row) is not None]
    result = JsonlExamples(local, spans, max_chars)
  total_skipped = sum(counts.values())
  if total_skipped:
    logging.warning('dataset %s: skipped %d bad rows: %s', name, total_skipped, dict(counts))
  if not len(result):
    raise BadInputError(f'dataset {name!r} ({", ".join(paths)}): no valid example '
                        f'(skipped: {dict(counts) or "none; the files are empty"})')
  report.valid[name] = len(result)
  return result


def write_array_record(path: str, rows: Sequence[dict | bytes]) -> None:
  """Writes rows (dicts as JSON, or raw bytes) as an ArrayRecord file, one per record."""
  writer = ArrayRecordWriter(path, 'group_size:1')
  for row in rows:
    writer.write(row if isinstance(row, bytes) else json.dumps(row).encode('utf-8'))
  writer.close()
