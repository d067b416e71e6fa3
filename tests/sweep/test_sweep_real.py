"""A real 2-point sweep end to end (configs/finetune.py:tiny on synthetic data and a
synthetic two-half suite): train, evaluate both halves, collect; then the same command
again trains and evaluates nothing."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.eval.synthetic_suite import write_halved_suite
from tests.train_fixtures import ROOT, load_config, train_env, write_training_data

pytestmark = pytest.mark.slow


def _files(sweep_dir):
  """Every checkpoint and metrics file of the points, with its size and mtime."""
  out = {}
  for root, _, files in os.walk(sweep_dir):
    if 'checkpoints' in root or any(f == 'metrics.jsonl' for f in files):
      for f in files:
        path = os.path.join(root, f)
        out[path] = (os.path.getsize(path), os.path.getmtime(path))
  return out


def test_two_point_sweep_then_a_rerun_that_does_nothing(tmp_path):
  data = str(tmp_path / 'data')
  config = load_config('finetune')
  write_training_data(data, config, n=48)
  write_halved_suite(tmp_path / 'suite')
  sweep_dir = tmp_path / 'sweep'
  cmd = [sys.executable, '-m', 'gemini_embed.sweep', f'--config={ROOT}/configs/finetune.py:tiny',
         f'--workdir={sweep_dir}', '--mode=dirichlet', '--n=2', '--prior=rates',
         f'--suite={tmp_path / "suite"}', '--config.init_from=', f'--config.data.root={data}']
  first = subprocess.run(cmd, env=train_env(1), capture_output=True, text=True, timeout=900,
                         cwd=ROOT)
  assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
  metrics = pd.read_csv(sweep_dir / 'metrics.csv', index_col='point')
  assert len(metrics) == 2 and (metrics['state'] == 'finished').all()
  assert metrics['select/mean_task@96'].notna().all()
  assert metrics['report/mean_task@96/lo'].notna().all()
  best = json.loads((sweep_dir / 'best.json').read_text())
  assert best['point'] in metrics.index
  assert (sweep_dir / 'table.md').exists() and (sweep_dir / 'plots' / 'score_vs_rate.png').exists()
  with open(sweep_dir / best['point'] / 'metrics.jsonl') as f:
    datasets = {row['dataset'] for row in map(json.loads, f) if 'loss' in row}
  assert datasets and datasets <= set(config.data.datasets.keys())

  before = _files(sweep_dir)
  again = subprocess.run(cmd, env=train_env(1), capture_output=True, text=True, timeout=900,
                         cwd=ROOT)
  assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
  assert again.stdout.count('not retrained') == 2 and '\n$ ' not in again.stdout
  assert _files(sweep_dir) == before  # no step trained, no checkpoint written
  assert json.loads((sweep_dir / 'best.json').read_text())['point'] == best['point']
