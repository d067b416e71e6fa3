"""Hermetic training data for trainer tests: made-up (query, positive, negative)
rows for every dataset a config's stage reads, written under a data root."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import tempfile

import jax
import numpy as np
from flax import nnx

from gemini_embed.checkpoint import restore_embedder

COLOURS = ('red', 'blue', 'green', 'amber', 'violet', 'grey', 'white', 'black')
THINGS = ('kettle', 'bridge', 'lantern', 'violin', 'harbour', 'tractor', 'orchard', 'compass')


def synthetic_rows(name: str, n: int, seed: int) -> list[dict]:
  rng = np.random.default_rng(seed)
  rows = []
  for i in range(n):
    c, t = rng.choice(COLOURS), rng.choice(THINGS)
    c2 = COLOURS[(COLOURS.index(c) + 1) % len(COLOURS)]
    rows.append({'query': f'{name}: which {t} is {c} (#{i})?',
                 'positive': f'The {t} number {i} is painted {c} and stands near the {name}.',
                 'negative': f'The {t} number {i} is painted {c2}.',
                 'title': f'{t} {i}'})
  return rows


def write_training_data(root: str, config, n: int = 96) -> str:
  """One JSONL file per dataset entry of `config` (its `files` relative to root)."""
  for k, (name, entry) in enumerate(sorted(config.data.datasets.items())):
    path = os.path.join(root, entry.files)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      for row in synthetic_rows(name, n, seed=k):
        f.write(json.dumps(row) + '\n')
  return root


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str, arg: str = 'tiny'):
  from gemini_embed.configlib import load_config_file
  return load_config_file(os.path.join(ROOT, 'configs', f'{name}.py'), arg)


def train_command(workdir: str, data_root: str, *overrides: str, config: str = 'prefinetune',
                  arg: str = 'tiny') -> list[str]:
  import sys
  return [sys.executable, '-m', 'gemini_embed.train',
          f'--config={ROOT}/configs/{config}.py:{arg}', f'--workdir={workdir}',
          f'--config.data.root={data_root}', *overrides]


@functools.cache
def _compile_cache() -> str:
  """One JAX persistent compilation cache for every subprocess of the session: the CLI
  runs compile the same tiny steps again and again (~20 s each on 2 cores)."""
  path = tempfile.mkdtemp(prefix='gemini_embed-test-jax-cache-')
  atexit.register(shutil.rmtree, path, ignore_errors=True)
  return path


def train_env(devices: int) -> dict[str, str]:
  env = dict(os.environ)
  env.setdefault('JAX_COMPILATION_CACHE_DIR', _compile_cache())
  env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
  env['GEMINI_EMBED_LEASE_SETTLE_S'] = '0.05'  # the workdir lease's read-back wait
  return env


def run_train(workdir, data_root: str, *overrides: str, devices: int = 8,
              config: str = 'prefinetune', arg: str = 'tiny', check: bool = True,
              command: list[str] | None = None, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess:
  """`python -m gemini_embed.train` (or `command`, same arguments) to completion."""
  cmd = train_command(str(workdir), data_root, *overrides, config=config, arg=arg)
  if command:
    cmd = command + cmd[3:]
  out = subprocess.run(cmd, env={**train_env(devices), **(env or {})}, capture_output=True,
                       text=True, timeout=600)
  if check and out.returncode:
    raise AssertionError(f'train failed ({out.returncode}):\n{out.stderr[-4000:]}')
  return out


def read_metrics(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def final_params(workdir: str, step: int | None = None) -> tuple[dict, int]:
  """A checkpoint's params (default: the latest) as host NumPy, restored without the trainer."""
  model, step = restore_embedder(workdir, step)
  return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model))), step
