"""A learned temperature through the real trainer: τ moves, model.json records it,
the checkpoint carries `log_temperature`, a resumed run continues bitwise, and the
tools restore the same tree."""

import json
import math
import shutil
import subprocess

import jax
import numpy as np
import pytest

from gemini_embed.encoding import load_run
from tests.train_fixtures import (final_params, load_config, read_metrics, train_command,
                                  train_env, write_training_data)

ARGS = ('--config.total_steps=4', '--config.checkpoint.every=2', '--config.log_every=1',
        '--config.loss.learn_temperature=true', "--config.optim.lr_mults=(('temperature', 100.0),)")


def _train(workdir, data_root):
  out = subprocess.run(train_command(str(workdir), data_root, *ARGS), env=train_env(1),
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-4000:]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('data'))
  write_training_data(root, load_config('prefinetune'))
  workdir = tmp_path_factory.mktemp('tau')
  _train(workdir, root)
  return workdir, root


def test_tau_is_a_trained_parameter_recorded_in_model_json(run):
  workdir, _ = run
  assert json.loads((workdir / 'model.json').read_text())['learned_temperature'] is True
  taus = [r['temperature'] for r in read_metrics(str(workdir))]
  assert taus[0] == pytest.approx(0.05, rel=1e-6)  # step 1 uses the initial τ
  assert len(taus) == 4 and taus[1] == taus[0]       # the warm-up's first lr is 0
  assert len(set(taus[1:])) == 3                     # then every update moves it
  params, step = final_params(str(workdir))
  assert step == 4
  # the checkpoint holds τ after update 4, which moved on from the τ step 4 used
  saved = math.exp(float(params['log_temperature']))
  assert saved != taus[-1] and abs(saved - 0.05) > abs(taus[-1] - 0.05) * 0.9


def test_resumed_run_with_learned_tau_continues_bitwise(run, tmp_path):
  workdir, root = run
  resumed = tmp_path / 'resumed'
  shutil.copytree(workdir, resumed)
  shutil.rmtree(resumed / 'checkpoints' / '4')  # as if killed after saving step 2
  _train(resumed, root)
  want, _ = final_params(str(workdir))
  got, step = final_params(str(resumed))
  assert step == 4
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_array_equal(a, b)


def test_tools_restore_the_tree_with_tau(run):
  workdir, _ = run
  model = load_run(str(workdir), mesh_sizes={'data': -1}).model
  want, _ = final_params(str(workdir))
  assert float(model.log_temperature[...]) == float(want['log_temperature'])
