"""The training loop and its periodic pieces (levanter-style hooks, each `every` N steps).

    hooks = [MetricsHook(...), EvalHook(...)]          # after each step, when due
    state, step, preempted = run(state, step, total, step_fn, batches, hooks, checkpoints)

`run` owns only what every step does: next batch → global arrays → jitted step →
poll the save in flight → throughput bookkeeping → due hooks → checkpoint or
preemption save, each only of a finite state. Everything periodic is a hook; the
loop reads in ten lines. What stops it (a non-finite state, a failed save) raises
run_status.RunFailed.
"""

from __future__ import annotations

import dataclasses
import signal
import time
import zlib
from typing import Any, Callable, Iterator, Protocol

import jax
import numpy as np
from absl import logging
from flax import nnx
from jax.experimental import multihost_utils

from gemini_embed import checkpoint, flops
from gemini_embed.data import pipeline
from gemini_embed.data.batch import Batch, PackedBatch
from gemini_embed.metrics_log import MetricsLog
from gemini_embed.run_status import PREEMPTED_EXIT_CODE, RunFailed


def due(every: int, step: int, total: int) -> bool:
  """Every `every` steps (0 = never) and at the last step."""
  return bool(every) and (step % every == 0 or step == total)


class Preemption:
  """Has a preemption notice (SIGTERM) reached every process? Then save and stop.

  Multi-process runs ask JAX's preemption sync point (`reached_preemption_sync_point`):
  its notifier owns SIGTERM there and agrees on one step for all hosts in the
  background, so the loop needs no collective of its own. A Python SIGTERM handler
  would replace JAX's (the last `signal` call wins), so it is installed only when
  jax.distributed is not initialised (the sync point then always answers False).
  """

  def __init__(self):
    self.requested = False
    self.distributed = jax.process_count() > 1
    if not self.distributed:
      signal.signal(signal.SIGTERM, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def reached(self, step: int) -> bool:
    if self.distributed:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested


class Throughput:
  """Examples, tokens, model FLOPs and steps since the last report, compilation and eval
  excluded. Metrics (`report`):

    examples_per_s, tokens_per_s (real tokens), step_time
    model_flops_per_s       model FLOP/s of the padded shapes the step computes
    model_flops_real_per_s  model FLOP/s on real tokens (each text alone: flops.py)
    mfu, mfu_real           the two over `peak` (only when a peak is configured)

  Each process counts its own batch × the process count (shapes are equal on every
  process; real tokens are this process's sample of the global batch).
  """

  def __init__(self, process_count: int,
               count_flops: Callable[[Batch | PackedBatch], flops.StepFlops]):
    self.process_count = process_count
    self.count_flops = count_flops
    self.reset()

  def reset(self) -> None:
    self.start, self.examples, self.tokens, self.steps = time.time(), 0, 0, 0
    self.padded_flops, self.real_flops = 0.0, 0.0

  def count(self, local: Batch | PackedBatch) -> None:
    self.examples += local.size * self.process_count
    self.tokens += local.num_tokens() * self.process_count
    step = self.count_flops(local)
    self.padded_flops += step.padded * self.process_count
    self.real_flops += step.real * self.process_count
    self.steps += 1

  def report(self, peak: float) -> dict[str, float]:
    """Rates since the last reset ({} when no step was timed); then resets."""
    out = {}
    if self.steps:
      dt = time.time() - self.start
      out = dict(examples_per_s=self.examples / dt, tokens_per_s=self.tokens / dt,
                 step_time=dt / self.steps, model_flops_per_s=self.padded_flops / dt,
                 model_flops_real_per_s=self.real_flops / dt)
      if peak:
        out['mfu'] = out['model_flops_per_s'] / peak
        out['mfu_real'] = out['model_flops_real_per_s'] / peak
    self.reset()
    return out


def fingerprint(local: Batch) -> int:
  """24 bits identifying this process's batch (exact in float metrics): resume checks."""
  return zlib.crc32(local.query_id.tobytes() + local.pos_id.tobytes()) & 0xFFFFFF


class Hook(Protocol):
  every: int

  def __call__(self, step: int, state: nnx.State, metrics: dict, local: Batch) -> None: ...


@dataclasses.dataclass
class MetricsHook:
  """Host-side NaN check, data counters, throughput and MFU → metrics.jsonl + progress."""
  every: int
  log: MetricsLog
  data_iter: Any
  traces: list
  throughput: Throughput
  peak_flops: float
  checkpoints: checkpoint.Checkpointer

  def __call__(self, step, state, metrics, local):
    metrics = jax.device_get(metrics)
    bad = [k for k, v in metrics.items() if not np.all(np.isfinite(v))]
    if bad:
      self.checkpoints.wait()
      raise RunFailed(step, (
          f'step {step}: metric {bad[0]}={metrics[bad[0]]} is not finite; stopping. The last '
          f'good checkpoint is step {self.checkpoints.latest_step()} in '
          f'{self.checkpoints.directory}'))
    metrics.update({f'data/{k}': v for k, v in self.data_iter.bad_input_counts().items()})
    metrics.update({'compilations': len(self.traces), 'data/fingerprint': fingerprint(local)})
    # The batch this step trained on is task-homogeneous: its loss belongs to one dataset.
    metrics['dataset'] = self.data_iter.dataset_name(step - 1)
    metrics.update(self.throughput.report(self.peak_flops))
    self.log.write(step, metrics)
    self.log.progress(step, metrics)


@dataclasses.dataclass
class EvalHook:
  """Periodic dev retrieval (train_eval.DevRetrievalEval) of the current model."""
  every: int
  evaluate: Callable[[nnx.Module], dict[str, float]]
  graphdef: Any
  log: MetricsLog
  throughput: Throughput

  def __call__(self, step, state, metrics, local):
    self.log.write(step, self.evaluate(nnx.merge(self.graphdef, state).model))
    self.throughput.start = time.time()  # keep evaluation out of the throughput numbers


def train_flops(model_cfg, embed_dim: int) -> Callable[[Batch | PackedBatch], flops.StepFlops]:
  """Batch → its step's model FLOPs, padded and on real tokens (flops.py)."""

  def count(local: Batch | PackedBatch) -> flops.StepFlops:
    if isinstance(local, PackedBatch):
      rows, length = local.tokens.shape
      padded = flops.packed_train_step_flops(model_cfg, embed_dim, rows, length, local.num_texts)
    else:
      padded = flops.train_step_flops(model_cfg, embed_dim, pipeline.batch_shapes(local))
    return flops.StepFlops(padded, flops.real_train_flops(model_cfg, embed_dim,
                                                          local.text_lengths()))
  return count


def split_state(state: nnx.State) -> tuple[dict, dict]:
  """(params, optimizer) pure dicts: the checkpoint's items."""
  pure = nnx.to_pure_dict(state)
  return pure['model'], pure['optimizer']


def save_if_finite(step: int, state: nnx.State, finite: jax.Array, batches,
                   checkpoints: checkpoint.Checkpointer, force: bool = False) -> None:
  """Saves `state` unless the step found a non-finite float in it (the one bool is
  fetched only here): then stops, so rotation never deletes the last good checkpoint."""
  if not jax.device_get(finite):
    checkpoints.wait()
    raise RunFailed(step, (
        f'step {step}: the update made the train state non-finite (NaN/Inf in the parameters '
        f'or optimiser moments); it is not saved. The last good checkpoint is step '
        f'{checkpoints.latest_step()} in {checkpoints.directory}'))
  checkpoints.save(step, *split_state(state), batches, force=force)


def run(state: nnx.State, step: int, total_steps: int, step_fn, traces: list,
        batches: Iterator[Batch], to_global: Callable[[Batch], Batch], hooks: list[Hook],
        throughput: Throughput, checkpoints: checkpoint.Checkpointer,
        checkpoint_every: int) -> tuple[nnx.State, int, bool]:
  """Steps until `total_steps` or a preemption (saved, then returns early):
  (state, step, preempted)."""
  preemption = Preemption()
  shapes_seen = set()
  while step < total_steps:
    local = next(batches)
    shapes_seen.add(tuple(jax.tree.leaves(jax.tree.map(np.shape, local))))
    compiled_before = len(traces)
    state, metrics, finite = step_fn(state, to_global(local))
    step += 1
    checkpoints.check_async_save()  # while the step runs: a failed save stops the run now
    assert len(traces) <= len(shapes_seen), \
        f'step recompiled: {len(traces)} traces for {len(shapes_seen)} batch shapes'
    if len(traces) > compiled_before:  # keep compilation out of the throughput numbers
      jax.block_until_ready(state)
      logging.info('step compiled for batch shapes #%d in %.1f s', len(traces),
                   time.time() - throughput.start)
      throughput.reset()
    else:
      throughput.count(local)
    for hook in hooks:
      if due(hook.every, step, total_steps):
        hook(step, state, metrics, local)
    if preemption.reached(step):
      save_if_finite(step, state, finite, batches, checkpoints, force=True)
      checkpoints.wait()
      logging.warning('SIGTERM: saved step %d to %s; exiting with code %d (pre-empted)', step,
                      checkpoints.directory, PREEMPTED_EXIT_CODE)
      return state, step, True
    if due(checkpoint_every, step, total_steps):
      save_if_finite(step, state, finite, batches, checkpoints)
  return state, step, False
