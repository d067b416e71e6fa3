"""`launch/pod.py babysit` against a fake slice (tests/launch/fake_gcloud.py) that is
pre-empted once: babysit creates the slice, sets it up, runs the real trainer, sees the
slice SUSPENDED and the run not finished (though every ssh exits 0), recreates the slice,
reruns, and stops exactly when WORKDIR/status.json says finished. And setup + preflight
on the same fake: the install stamp spares a reinstall, a worker on another commit fails
the preflight."""

import hashlib
import json
import os
import socket
import subprocess
import sys

import pytest

from tests.train_fixtures import ROOT, load_config, train_command, train_env, write_training_data

POD = os.path.join(ROOT, 'launch', 'pod.py')
FAKE = os.path.join(ROOT, 'tests', 'launch', 'fake_gcloud.py')
TOTAL = 10  # steps of the babysat run


def _install_stamp() -> str:
  sha = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                       check=True).stdout.strip()
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    return hashlib.sha256(f.read() + sha.encode()).hexdigest()[:16]


@pytest.mark.slow
def test_babysit_reruns_a_preempted_run_until_the_completion_marker_says_finished(tmp_path):
  data_root = write_training_data(str(tmp_path / 'data'), load_config('prefinetune'))
  fake, workdir = tmp_path / 'slice', tmp_path / 'run'
  worker_repo = fake / 'home' / 'gemini_embed'
  worker_repo.mkdir(parents=True)
  # The worker's install is this environment, already stamped: setup must not reinstall.
  os.symlink(sys.prefix, worker_repo / '.venv')
  (worker_repo / '.install_stamp').write_text(_install_stamp())
  # Pre-empted at its first checkpoint (step 2) with 8 steps and 4 saves to go, so the
  # fake's 0.1 s poll always lands before the run could finish. worker_run.sh copies the log every
  # LOG_COPY_EVERY_S (60 s on a pod): each run would wait that long after its trainer.
  env = dict(train_env(4), FAKE_SLICE_DIR=str(fake), FAKE_WORKDIR=str(workdir),
             FAKE_PREEMPT_WHEN=str(workdir / 'checkpoints' / '2'), TMPDIR=str(tmp_path),
             LOG_COPY_EVERY_S='0.2')
  train_flags = train_command(str(workdir), data_root, f'--config.total_steps={TOTAL}',
                              '--config.checkpoint.every=2', '--config.log_every=1')[3:]
  # --max_restarts=1: the one rerun the pre-emption needs; a trainer that fails without a
  # status.json ends babysit after two runs instead of 50.
  out = subprocess.run([sys.executable, POD, '--tpu=fake', '--zone=local', f'--gcloud={FAKE}',
                        '--accelerator_type=v5e-4', '--poll_s=0', '--max_restarts=1', 'babysit',
                        '--', *train_flags],
                       env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]

  calls = [json.loads(line) for line in open(fake / 'calls.jsonl')]
  qr = [c[3] for c in calls if c[:3] == ['compute', 'tpus', 'queued-resources']]
  runs = [c for c in calls if c[:4] == ['compute', 'tpus', 'tpu-vm', 'ssh']
          and 'worker_run.sh' in c[-2]]
  first = json.loads((fake / 'status-1.json').read_text())
  assert first['state'] == 'preempted' and first['last_checkpoint'] >= 2, first
  assert qr.count('create') == 2 and qr.count('delete') == 1  # created, then recreated once
  assert len(runs) == 2                                        # exactly one rerun
  second = json.loads((fake / 'status-2.json').read_text())
  assert second == dict(second, state='finished', step=TOTAL, total_steps=TOTAL,
                        last_checkpoint=TOTAL)
  assert 'after 2 run(s)' in out.stdout
  log = (workdir / 'logs' / f'train-{socket.gethostname()}.log').read_text()
  assert 'resumed from' in log and f'at step {first["step"]}' in log  # the rerun resumed


def test_setup_then_preflight_on_the_fake_slice_and_a_stale_commit_fails_it(tmp_path):
  fake = tmp_path / 'slice'
  worker_repo = fake / 'home' / 'gemini_embed'
  worker_repo.mkdir(parents=True)
  os.symlink(sys.prefix, worker_repo / '.venv')
  (worker_repo / '.install_stamp').write_text(_install_stamp())
  (fake / 'state').write_text('ACTIVE')
  env = dict(train_env(4), FAKE_SLICE_DIR=str(fake), TMPDIR=str(tmp_path))
  pod = [sys.executable, POD, '--tpu=fake', '--zone=local', f'--gcloud={FAKE}',
         '--accelerator_type=v5e-4']

  setup = subprocess.run([*pod, 'setup'], env=env, capture_output=True, text=True, timeout=300)
  assert setup.returncode == 0, setup.stderr[-3000:]
  assert 'up to date' in setup.stdout  # the stamp matched: no reinstall
  assert (worker_repo / 'launch' / 'pod.py').exists()
  ok = subprocess.run([*pod, 'preflight'], env=env, capture_output=True, text=True, timeout=300)
  assert ok.returncode == 0, ok.stderr[-3000:]
  assert 'preflight: 1 hosts agree' in ok.stdout and '4×cpu (4 in all)' in ok.stdout

  (worker_repo / '.git_sha').write_text('0' * 40)  # a worker left on another commit
  stale = subprocess.run([*pod, 'preflight'], env=env, capture_output=True, text=True,
                         timeout=300)
  assert stale.returncode != 0
  assert 'the workers run another commit than this checkout' in stale.stderr
