"""Trainer proofs, each through the real command line (`python -m gemini_embed.train`):
1 vs 8 devices, SIGKILL + rerun = uninterrupted run, SIGTERM saves, one compile per bucket."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import warnings

import jax
import numpy as np
import pytest
from tokenizers import Tokenizer

from gemini_embed.data import pipeline
from gemini_embed.run_status import PREEMPTED_EXIT_CODE
from tests.train_fixtures import (final_params, load_config, read_metrics, run_train,
                                  train_command, train_env, write_training_data)

STEPS = ('--config.total_steps=6', '--config.checkpoint.every=2', '--config.log_every=1')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('data'))
  write_training_data(root, load_config('prefinetune'))
  write_training_data(root, load_config('finetune'))
  return root


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, data_root):
  workdir = tmp_path_factory.mktemp('full')
  run_train(workdir, data_root, *STEPS, '--config.mesh.fsdp=2', '--config.mesh.tensor=2')
  return str(workdir)


def test_one_device_and_8_device_mesh_give_the_same_losses(tmp_path, data_root, uninterrupted):
  run_train(tmp_path, data_root, *STEPS, devices=1)
  one = [r['loss'] for r in read_metrics(str(tmp_path))]
  eight = [r['loss'] for r in read_metrics(uninterrupted)]
  assert len(one) == len(eight) == 6
  rel = np.max(np.abs(np.array(one) - np.array(eight)) / np.abs(np.array(one)))
  print('1 vs 8 device losses', one, eight, 'max rel diff', rel)
  assert rel < 1e-5
  assert len(set(np.round(one, 4))) > 1  # the run really trained (losses move)


def test_one_compilation_per_shape_bucket(uninterrupted, data_root):
  """The logged compile count after each step = the distinct batch shapes the
  same config's pipeline (the run's own tokenizer) had produced by then: no
  recompile for a repeated shape (e.g. a donated state whose sharding drifts).
  (This tiny data fills one bucket pair; tests/data/test_pipeline.py compiles
  a step over several.)"""
  config = load_config('prefinetune')
  config.data.root = data_root
  tokenizer = Tokenizer.from_file(os.path.join(uninterrupted, 'tokenizer.json'))
  batches = pipeline.train_iterator(config, tokenizer, config.model.family, 0, 1)
  shapes, want = set(), []
  for _ in range(6):
    shapes.add(tuple(pipeline.batch_shapes(next(batches))))
    want.append(len(shapes))
  rows = read_metrics(uninterrupted)
  assert [r['step'] for r in rows] == [1, 2, 3, 4, 5, 6]
  assert [r['compilations'] for r in rows] == want


def test_packed_run_trains_like_the_unpacked_one(tmp_path, data_root, uninterrupted):
  """config.data.pack: the same examples per step, so the same losses as the unpacked run
  (float32 tolerance); one compile per row count; FLOP/s logged padded and on real tokens."""
  run_train(tmp_path, data_root, *STEPS, '--config.mesh.fsdp=2', '--config.mesh.tensor=2',
            '--config.data.pack=true')
  packed, plain = read_metrics(str(tmp_path)), read_metrics(uninterrupted)
  np.testing.assert_allclose([r['loss'] for r in packed], [r['loss'] for r in plain], rtol=1e-4)
  assert [r['data/fingerprint'] for r in packed] == [r['data/fingerprint'] for r in plain]
  assert packed[-1]['compilations'] <= 8  # config.data.pack_row_counts
  timed = [r for r in packed + plain if 'model_flops_per_s' in r]
  assert timed and all(0 < r['model_flops_real_per_s'] <= r['model_flops_per_s'] for r in timed)


@pytest.mark.slow
def test_sigkill_then_rerun_equals_uninterrupted(tmp_path, data_root, uninterrupted):
  cmd = train_command(str(tmp_path), data_root, *STEPS, '--config.mesh.fsdp=2',
                      '--config.mesh.tensor=2', '--config.checkpoint.async_save=false')
  proc = subprocess.Popen(cmd, env=train_env(8), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not os.path.exists(tmp_path / 'checkpoints' / '2' / 'commit_success.txt'):
    assert proc.poll() is None and time.time() < deadline, 'run ended before its first checkpoint'
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = max(r['step'] for r in read_metrics(str(tmp_path)))
  assert killed_at < 6, 'the run finished before it could be killed'
  run_train(tmp_path, data_root, *STEPS, '--config.mesh.fsdp=2', '--config.mesh.tensor=2')

  ref, ref_step = final_params(uninterrupted)
  got, got_step = final_params(str(tmp_path))
  assert ref_step == got_step == 6
  for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
    np.testing.assert_array_equal(a, b)  # bitwise
  # Same batches in the same order: each step's last logged fingerprint matches.
  seen = {r['step']: r['data/fingerprint'] for r in read_metrics(str(tmp_path))}
  want = {r['step']: r['data/fingerprint'] for r in read_metrics(uninterrupted)}
  assert seen == want


@pytest.mark.slow
def test_sigterm_saves_the_current_step(tmp_path, data_root):
  cmd = train_command(str(tmp_path), data_root, '--config.total_steps=100000',
                      '--config.checkpoint.every=100000', '--config.log_every=1')
  proc = subprocess.Popen(cmd, env=train_env(8), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
  deadline = time.time() + 300
  while not (tmp_path / 'metrics.jsonl').exists() or len(read_metrics(str(tmp_path))) < 3:
    assert proc.poll() is None and time.time() < deadline
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == PREEMPTED_EXIT_CODE, err[-3000:]
  last_logged = max(r['step'] for r in read_metrics(str(tmp_path)))
  _, saved = final_params(str(tmp_path))
  assert saved == last_logged >= 3
  assert 'SIGTERM' in err
  with open(tmp_path / 'status.json') as f:
    status = json.load(f)
  assert status == dict(status, state='preempted', step=saved, total_steps=100000,
                        last_checkpoint=saved)


def test_init_from_a_workdir_loads_its_latest_params(uninterrupted):
  from flax import nnx

  from gemini_embed import sharding
  from gemini_embed.models.pretrained import load_init_from
  config = load_config('finetune', f'tiny,init_from={uninterrupted}')
  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2))
  model, _ = load_init_from(config, mesh, config.sharding_rules)
  ref, _ = final_params(uninterrupted)
  got = nnx.to_pure_dict(nnx.state(model))
  for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
    np.testing.assert_array_equal(a, np.asarray(b))


@pytest.mark.slow
def test_two_processes_sigterm_to_one_saves_one_step_for_both_and_a_rerun_resumes(
    tmp_path, data_root):
  """Two jax.distributed processes on localhost (4 CPU devices each) form one mesh. A
  pre-emption notice (SIGTERM) reaches only process 1: both agree on one step, save it
  (one checkpoint with both iterator states) and exit with the pre-emption code; the
  same command resumes there."""
  import sys
  from tests.train_fixtures import ROOT
  launch = os.path.join(ROOT, 'launch', 'local_multiprocess.sh')
  env = dict(train_env(4), PYTHON=sys.executable)

  log = tmp_path / 'stderr.log'

  def start(total):
    args = [launch, '2', *train_command(str(tmp_path), data_root, f'--config.total_steps={total}',
                                        '--config.checkpoint.every=1000', '--config.log_every=1',
                                        '--config.mesh.fsdp=2')[3:]]
    with open(log, 'w') as f:  # a file, not a pipe: nobody drains a pipe while we wait
      return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=f,
                              start_new_session=True)

  def finish(proc, timeout):
    try:
      proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
      return log.read_text(), True
    return log.read_text(), proc.returncode in (134, -signal.SIGABRT)

  proc = start(100_000)
  deadline = time.time() + 300
  while not (tmp_path / 'metrics.jsonl').exists() or len(read_metrics(str(tmp_path))) < 2:
    if proc.poll() is not None or time.time() > deadline:
      pytest.fail(f'the two-process run did not reach step 2: {log.read_text()[-3000:]}')
    time.sleep(0.1)
  with open(f'/proc/{proc.pid}/task/{proc.pid}/children') as f:
    trainers = [int(pid) for pid in f.read().split()]
  assert len(trainers) == 2
  os.kill(trainers[1], signal.SIGTERM)  # process 1 only
  err, hung = finish(proc, 300)
  assert not hung and proc.returncode == PREEMPTED_EXIT_CODE, err[-4000:]
  for i in (0, 1):
    assert f'process {i} exited with {PREEMPTED_EXIT_CODE}' in err, err[-4000:]
  _, saved = final_params(str(tmp_path))
  assert saved == max(r['step'] for r in read_metrics(str(tmp_path))) >= 2
  assert os.listdir(tmp_path / 'checkpoints') == [str(saved)]  # the pre-emption save only
  assert {'process_0-of-2.json', 'process_1-of-2.json'} <= set(os.listdir(
      tmp_path / 'checkpoints' / str(saved) / 'data_iter'))
  with open(tmp_path / 'status.json') as f:
    assert json.load(f)['state'] == 'preempted'

  # The same command (two more steps) resumes at the saved step. Open bug: now and then
  # both processes hang idle in a resume (seen about once in five runs); a hang is
  # retried once, loudly.
  for attempt in (1, 2):
    proc = start(saved + 2)
    err, hung = finish(proc, 200)
    if not hung:
      break
    warnings.warn(f'two-process resume hung, attempt {attempt}: {err[-1500:]}')
  assert proc.returncode == 0, err[-4000:]
  steps = [r['step'] for r in read_metrics(str(tmp_path))]
  assert steps == list(range(1, saved + 3))
  assert final_params(str(tmp_path))[1] == saved + 2


def test_periodic_dev_retrieval_is_logged_at_every_mrl_dim(tmp_path, data_root):
  from tests.eval.synthetic_suite import write_suite
  suite = tmp_path / 'suite'
  write_suite(suite)
  run_train(tmp_path / 'run', data_root, '--config.total_steps=2', '--config.eval.every=1',
            f'--config.eval.suite={suite}', devices=1)
  rows = [r for r in read_metrics(str(tmp_path / 'run')) if 'eval/retrieval_mean@96' in r]
  assert [r['step'] for r in rows] == [1, 2]
  for dim in (32, 64, 96):
    assert 0.0 <= rows[-1][f'eval/retrieval_mean@{dim}'] <= 1.0


def test_non_finite_loss_stops_with_step_and_metric_and_keeps_last_good_checkpoint(
    tmp_path, data_root, uninterrupted):
  workdir = tmp_path / 'run'
  shutil.copytree(uninterrupted, workdir)  # a finished 6-step run, checkpoints 2, 4, 6
  # Resume with a temperature whose logits overflow float32: step 7 is not finite.
  out = run_train(workdir, data_root, '--config.total_steps=8', '--config.checkpoint.every=1',
                  '--config.mesh.fsdp=2', '--config.mesh.tensor=2',
                  '--config.loss.temperature=1e-45', check=False)
  assert out.returncode == 1
  assert re.search(r'step 7: metric \S+ is not finite; stopping. '
                   r'The last good checkpoint is step 6', out.stderr)
  _, saved = final_params(str(workdir))
  assert saved == 6
