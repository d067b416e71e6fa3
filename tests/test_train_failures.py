"""What the trainer does when things go wrong, through its command line: a non-finite update
is never saved, a corrupt latest checkpoint is skipped on resume, a failed save stops the
run at once, and status.json + the exit code tell a finished run from a pre-empted or
failed one."""

import json
import os
import re
import shutil
import sys

import jax
import numpy as np
import pytest

from tests.train_fixtures import (final_params, load_config, read_metrics, run_train,
                                  write_training_data)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
  return write_training_data(str(tmp_path_factory.mktemp('data')), load_config('prefinetune'))


def _status(workdir) -> dict:
  with open(os.path.join(workdir, 'status.json')) as f:
    return json.load(f)


def _steps_on_disk(workdir) -> list[int]:
  return sorted(int(n) for n in os.listdir(os.path.join(workdir, 'checkpoints')) if n.isdigit())


def test_a_non_finite_update_is_never_saved(tmp_path, data_root):
  """lr=1e9: step 1's update is finite, step 2's is not. Metrics are checked only every 5
  steps, so the save of step 2 must catch it: nothing non-finite on disk, the finite step 1
  kept, and the message names the step and the last good checkpoint."""
  out = run_train(tmp_path, data_root, '--config.total_steps=10', '--config.checkpoint.every=1',
                  '--config.checkpoint.keep=1', '--config.log_every=5',
                  '--config.optim.learning_rate=1e9', devices=1, check=False)
  assert out.returncode == 1, out.stderr[-3000:]
  steps = _steps_on_disk(tmp_path)
  assert steps, 'the finite first update was not kept'
  for step in steps:
    params, _ = final_params(str(tmp_path), step)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params)), f'step {step} is not finite'
  bad = int(re.search(r'step (\d+): the update made the train state non-finite', out.stderr)[1])
  assert bad == steps[-1] + 1
  assert f'last good checkpoint is step {steps[-1]} in {tmp_path}/checkpoints' in out.stderr
  status = _status(tmp_path)
  assert status['state'] == 'failed' and status['step'] == bad and 'non-finite' in status['reason']
  assert status['last_checkpoint'] == steps[-1]


@pytest.fixture(scope='module')
def three_checkpoints(tmp_path_factory, data_root):
  """A finished 3-step run with a checkpoint at every step, and its step-3 params."""
  workdir = str(tmp_path_factory.mktemp('three'))
  run_train(workdir, data_root, '--config.total_steps=3', '--config.checkpoint.every=1',
            devices=1)
  return workdir, final_params(workdir, 3)[0]


def test_a_finished_run_says_so_and_a_rerun_changes_nothing(tmp_path, data_root,
                                                           three_checkpoints):
  workdir = str(tmp_path / 'run')
  shutil.copytree(three_checkpoints[0], workdir)
  assert _status(workdir) == dict(_status(workdir), state='finished', step=3, total_steps=3,
                                  last_checkpoint=3)
  rows = len(read_metrics(workdir))
  run_train(workdir, data_root, '--config.total_steps=3', '--config.checkpoint.every=1',
            devices=1)
  assert len(read_metrics(workdir)) == rows
  assert _steps_on_disk(workdir) == [1, 2, 3]
  assert _status(workdir)['state'] == 'finished' and _status(workdir)['step'] == 3


def _truncate_the_data_files(step_dir):
  """Every params data file cut to half (OCDBT keeps some files the manifest no longer
  reads, so cutting one chosen by name would not always break the checkpoint)."""
  data = os.path.join(step_dir, 'params', 'ocdbt.process_0', 'd')
  for name in os.listdir(data):
    path = os.path.join(data, name)
    os.truncate(path, os.path.getsize(path) // 2)


def _delete_the_manifest(step_dir):
  os.remove(os.path.join(step_dir, 'params', 'manifest.ocdbt'))


@pytest.mark.parametrize('corrupt', [_truncate_the_data_files, _delete_the_manifest])
def test_a_corrupt_latest_checkpoint_is_skipped_on_resume(tmp_path, data_root, three_checkpoints,
                                                          corrupt):
  source, step3_params = three_checkpoints
  workdir = str(tmp_path / 'run')
  shutil.copytree(source, workdir)
  corrupt(os.path.join(workdir, 'checkpoints', '3'))
  out = run_train(workdir, data_root, '--config.total_steps=3', '--config.checkpoint.every=1',
                  devices=1)
  skipped = [line for line in out.stderr.splitlines() if 'checkpoint step 3' in line]
  assert skipped and 'moved to' in skipped[0] and len(skipped[0]) < 600, skipped
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', 'corrupt-3'))
  assert 'resumed from' in out.stderr and 'at step 2' in out.stderr
  assert [r['step'] for r in read_metrics(workdir)][-2:] == [3, 3]  # step 3 trained again
  params, step = final_params(workdir)
  assert step == 3
  for a, b in zip(jax.tree.leaves(step3_params), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)  # the same step 3 as the uninterrupted run
  assert _status(workdir)['state'] == 'finished'


def test_a_failed_async_save_stops_the_run_at_once_and_keeps_the_last_checkpoint(
    tmp_path, data_root):
  """The disk fills at step 20's save (keep=1 would rotate step 10 away). Unchecked, the
  failure surfaces only at the next save (step 30); the run must stop well before it."""
  out = run_train(tmp_path, data_root, '--config.total_steps=60', '--config.checkpoint.every=10',
                  '--config.checkpoint.keep=1', devices=1, check=False,
                  command=[sys.executable, '-m', 'tests.fault_injection'],
                  env={'ENOSPC_FROM_STEP': '20'})
  assert out.returncode == 1, out.stderr[-3000:]
  said = [line for line in out.stderr.splitlines() if 'could not be saved' in line]
  assert said and 'step 20' in said[0] and f'{tmp_path}/checkpoints' in said[0], out.stderr[-3000:]
  assert 'No space left on device' in said[0] and re.search(r'[\d.]+ [KMGT]?i?B free', said[0])
  assert len(said[0]) < 600
  assert max(r['step'] for r in read_metrics(str(tmp_path))) < 30
  assert _steps_on_disk(tmp_path) == [10]
  _, step = final_params(str(tmp_path))
  assert step == 10
  status = _status(tmp_path)
  assert status['state'] == 'failed' and status['step'] == 20
  assert status['last_checkpoint'] == 10
