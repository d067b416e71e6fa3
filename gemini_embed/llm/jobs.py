"""A JSONL-in, JSONL-out job over rows: checked, sharded, resumable, with progress.

    INPUT.jsonl ─read_jsonl (data/jsonl.py; a bad line stops the job, naming path:line)
      ─check every row first (a missing/mistyped field: path:line and the field)
      ─this shard's contiguous slice of rows (shard k of n: rows [k·N/n, (k+1)·N/n))
      ─skip the rows OUTPUT already holds (a rerun resumes; a torn last line is cut)
      ─windows of rows → process(window) → one output row per input row, appended
        in input order, flushed and fsynced per window

With n > 1 shards, shard k writes OUTPUT with `-0000k-of-0000n` before its
extension; concatenating the shard files in order gives the rows in input order. By
default n and k are the JAX process count and index (each process of a multi-process
run is one shard on its local devices).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Sequence

from absl import logging
from tqdm import tqdm

from gemini_embed.data.jsonl import JsonLineError, read_jsonl

Row = dict[str, Any]


def shard_path(output: str, shard: int, num_shards: int) -> str:
  if num_shards == 1:
    return output
  stem, ext = os.path.splitext(output)
  return f'{stem}-{shard:05d}-of-{num_shards:05d}{ext}'


def read_rows(path: str, check: Callable[[Row], None],
              on_error: Callable[[JsonLineError], None] | None = None
              ) -> list[tuple[int, Row]]:
  """(line number, row) of every row; check(row) raises ValueError naming the problem,
  which is reported with the row's path:line. A line that is not a JSON object raises,
  or with `on_error` is passed to it and skipped (read_jsonl's contract)."""
  rows = []
  for line, row in read_jsonl(path, on_error):
    try:
      check(row)
    except ValueError as e:
      raise ValueError(f'{path}:{line}: {e}') from None
    rows.append((line, row))
  return rows


def done_rows(path: str) -> int:
  """Complete lines already in `path` (0 if absent); a torn last line (a killed write)
  is cut off first."""
  if not os.path.exists(path):
    return 0
  with open(path, 'rb+') as f:
    data = f.read()
    keep = data.rfind(b'\n') + 1
    if keep < len(data):
      logging.warning('%s: cutting a torn last line (%d bytes) before resuming', path,
                      len(data) - keep)
      f.truncate(keep)
  return data[:keep].count(b'\n')


def run(input_path: str, output: str, *, check: Callable[[Row], None],
        process: Callable[[Sequence[tuple[int, Row]]], tuple[list[Row], int]],
        window: int, num_shards: int, shard: int, desc: str,
        on_error: Callable[[JsonLineError], None] | None = None) -> str:
  """Runs `process` over this shard's rows not yet in the output; returns its path.

  process(window of (index in the input, row)) → (output rows, tokens processed).
  on_error: as read_rows (None: a line that is not a JSON object stops the job)."""
  if not 0 <= shard < num_shards:
    raise ValueError(f'--shard={shard}: must be in [0, --num_shards={num_shards})')
  rows = read_rows(input_path, check, on_error)
  lo, hi = shard * len(rows) // num_shards, (shard + 1) * len(rows) // num_shards
  mine = [(i, row) for i, (_, row) in enumerate(rows)][lo:hi]
  path = shard_path(output, shard, num_shards)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  done = done_rows(path)
  if done > len(mine):
    raise ValueError(f'{path} holds {done} rows but shard {shard} of {num_shards} of '
                     f'{input_path} has {len(mine)}: a different input or sharding? Move '
                     'the output away to start over')
  if done:
    logging.info('%s: %d of %d rows done; resuming', path, done, len(mine))
  start, tokens = time.perf_counter(), 0
  with open(path, 'a', encoding='utf-8') as f, tqdm(
      total=len(mine), initial=done, desc=desc, unit='row', disable=None) as bar:
    for at in range(done, len(mine), window):
      out, n = process(mine[at:at + window])
      f.write(''.join(_line(r) for r in out))
      f.flush()
      os.fsync(f.fileno())
      tokens += n
      bar.update(len(out))
      bar.set_postfix_str(f'{tokens / max(time.perf_counter() - start, 1e-9):.1f} tok/s')
      _log_progress(desc, at + len(out), done, len(mine), tokens, start)
  logging.info('%s: %d rows, %d tokens in %.1f s', path, len(mine) - done, tokens,
               time.perf_counter() - start)
  return path


def _log_progress(desc: str, at: int, done: int, total: int, tokens: int, start: float
                  ) -> None:
  """rows done / total, rates and the ETA in the log (tqdm's bar shows on a TTY only)."""
  elapsed = max(time.perf_counter() - start, 1e-9)
  rate = (at - done) / elapsed
  eta = (total - at) / rate if rate > 0 else float('inf')
  logging.log_every_n_seconds(logging.INFO, '%s: %d/%d rows, %.2f rows/s, %.1f tok/s, ETA %s',
                              10, desc, at, total, rate, tokens / elapsed,
                              time.strftime('%H:%M:%S', time.gmtime(eta)) if eta < 1e7 else '?')


def _line(row: Row) -> str:
  return json.dumps(row, ensure_ascii=False) + '\n'
