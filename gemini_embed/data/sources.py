"""Training rows from JSONL or ArrayRecord files, validated, with bad input counted.

A row is one JSON object `{"query": str, "positive": str, "negative"?: str | [str],
"title"?: str}`; other keys are ignored. A row is bad when it is not valid UTF-8,
not JSON, not an object, lacks `query`/`positive`, has an empty or wrongly typed
field, or has a text longer than `max_chars`. In strict mode the first bad row
raises `BadInputError` naming file:line (file:record for ArrayRecord) and the
reason; otherwise bad rows are skipped and counted by reason in an `InputReport`.
A dataset left with no valid row is an error naming it.

JSONL rows are parsed once and held in memory. ArrayRecord files are scanned once
(to count and index the valid records every process agrees on) and read lazily.
Format 'seqio' reads registered seqio Tasks (seqio_bridge.py) through the same checks.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import json
import os
from typing import Any, Iterator, Sequence

from absl import logging

REASONS = ('invalid_utf8', 'malformed_json', 'not_an_object', 'missing_field', 'empty_field',
           'wrong_type', 'too_long')


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
  """One record → Example; raises _BadRow(reason, detail)."""
  try:
    line = raw.decode('utf-8')
  except UnicodeDecodeError as e:
    raise _BadRow('invalid_utf8', str(e)) from None
  try:
    row = json.loads(line)
  except json.JSONDecodeError as e:
    raise _BadRow('malformed_json', str(e)) from None
  return validate_row(row, max_chars)


def validate_row(row: Any, max_chars: int) -> Example:
  """A decoded row (dict) → Example; raises _BadRow(reason, detail)."""
  if not isinstance(row, dict):
    raise _BadRow('not_an_object', f'a JSON {type(row).__name__}, expected an object')
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
  """Comma-separated globs (relative to root unless absolute) → sorted paths."""
  paths = []
  for pattern in filter(None, (p.strip() for p in files.split(','))):
    pattern = pattern if os.path.isabs(pattern) else os.path.join(root, pattern)
    matched = sorted(glob.glob(pattern))
    if not matched:
      raise FileNotFoundError(f'config.data.datasets.{name}.files: {pattern!r} matches no file')
    paths.extend(matched)
  return paths


def _jsonl_records(path: str) -> Iterator[tuple[str, bytes]]:
  with open(path, 'rb') as f:
    for line_no, raw in enumerate(f, 1):
      if raw.strip():
        yield f'{path}:{line_no}', raw


def _seqio_records(name: str) -> Iterator[tuple[str, dict]]:
  from gemini_embed.data import seqio_bridge  # TensorFlow: only when asked for
  for i, row in enumerate(seqio_bridge.task_rows(name)):
    yield f'seqio task {name}:example {i}', row


def _array_record_records(path: str) -> Iterator[tuple[str, bytes]]:
  from grain.sources import ArrayRecordDataSource
  source = ArrayRecordDataSource([path])
  for i in range(len(source)):
    yield f'{path}:record {i}', source[i]


class ArrayRecordExamples:
  """Random access to the valid records of ArrayRecord files, parsed on read."""

  def __init__(self, paths: Sequence[str], valid: Sequence[tuple[int, int]], max_chars: int):
    from grain.sources import ArrayRecordDataSource
    self._sources = [ArrayRecordDataSource([p]) for p in paths]
    self._valid = list(valid)  # (file index, record index)
    self._max_chars = max_chars

  def __len__(self) -> int:
    return len(self._valid)

  def __getitem__(self, index: int) -> Example:
    file_index, record = self._valid[index]
    return parse_row(self._sources[file_index][record], self._max_chars)


def load_examples(name: str, entry, *, root: str, strict: bool, max_chars: int,
                  report: InputReport) -> Sequence[Example]:
  """The valid examples of one dataset entry, as a random-access sequence."""
  if entry.format == 'seqio':  # `files` names seqio Tasks, comma-separated
    paths = [t.strip() for t in entry.files.split(',') if t.strip()]
    read, parse = _seqio_records, validate_row
  else:
    paths = expand_files(name, entry.files, root)
    read = _jsonl_records if entry.format == 'jsonl' else _array_record_records
    parse = parse_row
  counts = report.skipped.setdefault(name, collections.Counter())
  examples, valid = [], []
  for file_index, path in enumerate(paths):
    for record_index, (where, raw) in enumerate(read(path)):
      try:
        example = parse(raw, max_chars)
      except _BadRow as bad:
        if strict:
          raise BadInputError(f'{where}: {bad.reason}: {bad.detail} (dataset {name!r}; '
                              'config.data.strict=False skips and counts bad rows)') from None
        counts[bad.reason] += 1
        continue
      if entry.format != 'array_record':
        examples.append(example)
      else:
        valid.append((file_index, record_index))
  total_skipped = sum(counts.values())
  if total_skipped:
    logging.warning('dataset %s: skipped %d bad rows: %s', name, total_skipped, dict(counts))
  result = examples if entry.format != 'array_record' else \
      ArrayRecordExamples(paths, valid, max_chars)
  if not len(result):
    raise BadInputError(f'dataset {name!r} ({", ".join(paths)}): no valid example '
                        f'(skipped: {dict(counts) or "none; the files are empty"})')
  report.valid[name] = len(result)
  return result


def write_array_record(path: str, rows: Sequence[dict | bytes]) -> None:
  """Writes rows (dicts as JSON, or raw bytes) as an ArrayRecord file, one per record."""
  from array_record.python.array_record_module import ArrayRecordWriter
  writer = ArrayRecordWriter(path, 'group_size:1')
  for row in rows:
    writer.write(row if isinstance(row, bytes) else json.dumps(row).encode('utf-8'))
  writer.close()
