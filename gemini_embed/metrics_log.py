"""Where training metrics go: `metrics.jsonl` and TensorBoard in the workdir
(process 0 only), and one progress line with ETA on the console."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Mapping

import jax
from tensorboardX import SummaryWriter


class MetricsLog:

  def __init__(self, workdir: str, total_steps: int):
    self.total_steps = total_steps
    self.enabled = jax.process_index() == 0
    self._t0 = time.time()
    self._start_step: int | None = None
    self._tb = None
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, metrics: Mapping[str, float]) -> None:
    if not self.enabled:
      return
    row = {'step': step, 'time': time.time()}
    # Numbers as floats; a string (the batch's dataset) as it is, and not a TB scalar.
    row.update({k: v if isinstance(v, str) else float(v) for k, v in metrics.items()})
    self._jsonl.write(json.dumps(row) + '\n')
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in metrics.items():
        if not isinstance(v, str):
          self._tb.add_scalar(k, float(v), step)
      self._tb.flush()

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
    if self.enabled:
      self._jsonl.close()
      if self._tb is not None:
        self._tb.close()
