"""Running the points of a sweep: each is `train` into its own workdir, then `evaluate` on
both halves of the dev suite (the project's own commands, as the demo runs them).

    local   --jobs points at a time on this machine; each job's threads are capped to its
            share of the cores (XLA intra-op threads, OMP), and all share one JAX
            compilation cache (the points compile the same shapes)
    pod     each unfinished point is handed to `launch/pod.py run` once, from this host;
            a later rerun of the sweep evaluates the points whose runs have finished

Reruns skip what is done: training when the point's status.json says finished
(run_status.py), evaluation when DIR/<point>/eval/evaluated.json names the step the
results score. An unfinished run resumes: its train command is rerun.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import shlex
import subprocess
import sys
import threading
from concurrent import futures

from absl import logging

from gemini_embed.run_status import finished, read_status

HALVES = ('select', 'report')


@dataclasses.dataclass(frozen=True)
class Point:
  name: str
  overrides: dict
  workdir: str
  train: list[str]        # the train command line (python -m gemini_embed.train ...)

  def results(self, half: str) -> str:
    return os.path.join(self.workdir, 'eval', f'{half}.json')


def train_command(config_arg: str, workdir: str, overrides: dict, passthrough: list[str]
                  ) -> list[str]:
  return [sys.executable, '-m', 'gemini_embed.train', f'--config={config_arg}',
          f'--workdir={workdir}', *passthrough,
          *(f'--config.{k}={v}' for k, v in overrides.items())]


def evaluate_command(point: Point, suite: str, half: str, dims: list[int]) -> list[str]:
  return [sys.executable, '-m', 'gemini_embed.evaluate', f'--workdir={point.workdir}',
          f'--suite={suite}', f'--half={half}', f'--output={point.results(half)}', '--peers=none',
          '--dims=' + ','.join(map(str, dims))]


def pod_command(point: Point, tpu: str, zone: str) -> list[str]:
  """`launch/pod.py run -- TRAIN_FLAGS`: the pod runs the train command's flags."""
  return [sys.executable, 'launch/pod.py', f'--tpu={tpu}', f'--zone={zone}', 'run', '--',
          *point.train[3:]]


def evaluated(point: Point, suite: str, dims: list[int]) -> bool:
  """Both halves of `suite` score the run's final step at `dims` (eval/evaluated.json)."""
  record = os.path.join(point.workdir, 'eval', 'evaluated.json')
  if not (os.path.exists(record) and all(os.path.exists(point.results(h)) for h in HALVES)):
    return False
  with open(record) as f:
    record = json.load(f)
  return record == dict(step=(read_status(point.workdir) or {}).get('step'), suite=suite,
                        dims=dims)


def thread_env(jobs: int, cores: int | None = None) -> dict[str, str]:
  """Environment of one of `jobs` concurrent runs: its share of the cores, at least one.
  (XLA reads `intra_op_parallelism_threads` only after a `--` flag, and one thread also
  needs Eigen's pool off; the launcher pins each job to its cores as well.)"""
  threads = max(1, (cores or len(os.sched_getaffinity(0))) // jobs)
  env = dict(os.environ)
  xla = [f for f in env.get('XLA_FLAGS', '').split()
         if not f.startswith(('--xla_cpu_multi_thread_eigen', 'intra_op_parallelism_threads'))]
  if threads == 1:
    xla += ['--xla_cpu_multi_thread_eigen=false', 'intra_op_parallelism_threads=1']
  env.update(XLA_FLAGS=' '.join(xla), OMP_NUM_THREADS=str(threads),
             OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
  return env


def core_slots(jobs: int) -> list[set[int]]:
  """The cores of each of `jobs` slots (this process's CPUs split evenly; shared when
  there are more jobs than cores)."""
  cpus = sorted(os.sched_getaffinity(0))
  per = max(1, len(cpus) // jobs)
  return [set(cpus[(i * per) % len(cpus):(i * per) % len(cpus) + per]) for i in range(jobs)]


class LocalLauncher:
  """Trains and evaluates points, `jobs` at a time; each job's output goes to
  SWEEP_DIR/logs/<point>.log."""

  def __init__(self, sweep_dir: str, suite: str | None, dims: list[int], jobs: int):
    self.log_dir = os.path.join(sweep_dir, 'logs')
    self.suite, self.dims, self.jobs = suite, dims, jobs
    self.env = thread_env(jobs)
    self.env.setdefault('JAX_COMPILATION_CACHE_DIR',
                        os.path.abspath(os.path.join(sweep_dir, 'jax_cache')))
    self.env.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '1')
    self._print = threading.Lock()
    self._slots: queue.Queue = queue.Queue()
    for cores in core_slots(jobs):
      self._slots.put(cores)

  def _run(self, point: Point, title: str, cmd: list[str]) -> None:
    with self._print:
      print(f'[{point.name}] {title}\n$ {shlex.join(cmd)}', flush=True)
    cores = self._slots.get()
    pin = (lambda: os.sched_setaffinity(0, cores)) if self.jobs > 1 else None
    try:
      with open(os.path.join(self.log_dir, f'{point.name}.log'), 'a') as log:
        log.write(f'$ {shlex.join(cmd)}\n')
        log.flush()
        rc = subprocess.run(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=pin).returncode
    finally:
      self._slots.put(cores)
    if rc:
      raise RuntimeError(f'[{point.name}] {title} exited with {rc}; its output is in '
                         f'{self.log_dir}/{point.name}.log; rerun the sweep to resume')

  def run_point(self, point: Point) -> None:
    if finished(point.workdir):
      print(f'[{point.name}] trained (status.json: finished): not retrained', flush=True)
    else:
      self._run(point, 'train', point.train)
    if self.suite and not evaluated(point, self.suite, self.dims):
      for half in HALVES:
        self._run(point, f'evaluate ({half} half)',
                  evaluate_command(point, self.suite, half, self.dims))
      with open(os.path.join(point.workdir, 'eval', 'evaluated.json'), 'w') as f:
        json.dump(dict(step=read_status(point.workdir)['step'], suite=self.suite,
                       dims=self.dims), f)

  def run(self, points: list[Point]) -> list[str]:
    """Runs every point; returns the errors of those that failed (the others go on)."""
    os.makedirs(self.log_dir, exist_ok=True)
    errors = []
    with futures.ThreadPoolExecutor(self.jobs) as pool:
      for job in [pool.submit(self.run_point, p) for p in points]:
        try:
          job.result()
        except RuntimeError as e:
          logging.error('%s', e)
          errors.append(str(e))
    return errors


class PodLauncher:
  """Hands each unfinished point to `launch/pod.py run` (once, from this host); evaluates
  the finished ones here."""

  def __init__(self, sweep_dir: str, suite: str | None, dims: list[int], tpu: str, zone: str):
    if not tpu or not zone:
      raise ValueError('--launcher=pod needs --tpu=NAME and --zone=ZONE')
    self.tpu, self.zone = tpu, zone
    self.local = LocalLauncher(sweep_dir, suite, dims, jobs=1)

  def run(self, points: list[Point]) -> list[str]:
    os.makedirs(self.local.log_dir, exist_ok=True)
    errors = []
    for point in points:
      if not finished(point.workdir):
        cmd = pod_command(point, self.tpu, self.zone)
        print(f'[{point.name}] to the pod\n$ {shlex.join(cmd)}', flush=True)
        rc = subprocess.run(cmd).returncode
        if rc:
          errors.append(f'[{point.name}] launch/pod.py exited with {rc}')
      else:
        try:
          self.local.run_point(point)
        except RuntimeError as e:
          errors.append(str(e))
    return errors
