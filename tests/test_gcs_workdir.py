"""Every path on gs://, against a real GCS protocol server (tests/gcs_emulator.py): the
trainer, SIGTERM and resume, soup, encode and evaluate through their command lines, a
two-process run, and the start-up checks that refuse an unusable workdir."""

import json
import os
import signal
import subprocess
import sys
import time

import fsspec
import jax
import numpy as np
import pytest
import safetensors.numpy
from etils.epath import gpath

from gemini_embed import storage
from gemini_embed.export import export
from gemini_embed.models.pretrained import classify_source
from gemini_embed.run_status import PREEMPTED_EXIT_CODE
from gemini_embed.workdir_lease import LeaseHeldError, WorkdirLease
from tests.eval.synthetic_suite import write_suite
from tests.gcs_emulator import BUCKET, running_emulator
from tests.train_fixtures import (ROOT, final_params, load_config, train_command, train_env,
                                  write_training_data)


TOTAL = 10  # steps of the pre-empted and resumed run (SIGTERM comes after 3)


@pytest.fixture(scope='session')
def emulator(tmp_path_factory):
  with running_emulator(str(tmp_path_factory.mktemp('gcs'))) as server:
    yield server


@pytest.fixture(scope='module')
def gcs(emulator):
  """The emulator, with this process's environment pointed at it while this module runs."""
  with pytest.MonkeyPatch.context() as mp:
    for key, value in emulator.env.items():
      mp.setenv(key, value)
    mp.delenv('GOOGLE_APPLICATION_CREDENTIALS', raising=False)
    # gcsfs reads GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT when imported: if it already was,
    # its zonal-bucket class would probe the emulator over gRPC (60 s per bucket).
    for protocol in ('gs', 'gcs'):
      fsspec.register_implementation(protocol, 'gcsfs.core.GCSFileSystem', clobber=True)
    # etils caches its "is TensorFlow installed" answer (EPATH_USE_TF) on first use: an
    # earlier test's gs:// path in this process would route ours through tf.io.gfile.
    gpath._is_tf_installed.cache_clear()
    yield emulator
  gpath._is_tf_installed.cache_clear()


@pytest.fixture(scope='module')
def gcs_data(gcs, tmp_path_factory):
  """The tiny configs' training data and a suite, uploaded; their gs:// URIs."""
  local = tmp_path_factory.mktemp('upload')
  write_training_data(str(local / 'data'), load_config('prefinetune'))
  write_suite(local / 'suite')
  return dict(data=gcs.put(str(local / 'data'), 'data'), suite=gcs.put(str(local / 'suite'), 'suite'))


@pytest.fixture(scope='module')
def env(gcs):
  """env(devices): a tool's environment, pointed at the emulator; its processes share the
  session's persistent compilation cache (train_env: the same tiny steps compile in other
  modules' runs)."""
  return lambda devices=8: gcs.environ({**train_env(devices), 'GEMINI_EMBED_METRICS_FLUSH_S': '0'})


def _tool(env, cwd, name, *args):
  out = subprocess.run([sys.executable, '-m', f'gemini_embed.{name}', *args], env=env(),
                       capture_output=True, text=True, timeout=600, cwd=cwd)
  assert out.returncode == 0, f'{name} failed:\n{out.stderr[-3000:]}'
  return out


def _metrics(uri: str) -> list[dict]:
  path = storage.as_path(uri) / 'metrics.jsonl'
  return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _status(uri: str) -> dict:
  return json.loads((storage.as_path(uri) / 'status.json').read_text())


@pytest.mark.slow
def test_train_sigterm_resume_soup_encode_evaluate_all_on_gcs(gcs, gcs_data, env, tmp_path):
  run, soup = gcs.uri('runs', 'pre'), gcs.uri('soup')
  # The same command twice (pre-empted, then resumed): its compiled step is cached.
  cmd = train_command(run, gcs_data['data'], f'--config.total_steps={TOTAL}',
                      '--config.checkpoint.every=2', '--config.log_every=1')
  # cwd: an empty local folder, where a path mistaken for a local one would land.
  proc = subprocess.Popen(cmd, env=env(), cwd=tmp_path, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 300
  while len(_metrics(run)) < 3:
    assert proc.poll() is None and time.time() < deadline, 'the run ended before step 3'
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == PREEMPTED_EXIT_CODE, err[-3000:]
  first = _metrics(run)
  saved = max(r['step'] for r in first)
  assert _status(run) == dict(_status(run), state='preempted', step=saved, last_checkpoint=saved)

  assert saved < TOTAL, 'the run finished before SIGTERM reached it'
  out = subprocess.run(cmd, env=env(), cwd=tmp_path, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = _metrics(run)
  assert rows[:len(first)] == first  # the first run's rows, kept by the rewrite
  assert [r['step'] for r in rows[len(first):]] == list(range(saved + 1, TOTAL + 1))
  assert _status(run)['state'] == 'finished'
  listed = {p.name for p in storage.as_path(run).iterdir()}
  assert {'checkpoints', 'config.json', 'model.json', 'tokenizer.json', 'metrics.jsonl',
          'status.json', 'tensorboard'} <= listed and 'lease.json' not in listed

  assert classify_source(run) == 'workdir'  # a fine-tune's init_from may be this gs:// run
  _tool(env, tmp_path, 'soup', f'--inputs={run}:{TOTAL - 2},{run}', f'--output={soup}')
  (a, _), (b, _), (got, _) = (final_params(run, TOTAL - 2), final_params(run, TOTAL),
                              final_params(soup))
  for x, y, s in zip(*(jax.tree.leaves(t) for t in (a, b, got))):
    np.testing.assert_allclose(s, (x.astype(np.float64) + y.astype(np.float64)) / 2,
                               rtol=1e-6, atol=1e-7)

  texts = ['the amber lantern', 'a copper kettle in the attic', 'paper kite']
  (storage.as_path(gcs.uri('texts.jsonl'))).write_text(
      ''.join(json.dumps({'text': t}) + '\n' for t in texts))
  _tool(env, tmp_path, 'encode', f'--workdir={soup}', f'--input={gcs.uri("texts.jsonl")}',
        f'--output={gcs.uri("emb.npy")}', '--dim=32')
  with storage.as_path(gcs.uri('emb.npy')).open('rb') as f:
    emb = np.load(f)
  assert emb.shape == (3, 32) and emb.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)

  results = gcs.uri('eval', 'results.json')
  _tool(env, tmp_path, 'evaluate', f'--workdir=soup={soup}', f'--suite={gcs_data["suite"]}',
        '--peers=none', '--bootstrap=0', '--dims=32', f'--output={results}')
  scores = json.loads(storage.as_path(results).read_text())
  assert scores['systems'] and scores['tasks']
  assert storage.as_path(gcs.uri('eval', 'plots', 'score_vs_dim.png')).stat().length > 1000
  assert storage.as_path(gcs.uri('eval', 'results.md')).exists()
  exported = gcs.uri('export')
  export(soup, exported, fmt='sentence-transformers')  # in this process: nothing compiles
  assert {'model.safetensors', 'config.json', 'tokenizer.json', 'modules.json',
          'README.md'} <= {p.name for p in storage.as_path(exported).iterdir()}
  dense = safetensors.numpy.load(
      (storage.as_path(exported) / '2_Dense' / 'model.safetensors').read_bytes())
  np.testing.assert_array_equal(dense['linear.weight'], np.asarray(got['projection']).T)
  assert os.listdir(tmp_path) == [], 'a gs:// path was written to the local disk'


@pytest.mark.slow
def test_two_processes_with_workdir_and_data_on_gcs(gcs, gcs_data, env, tmp_path):
  run = gcs.uri('runs', 'two')
  launch = os.path.join(ROOT, 'launch', 'local_multiprocess.sh')
  args = [launch, '2', *train_command(run, gcs_data['data'], '--config.total_steps=2',
                                      '--config.checkpoint.every=2', '--config.log_every=1',
                                      '--config.mesh.fsdp=2')[3:]]
  out = subprocess.run(args, env=dict(env(4), PYTHON=sys.executable), cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-4000:]
  data_iter = storage.as_path(run) / 'checkpoints' / '2' / 'data_iter'
  assert {'process_0-of-2.json', 'process_1-of-2.json'} <= {p.name for p in data_iter.iterdir()}
  assert [r['step'] for r in _metrics(run)] == [1, 2]
  assert final_params(run)[1] == 2
  assert os.listdir(tmp_path) == []


def test_a_missing_bucket_or_unwritable_dir_fails_at_start_up(gcs, tmp_path):
  with pytest.raises(storage.StorageError, match=r'--workdir=gs://no-such-bucket/run: cannot '
                     r'write there .*Check the bucket name'):
    storage.check_writable('gs://no-such-bucket/run', '--workdir')
  assert not storage.as_path('gs://no-such-bucket').exists()  # not created by the check
  (tmp_path / 'file').write_text('')
  with pytest.raises(storage.StorageError, match=r'--output=.*/file/out: cannot write there'):
    storage.check_writable(str(tmp_path / 'file' / 'out'), '--output')
  storage.check_writable(gcs.uri('fine'), '--workdir')
  assert not storage.as_path(gcs.uri('fine')).exists()  # the probe is gone, nothing else made


@pytest.mark.slow
def test_train_refuses_a_missing_bucket_before_compiling(gcs_data, env, tmp_path):
  out = subprocess.run(train_command('gs://no-such-bucket/run', gcs_data['data']), env=env(),
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
  assert out.returncode != 0
  assert '--workdir=gs://no-such-bucket/run: cannot write there' in out.stderr
  assert '] mesh {' not in out.stderr  # stopped before the mesh, data and compile


def test_hosts_that_differ_refuse_a_local_workdir():
  with pytest.raises(storage.StorageError, match=r'local path, but this run spans 2 hosts '
                     r'\(tpu-a, tpu-b\).*gs://'):
    storage.check_shared_workdir('/tmp/run', ['tpu-a', 'tpu-b', 'tpu-a'])
  storage.check_shared_workdir('gs://bucket/run', ['tpu-a', 'tpu-b'])
  storage.check_shared_workdir('/tmp/run', ['laptop', 'laptop'])  # one machine, n processes


def test_glob_and_join_keep_gcs_uris(gcs):
  for name in ('a.jsonl', 'b.jsonl', 'c.txt'):
    storage.as_path(gcs.uri('g', 'sub', name)).write_text('{}\n')
  assert storage.glob(gcs.uri('g', '*', '*.jsonl')) == [gcs.uri('g', 'sub', 'a.jsonl'),
                                                        gcs.uri('g', 'sub', 'b.jsonl')]
  assert storage.glob(gcs.uri('g', 'sub', 'c.txt')) == [gcs.uri('g', 'sub', 'c.txt')]
  assert storage.join(gcs.uri('g'), 'sub/a.jsonl') == gcs.uri('g', 'sub', 'a.jsonl')
  assert storage.join('runs/corpora', gcs.uri('x')) == f'gs://{BUCKET}/x'
  assert str(storage.as_path(gcs.uri('g'))) == gcs.uri('g')


def test_the_workdir_lease_holds_on_gcs(gcs):
  """No exclusive create or rename there: write, settle, read back; a second trainer is
  refused naming the holder, a clean exit deletes the lease."""
  workdir = gcs.uri('leased')
  lease = storage.as_path(workdir) / 'lease.json'
  first = WorkdirLease(workdir, heartbeat_s=0.5, settle_s=0.05)
  first.acquire()
  try:
    taken = json.loads(lease.read_text())
    with pytest.raises(LeaseHeldError, match=f'{first.run_id}'):
      WorkdirLease(workdir, heartbeat_s=0.5, settle_s=0.05).acquire()
    time.sleep(1.2)  # heartbeats rewrite the object in place (TTL: 1.5 s)
    renewed = json.loads(lease.read_text())
    assert renewed['run_id'] == first.run_id and renewed['renewed'] > taken['renewed']
  finally:
    first.release()
  assert not (storage.as_path(workdir) / 'lease.json').exists()
