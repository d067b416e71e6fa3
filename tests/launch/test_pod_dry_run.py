"""Golden tests of `launch/pod.py --dry-run`: every subcommand prints exactly these
commands, and the train flags reach every worker intact (the printed ssh command is
parsed back the way a shell, then the worker's shell, would)."""

import hashlib
import os
import shlex
import subprocess
import sys

import pytest

from tests.train_fixtures import ROOT

POD = os.path.join(ROOT, 'launch', 'pod.py')
BASE = ['--tpu=ft-4b', '--zone=us-east5-a', '--dry-run']
# A config argument with a comma, an override with a space and a quote: all must survive.
TRAIN = ['--config=configs/finetune.py:tiny,mixture=code', '--workdir=gs://bucket/runs/ft 1',
         "--config.data.prompt_prefix=it's"]


def dry_run(*args: str) -> list[str]:
  out = subprocess.run([sys.executable, POD, *BASE, *args], capture_output=True, text=True,
                       env=dict(os.environ, TMPDIR='/tmp'), timeout=60)
  assert out.returncode == 0, out.stderr[-2000:]
  return out.stdout.splitlines()


@pytest.fixture(scope='module')
def sha_and_stamp():
  sha = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                       check=True).stdout.strip()
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:  # the stamp: pyproject + commit
    stamp = hashlib.sha256(f.read() + sha.encode()).hexdigest()[:16]
  return sha, stamp


def remote_command(line: str) -> list[str]:
  """The argv a worker's shell runs for a printed `gcloud ... ssh --command=CMD` line."""
  argv = shlex.split(line)
  command = next(a.split('=', 1)[1] for a in argv if a.startswith('--command='))
  return shlex.split(command)


def test_create_golden():
  assert dry_run('--accelerator_type=v5p-128', '--spot', 'create') == [
      'gcloud compute tpus queued-resources create ft-4b --node-id=ft-4b '
      '--accelerator-type=v5p-128 --runtime-version=v2-alpha-tpuv5 --spot --zone=us-east5-a']
  assert dry_run('--accelerator_type=v5e-256', '--reserved', '--num_slices=2',
                 '--project=p', 'create') == [
      'gcloud compute tpus queued-resources create ft-4b --node-count=2 --node-prefix=ft-4b '
      '--accelerator-type=v5e-256 --runtime-version=v2-alpha-tpuv5-lite --reserved '
      '--zone=us-east5-a --project=p']


def test_setup_golden(sha_and_stamp):
  sha, stamp = sha_and_stamp
  remote = (f'mkdir -p gemini_embed && tar -xzf ~/gemini_embed-src.tar.gz -C gemini_embed && '
            f'cd gemini_embed && echo {sha} > .git_sha && '
            f'if [ "$(cat .install_stamp 2>/dev/null)" != {stamp} ]; then python3 -m venv .venv '
            "&& .venv/bin/pip install -q -U pip && .venv/bin/pip install -q -e '.[tpu]' && "
            f'echo {stamp} > .install_stamp; else echo "install stamp {stamp}: up to date"; fi')
  assert dry_run('setup') == [
      f'cd {ROOT} && git ls-files -z | tar --null -T - -czf /tmp/gemini_embed-src.tar.gz',
      'gcloud compute tpus tpu-vm scp /tmp/gemini_embed-src.tar.gz '
      'ft-4b:gemini_embed-src.tar.gz --worker=all --zone=us-east5-a',
      shlex.join(['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'ft-4b', '--worker=all',
                  f'--command={remote}', '--zone=us-east5-a'])]


def test_preflight_logs_stop_delete_golden():
  ssh = lambda cmd: shlex.join(['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'ft-4b',
                                '--worker=all', f'--command={cmd}', '--zone=us-east5-a'])
  assert dry_run('preflight') == [ssh(
      '(sudo lsof -t /dev/accel* /dev/vfio/* | xargs -r sudo kill -9; sudo rm -f '
      '/tmp/libtpu_lockfile) 2>/dev/null; cd gemini_embed && .venv/bin/python '
      'launch/host_report.py')]
  assert dry_run('logs') == [ssh('tail -n 40 gemini_embed/logs/train-*.log')]
  assert dry_run('delete') == [
      'gcloud compute tpus queued-resources delete ft-4b --force --quiet --zone=us-east5-a']
  assert dry_run('stop') == [ssh('kill -TERM "$(cat gemini_embed/logs/train.pid)" 2>/dev/null '
                                 '|| echo "no run on $(hostname)"')]


def test_run_passes_the_train_flags_intact_to_every_worker_of_every_slice():
  assert remote_command(dry_run('run', '--', *TRAIN)[0]) == [
      'cd', 'gemini_embed', '&&', 'nohup', 'launch/worker_run.sh', *TRAIN,
      '>', '/dev/null', '2>&1', '<', '/dev/null', '&']
  # two slices: the coordinator's address first, then each slice with its MEGASCALE_*
  lines = dry_run('--num_slices=2', 'run', '--', *TRAIN, '--config.mesh.slices=2')
  assert lines[0] == ('gcloud compute tpus tpu-vm describe ft-4b-0 '
                      "'--format=value(networkEndpoints[0].ipAddress)' --zone=us-east5-a")
  assert [shlex.split(line)[5] for line in lines[1:]] == ['ft-4b-0', 'ft-4b-1']
  for i, line in enumerate(lines[1:]):
    assert remote_command(line) == [
        'cd', 'gemini_embed', '&&', 'nohup', 'env',
        'MEGASCALE_COORDINATOR_ADDRESS=IP_OF_WORKER_0:8080', 'MEGASCALE_NUM_SLICES=2',
        f'MEGASCALE_SLICE_ID={i}', 'MEGASCALE_PORT=8080', 'launch/worker_run.sh', *TRAIN,
        '--config.mesh.slices=2', '>', '/dev/null', '2>&1', '<', '/dev/null', '&']


def test_babysit_golden():
  lines = dry_run('babysit', '--', *TRAIN)
  assert lines[0] == ('gcloud compute tpus queued-resources describe ft-4b '
                      "'--format=value(state.state)' --zone=us-east5-a")
  assert remote_command(lines[1]) == ['cd', 'gemini_embed', '&&', 'launch/worker_run.sh', *TRAIN]
  assert lines[2] == "gcloud storage cat 'gs://bucket/runs/ft 1/status.json'"
  recreate = lines[4:]
  assert recreate[0] == 'gcloud compute tpus queued-resources delete ft-4b --force --quiet ' \
                        '--zone=us-east5-a'
  assert recreate[1].startswith('gcloud compute tpus queued-resources create ft-4b ')
  assert recreate[2] == lines[0]  # waits for ACTIVE
  assert 'git ls-files' in recreate[3] and 'scp' in recreate[4]
  assert 'install_stamp' in recreate[5] and 'host_report.py' in recreate[6]


def test_xpk_golden():
  train = [*TRAIN, '--config.mesh.slices=2']
  lines = dry_run('--accelerator_type=v5e-256', '--num_slices=2', '--max_restarts=7', 'xpk',
                  '--cluster=c1', '--docker_image=gcr.io/p/img', '--', *train)
  argv = shlex.split(lines[0])
  assert argv[:-1] == ['xpk', 'workload', 'create', '--cluster=c1', '--workload=ft-4b',
                       '--tpu-type=v5litepod-256', '--num-slices=2', '--max-restarts=7',
                       '--docker-image=gcr.io/p/img', '--zone=us-east5-a']
  command = argv[-1].split('=', 1)[1]
  assert shlex.split(command) == ['python', '-m', 'gemini_embed.train', '--multiprocess', *train]


@pytest.mark.parametrize('args,message', [
    (['run'], 'give the train flags after `--`'),
    (['run', '--', '--config=configs/finetune.py'], '--workdir=DIR'),
    (['logs', '--', '--x'], 'takes no arguments'),
    (['launch'], 'give one subcommand'),
    (['--spot', '--reserved', 'create'], '--spot and --reserved: choose one'),
    (['--accelerator_type=v5p-100', 'create'], 'not a v5p slice size'),
    (['--num_slices=2', 'run', '--', '--workdir=w'], 'add --config.mesh.slices=2 to the train'),
])
def test_bad_invocations_say_what_to_do(args, message):
  out = subprocess.run([sys.executable, POD, *BASE, *args], capture_output=True, text=True,
                       timeout=60)
  assert out.returncode != 0
  assert message in out.stderr, out.stderr[-2000:]
