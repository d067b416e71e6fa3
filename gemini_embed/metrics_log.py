"""Where training metrics go: `metrics.jsonl` and TensorBoard in the workdir
(process 0 only), and one progress line with ETA on the console.

metrics.jsonl is one JSON object per line, `{"step", "time", <metric>: float, ...}`, the
rows of every run of the workdir in the order written (a resumed run adds after the
earlier ones). A local file is appended to and flushed per row. An object store
(gs://) cannot append: the file is rewritten whole (the earlier runs' rows read back at
start, then this run's) at most every REMOTE_FLUSH_S seconds and at close, so readers
see the same file either way; a run killed outright loses at most that much of it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Mapping

import jax

from gemini_embed import storage


def _summary_writer():
  """tensorboardX's SummaryWriter, imported without torch: tensorboardX.writer imports
  torch whenever it is installed (only to accept torch tensors; the peers extra installs
  it), which is seconds of every training run's start-up; scalars from floats need none of
  it. A process that already holds torch keeps it."""
  blocked = 'torch' not in sys.modules
  if blocked:
    sys.modules['torch'] = None  # `import torch` raises ImportError, which tensorboardX catches
  try:
    from tensorboardX import SummaryWriter
  finally:
    if blocked:
      del sys.modules['torch']
  return SummaryWriter

METRICS_FILE = 'metrics.jsonl'
REMOTE_FLUSH_S = 10.0  # tests shorten it with GEMINI_EMBED_METRICS_FLUSH_S


class MetricsLog:

  def __init__(self, workdir: str, total_steps: int):
    self.total_steps = total_steps
    self.enabled = jax.process_index() == 0
    self._t0 = time.time()
    self._start_step: int | None = None
    self._tb = None
    self._jsonl = None  # the local file, appended to
    self._rows: list[str] = []  # an object store's file, rewritten whole
    self._flushed = 0.0
    self._flush_s = float(os.environ.get('GEMINI_EMBED_METRICS_FLUSH_S', REMOTE_FLUSH_S))
    if self.enabled:
      directory = storage.makedirs(workdir)
      self._path = directory / METRICS_FILE
      if storage.is_remote(directory):
        if self._path.exists():
          self._rows = self._path.read_text().splitlines(keepends=True)
      else:
        self._jsonl = self._path.open('a')
      self._tb = _summary_writer()(str(directory / 'tensorboard'))

  def write(self, step: int, metrics: Mapping[str, float]) -> None:
    if not self.enabled:
      return
    row = {'step': step, 'time': time.time()}
    # Numbers as floats; a string (the batch's dataset) as it is, and not a TB scalar.
    row.update({k: v if isinstance(v, str) else float(v) for k, v in metrics.items()})
    for k, v in metrics.items():
      if not isinstance(v, str):
        self._tb.add_scalar(k, float(v), step)
    if self._jsonl is not None:
      self._jsonl.write(json.dumps(row) + '\n')
      self._jsonl.flush()
      self._tb.flush()
    else:
      self._rows.append(json.dumps(row) + '\n')
      if time.time() - self._flushed >= self._flush_s:
        self._flush_remote()

  def _flush_remote(self) -> None:
    self._path.write_text(''.join(self._rows))  # one object write: whole or not at all
    self._tb.flush()
    self._flushed = time.time()

  def progress(self, step: int, metrics: Mapping[str, float]) -> None:
    if not self.enabled:
      return
    if self._start_step is None:
      self._start_step, self._t0 = step, time.time()
    done = step - self._start_step
    rate = done / max(time.time() - self._t0, 1e-9)
    eta = (self.total_steps - step) / rate if rate > 0 else math.inf
    eta_s = f'{eta/60:5.1f} min' if math.isfinite(eta) else '   ? min'
    parts = [f'step {step:6d}/{self.total_steps}', f'ETA {eta_s}']
    for key in ('loss', 'acc', 'lr', 'examples_per_s', 'mfu'):
      if key in metrics:
        parts.append(f'{key} {metrics[key]:.4g}')
    print(' | '.join(parts), flush=True)

  def close(self) -> None:
    if not self.enabled:
      return
    if self._jsonl is not None:
      self._jsonl.close()
    else:
      self._flush_remote()
    self._tb.close()
