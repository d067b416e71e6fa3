"""Training rows from column tables: Parquet files and Hugging Face `datasets`.

    format 'parquet'     files: globs of .parquet files (read with pyarrow)
    format 'hf_dataset'  files: a directory written by `Dataset.save_to_disk` (a
                         `DatasetDict` directory: the entry's `split`), or, when no such
                         directory exists, a Hub dataset name (network needed)

Columns become the fields of a training row (sources.py) through the entry's
`columns` mapping ({'anchor': 'query', 'pos': 'positive', …}); without a mapping,
sentence-transformers' names work as they are: `anchor` → query, `positive`,
`negative`, and `negative_1`, `negative_2`, … → the list of negatives (in number
order); our own names (query, positive, negative, title) pass through. Rows then
go through the same validation and bad-row accounting as JSONL, and are read by
index on access (the Arrow data is memory-mapped for `datasets`; a Parquet file's
needed columns are decoded once into Arrow buffers, not Python objects).
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, Sequence

FIELDS = ('query', 'positive', 'negative', 'title')
ST_COLUMNS = {'anchor': 'query', 'positive': 'positive', 'negative': 'negative'}
_NUMBERED_NEGATIVE = re.compile(r'negative_(\d+)')


def column_roles(names: Sequence[str], columns: Mapping[str, str], where: str
                 ) -> dict[str, str | tuple[str, ...]]:
  """Our field → the source column (negatives: a tuple of columns) for a table's columns."""
  columns = dict(columns or {})
  for source, field in columns.items():
    if field not in FIELDS:
      raise ValueError(f'{where}.columns.{source}={field!r}: map columns to one of {FIELDS}')
    if source not in names:
      raise ValueError(f'{where}.columns: column {source!r} is not in the data '
                       f'(its columns: {list(names)})')
  roles: dict[str, Any] = {}
  for source, field in columns.items():
    roles.setdefault(field, []).append(source)
  mapped = set(roles)
  for name in names:  # the rest: sentence-transformers' and our own names
    field = ST_COLUMNS.get(name) or (name if name in FIELDS else None)
    if name not in columns and field and field not in mapped:
      roles.setdefault(field, []).append(name)
  if 'negative' not in mapped:
    numbered = sorted((int(m.group(1)), n) for n in names
                      if n not in columns and (m := _NUMBERED_NEGATIVE.fullmatch(n)))
    roles.setdefault('negative', []).extend(n for _, n in numbered)
    if not roles['negative']:
      del roles['negative']
  out = {}
  for field, sources in roles.items():
    if field == 'negative':
      out[field] = tuple(sources)
    elif len(sources) > 1:
      raise ValueError(f'{where}.columns: {sources} all map to {field!r}; keep one')
    else:
      out[field] = sources[0]
  return out


def as_row(record: Mapping[str, Any], roles: Mapping[str, str | tuple[str, ...]]) -> dict:
  """A table record → a training-row dict (sources.validate_row checks it)."""
  row = {field: record[col] for field, col in roles.items() if field != 'negative'}
  negatives = [record[c] for c in roles.get('negative', ()) if record[c] is not None]
  if len(negatives) == 1 and not isinstance(negatives[0], str):
    negatives = negatives[0]  # one list-valued column
  if negatives != []:
    row['negative'] = negatives
  return row


class ParquetRows:
  """Random access to the rows of Parquet files, as training-row dicts."""

  def __init__(self, paths: Sequence[str], columns: Mapping[str, str], where: str):
    import pyarrow.parquet as pq  # noqa: PLC0415  (only for Parquet entries)
    self.paths = list(paths)
    self._tables, self._starts, total = [], [], 0
    for path in self.paths:
      names = pq.read_schema(path).names
      roles = column_roles(names, columns, where)
      needed = sorted({c for v in roles.values() for c in ((v,) if isinstance(v, str) else v)})
      self._tables.append((pq.read_table(path, columns=needed, memory_map=True), roles))
      self._starts.append(total)
      total += self._tables[-1][0].num_rows
    self._total = total

  def __len__(self) -> int:
    return self._total

  def locate(self, index: int) -> tuple[int, int]:
    """(file index, row within the file)."""
    file_index = next(i for i in range(len(self._starts) - 1, -1, -1)
                      if self._starts[i] <= index)
    return file_index, index - self._starts[file_index]

  def where(self, index: int) -> str:
    file_index, row = self.locate(index)
    return f'{self.paths[file_index]}:row {row}'

  def __getitem__(self, index: int) -> dict:
    file_index, row = self.locate(index)
    table, roles = self._tables[file_index]
    return as_row(table.slice(row, 1).to_pylist()[0], roles)

  def scan(self):
    """(index, row dict) of every row, a record batch at a time (the one-off scan)."""
    index = 0
    for table, roles in self._tables:
      for batch in table.to_batches():
        for record in batch.to_pylist():
          yield index, as_row(record, roles)
          index += 1


class HFDatasetRows:
  """Random access to a Hugging Face dataset (saved directory or Hub name)."""

  def __init__(self, spec: str, split: str, columns: Mapping[str, str], where: str):
    import datasets  # noqa: PLC0415  (the optional `datasets` extra)
    if os.path.isdir(spec):
      data = datasets.load_from_disk(spec)
      if isinstance(data, datasets.DatasetDict):
        if split not in data:
          raise ValueError(f'{where}.split={split!r}: {spec} holds splits {list(data)}')
        data = data[split]
    else:
      data = datasets.load_dataset(spec, split=split)
    self.spec, self._data = spec, data
    self._roles = column_roles(data.column_names, columns, where)
    needed = {c for v in self._roles.values() for c in ((v,) if isinstance(v, str) else v)}
    self._data = data.select_columns(sorted(needed))

  def __len__(self) -> int:
    return len(self._data)

  def where(self, index: int) -> str:
    return f'{self.spec}:row {index}'

  def __getitem__(self, index: int) -> dict:
    return as_row(self._data[int(index)], self._roles)

  def scan(self):
    for index, record in enumerate(self._data):
      yield index, as_row(record, self._roles)


class TableExamples:
  """The valid rows of a table (ParquetRows / HFDatasetRows), validated on read."""

  def __init__(self, table, valid: Sequence[int], validate):
    self._table, self._valid, self._validate = table, list(valid), validate

  def __len__(self) -> int:
    return len(self._valid)

  def __getitem__(self, index: int):
    return self._validate(self._table[self._valid[index]])


def open_table(entry, paths: Sequence[str], where: str):
  """The entry's table: ParquetRows over `paths`, or HFDatasetRows of `paths[0]` (a
  directory, or a Hub name)."""
  columns = dict(entry.get('columns') or {})
  if entry.format == 'parquet':
    return ParquetRows(paths, columns, where)
  return HFDatasetRows(paths[0], entry.get('split', 'train'), columns, where)
