r"""Create, set up, check, run and babysit a Cloud TPU VM slice (or several) for training.

    python launch/pod.py --tpu=ft-4b --zone=us-east5-a --accelerator_type=v5p-128 --spot create
    python launch/pod.py --tpu=ft-4b --zone=us-east5-a setup
    python launch/pod.py --tpu=ft-4b --zone=us-east5-a preflight
    python launch/pod.py --tpu=ft-4b --zone=us-east5-a run -- \
        --config=configs/pod.py:model=gemma3-4b,chips=64 --workdir=gs://bucket/runs/ft-4b
    python launch/pod.py --tpu=ft-4b --zone=us-east5-a logs
    python launch/pod.py --tpu=ft-4b --zone=us-east5-a babysit -- TRAIN_FLAGS...
    python launch/pod.py --tpu=ft-4b --zone=us-east5-a stop
    python launch/pod.py --tpu=ft-4b --zone=us-east5-a xpk --cluster=C --docker_image=IMG -- \
        TRAIN_FLAGS...
    python launch/pod.py --tpu=ft-4b --zone=us-east5-a delete

Every subcommand takes --dry-run: it prints each command (shlex.join, ready to paste)
instead of running it. TRAIN_FLAGS (after `--`) go unchanged to
`python -m gemini_embed.train --multiprocess` on every worker (launch/worker_run.sh),
which discovers the pod through jax.distributed; each worker's log is copied to
WORKDIR/logs/. `babysit` recreates a slice that was pre-empted or suspended and reruns
until WORKDIR/status.json says "finished" (gemini_embed/run_status.py) — an exit code
is not enough: `gcloud ... ssh --worker=all` does not pass the trainer's on, and a run
that saved on SIGTERM has stopped short of its last step. Training resumes from the
workdir by itself. --gcloud=PATH runs another program in gcloud's place (the tests'
fake slice, tests/launch/fake_gcloud.py).

Multi-slice (--num_slices=N): one queued resource of N slices named TPU-0 … TPU-(N-1),
joined over DCN: every worker of slice i gets MEGASCALE_SLICE_ID=i, MEGASCALE_NUM_SLICES=N
and the coordinator MEGASCALE_COORDINATOR_ADDRESS (worker 0 of slice 0, port 8080); pass
--config.mesh.slices=N in TRAIN_FLAGS (the mesh's data axis then spans the slices,
gemini_embed/sharding.py).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

from absl import app, flags, logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from gemini_embed.tpu_topologies import parse_slice  # noqa: E402  (stdlib-only module)
from worker_commands import (ARCHIVE, MEGASCALE_PORT, git_sha, install_stamp,  # noqa: E402
                             preflight_problems, preflight_remote, setup_remote, train_remote)

SUBCOMMANDS = ('create', 'setup', 'preflight', 'run', 'logs', 'stop', 'babysit', 'xpk', 'delete')

_TPU = flags.DEFINE_string('tpu', None, 'TPU VM (and queued resource) name.')
_ZONE = flags.DEFINE_string('zone', None, 'Zone, e.g. us-east5-a.')
_PROJECT = flags.DEFINE_string('project', None, 'GCP project (default: gcloud config).')
_DRY_RUN = flags.DEFINE_bool('dry-run', False, 'Print every command instead of running it.')
_GCLOUD = flags.DEFINE_string('gcloud', 'gcloud', 'The gcloud program (a fake in tests).')
_ACCELERATOR = flags.DEFINE_string('accelerator_type', 'v5p-128',
                                   'Slice type: v5e-256, v5p-128, …')
_RUNTIME = flags.DEFINE_string('runtime_version', None, 'TPU VM image (default: by generation).')
_NUM_SLICES = flags.DEFINE_integer('num_slices', 1, 'Slices joined over DCN (multi-slice).')
_SPOT = flags.DEFINE_bool('spot', False, 'create: Spot capacity (pre-emptible, cheaper).')
_RESERVED = flags.DEFINE_bool('reserved', False, 'create: from your reservation.')
_REPO_DIR = flags.DEFINE_string('repo_dir', 'gemini_embed', 'The code on each worker (from ~).')
_WORKER = flags.DEFINE_string('worker', 'all', 'logs: which worker(s).')
_LINES = flags.DEFINE_integer('lines', 40, 'logs: lines per worker.')
_POLL_S = flags.DEFINE_float('poll_s', 60, 'babysit: seconds between slice state checks.')
_WAIT_S = flags.DEFINE_float('wait_s', 6 * 3600, 'babysit: longest wait for a slice to be ACTIVE.')
_MAX_RESTARTS = flags.DEFINE_integer('max_restarts', 50, 'babysit/xpk: reruns before giving up.')
_CLUSTER = flags.DEFINE_string('cluster', None, 'xpk: the GKE cluster.')
_DOCKER_IMAGE = flags.DEFINE_string('docker_image', None, 'xpk: image with this repo installed.')
flags.register_multi_flags_validator(
    ['spot', 'reserved'], lambda f: not (f['spot'] and f['reserved']),
    '--spot and --reserved: choose one')

# Queued-resource states (gcloud compute tpus queued-resources describe): waiting ones
# turn ACTIVE by themselves; gone ones need a delete and a new create.
ACTIVE = 'ACTIVE'
WAITING = {'CREATING', 'ACCEPTED', 'PROVISIONING', 'WAITING_FOR_RESOURCES'}
GONE = {'SUSPENDING', 'SUSPENDED', 'FAILED', 'DELETING', None}  # None: no such resource
RUNTIME_BY_GENERATION = {'v5e': 'v2-alpha-tpuv5-lite', 'v5p': 'v2-alpha-tpuv5',
                         'v6e': 'v2-alpha-tpuv6e'}
XPK_NAMES = {'v5e': 'v5litepod'}      # xpk's name for a generation, where it differs


class Shell:
  """Runs commands, or (dry run) prints them as `shlex.join` would have them pasted."""

  def __init__(self, dry_run: bool):
    self.dry_run = dry_run

  def run(self, cmd: list[str], *, capture: bool = False, check: bool = True
          ) -> subprocess.CompletedProcess:
    if self.dry_run:
      print(shlex.join(cmd), flush=True)
      return subprocess.CompletedProcess(cmd, 0, '', '')
    logging.info('$ %s', shlex.join(cmd))
    return subprocess.run(cmd, check=check, text=True, capture_output=capture)

  def pipe(self, first: list[str], second: list[str], cwd: str) -> None:
    """first | second, in cwd."""
    if self.dry_run:
      print(f'cd {shlex.quote(cwd)} && {shlex.join(first)} | {shlex.join(second)}', flush=True)
      return
    producer = subprocess.Popen(first, cwd=cwd, stdout=subprocess.PIPE)
    subprocess.run(second, cwd=cwd, stdin=producer.stdout, check=True)
    producer.stdout.close()
    if producer.wait():
      raise subprocess.CalledProcessError(producer.returncode, first)

  def parallel(self, cmds: list[list[str]]) -> list[int]:
    """All at once (one ssh per slice); their exit codes."""
    if self.dry_run:
      for cmd in cmds:
        print(shlex.join(cmd), flush=True)
      return [0] * len(cmds)
    for cmd in cmds:
      logging.info('$ %s', shlex.join(cmd))
    procs = [subprocess.Popen(cmd) for cmd in cmds]
    return [p.wait() for p in procs]


# ------------------------------------------------------------------ gcloud commands

def tpus(*args: str) -> list[str]:
  project = [f'--project={_PROJECT.value}'] if _PROJECT.value else []
  return [_GCLOUD.value, 'compute', 'tpus', *args, f'--zone={_ZONE.value}', *project]


def nodes() -> list[str]:
  """The TPU VMs: the slice, or the N slices of a multi-slice queued resource."""
  n = _NUM_SLICES.value
  return [_TPU.value] if n == 1 else [f'{_TPU.value}-{i}' for i in range(n)]


def ssh(node: str, command: str, worker: str = 'all') -> list[str]:
  return tpus('tpu-vm', 'ssh', node, f'--worker={worker}', f'--command={command}')


def accelerator():
  try:
    return parse_slice(_ACCELERATOR.value)
  except ValueError as e:
    raise app.UsageError(str(e).replace('--topology', '--accelerator_type')) from None


def create_command() -> list[str]:
  accel = _ACCELERATOR.value
  slice_ = accelerator()
  runtime = _RUNTIME.value or RUNTIME_BY_GENERATION[accel.split('-')[0]]
  if _NUM_SLICES.value == 1:
    node = [f'--node-id={_TPU.value}']
  else:
    node = [f'--node-count={_NUM_SLICES.value}', f'--node-prefix={_TPU.value}']
  capacity = ['--spot'] if _SPOT.value else ['--reserved'] if _RESERVED.value else []
  logging.info('%s: %d chips per slice, %d slice(s)', accel, slice_.chips, _NUM_SLICES.value)
  return tpus('queued-resources', 'create', _TPU.value, *node, f'--accelerator-type={accel}',
              f'--runtime-version={runtime}', *capacity)


def delete_command() -> list[str]:
  return tpus('queued-resources', 'delete', _TPU.value, '--force', '--quiet')


def describe_command() -> list[str]:
  return tpus('queued-resources', 'describe', _TPU.value, '--format=value(state.state)')


# ------------------------------------------------------------------ what runs on the workers

def slice_env(shell: Shell) -> list[dict[str, str]]:
  """Per TPU VM slice, the environment that joins several slices into one job (JAX reads
  MEGASCALE_* in its Cloud TPU cluster detection); nothing for one slice."""
  if _NUM_SLICES.value == 1:
    return [{}]
  proc = shell.run(tpus('tpu-vm', 'describe', nodes()[0],
                        '--format=value(networkEndpoints[0].ipAddress)'), capture=True)
  ip = 'IP_OF_WORKER_0' if shell.dry_run else proc.stdout.strip()
  return [dict(MEGASCALE_COORDINATOR_ADDRESS=f'{ip}:{MEGASCALE_PORT}',
               MEGASCALE_NUM_SLICES=str(_NUM_SLICES.value), MEGASCALE_SLICE_ID=str(i),
               MEGASCALE_PORT=str(MEGASCALE_PORT)) for i in range(_NUM_SLICES.value)]


def workdir_of(train_flags: list[str]) -> str:
  for flag in train_flags:
    if flag.startswith('--workdir='):
      return flag.split('=', 1)[1]
  raise app.UsageError('the train flags after `--` need --workdir=DIR (write it as one '
                       'argument, --workdir=gs://bucket/run): logs and the completion marker '
                       'live there')


# ------------------------------------------------------------------ subcommands

def create(shell: Shell) -> None:
  shell.run(create_command())


def delete(shell: Shell) -> None:
  shell.run(delete_command())


def setup(shell: Shell) -> None:
  sha = git_sha()
  stamp = install_stamp(sha)
  archive = os.path.join(os.environ.get('TMPDIR', '/tmp'), ARCHIVE)
  shell.pipe(['git', 'ls-files', '-z'], ['tar', '--null', '-T', '-', '-czf', archive], ROOT)
  for node in nodes():
    shell.run(tpus('tpu-vm', 'scp', archive, f'{node}:{ARCHIVE}', '--worker=all'))
  for node in nodes():
    shell.run(ssh(node, setup_remote(_REPO_DIR.value, sha, stamp)))


def preflight(shell: Shell) -> None:
  out = []
  for node, env in zip(nodes(), slice_env(shell)):
    out.append(shell.run(ssh(node, preflight_remote(_REPO_DIR.value, env)), capture=True).stdout)
  if shell.dry_run:
    return
  reports = [json.loads(line.split(' ', 1)[1]) for text in out for line in text.splitlines()
             if line.startswith('HOST_REPORT ')]
  slice_ = accelerator()
  problems = preflight_problems(reports, slice_.hosts * _NUM_SLICES.value,
                                slice_.chips * _NUM_SLICES.value, git_sha(),
                                f'{_ACCELERATOR.value} × {_NUM_SLICES.value}')
  for r in sorted(reports, key=lambda r: r['process']):
    print(f'process {r["process"]:3d} {r["host"]}: jax {r["jax"]} jaxlib {r["jaxlib"]} '
          f'libtpu {r["libtpu"]} sha {str(r["git_sha"])[:12]} {r["local_devices"]}×'
          f'{r["device_kind"]} ({r["devices"]} in all)')
  if problems:
    raise app.UsageError('preflight failed:\n  ' + '\n  '.join(problems))
  print(f'preflight: {len(reports)} hosts agree')


def run(shell: Shell, train_flags: list[str]) -> None:
  workdir = workdir_of(train_flags)
  for node, env in zip(nodes(), slice_env(shell)):
    shell.run(ssh(node, train_remote(_REPO_DIR.value, train_flags, background=True, env=env)))
  if not shell.dry_run:
    print(f'started on every worker of {", ".join(nodes())}; `logs` to follow, '
          f'full logs in {workdir}/logs/ (copied every minute)')


def logs(shell: Shell) -> None:
  tail = f'tail -n {_LINES.value} {shlex.quote(_REPO_DIR.value)}/logs/train-*.log'
  for node in nodes():
    shell.run(ssh(node, tail, _WORKER.value), check=False)


def stop(shell: Shell) -> None:
  """SIGTERM to every trainer: they save one agreed step and exit (pre-empted, 42)."""
  pid = f'{shlex.quote(_REPO_DIR.value)}/logs/train.pid'
  for node in nodes():
    shell.run(ssh(node, f'kill -TERM "$(cat {pid})" 2>/dev/null || echo "no run on $(hostname)"'),
              check=False)


def read_status(shell: Shell, workdir: str) -> dict | None:
  """WORKDIR/status.json (run_status.py); None when there is none yet."""
  if workdir.startswith('gs://'):
    proc = shell.run([_GCLOUD.value, 'storage', 'cat', f'{workdir}/status.json'], capture=True,
                     check=False)
    text = proc.stdout if proc.returncode == 0 else ''
  elif shell.dry_run:
    print(shlex.join(['cat', os.path.join(workdir, 'status.json')]), flush=True)
    text = ''
  else:
    try:
      with open(os.path.join(workdir, 'status.json')) as f:
        text = f.read()
    except FileNotFoundError:
      text = ''
  return json.loads(text) if text.strip() else None


def slice_state(shell: Shell) -> str | None:
  proc = shell.run(describe_command(), capture=True, check=False)
  if shell.dry_run:
    return ACTIVE
  return proc.stdout.strip() or None if proc.returncode == 0 else None


def wait_active(shell: Shell) -> None:
  deadline = time.time() + _WAIT_S.value
  while (state := slice_state(shell)) != ACTIVE:
    if state in GONE - {'SUSPENDING', 'DELETING'}:
      raise RuntimeError(f'queued resource {_TPU.value}: {state} while waiting for it')
    if time.time() > deadline:
      raise RuntimeError(f'queued resource {_TPU.value}: still {state} after {_WAIT_S.value:.0f} s')
    logging.info('queued resource %s: %s; waiting', _TPU.value, state)
    time.sleep(_POLL_S.value)


def recreate(shell: Shell, state: str | None) -> None:
  logging.warning('queued resource %s: %s; recreating it', _TPU.value, state or 'not found')
  if state is not None:
    shell.run(delete_command(), check=False)
  shell.run(create_command())
  wait_active(shell)
  setup(shell)
  preflight(shell)


def babysit(shell: Shell, train_flags: list[str]) -> int:
  """Until WORKDIR/status.json says finished: (re)create the slice, run, read the marker."""
  workdir = workdir_of(train_flags)
  for attempt in range(_MAX_RESTARTS.value + 1):
    state = slice_state(shell)
    if state in GONE:
      recreate(shell, state)
    elif state != ACTIVE:
      wait_active(shell)
    codes = shell.parallel([ssh(node, train_remote(_REPO_DIR.value, train_flags, background=False,
                                         env=env))
                            for node, env in zip(nodes(), slice_env(shell))])
    status = read_status(shell, workdir)
    if shell.dry_run:
      print('# then, until status.json says "finished": when the slice is SUSPENDED, FAILED '
            'or gone', flush=True)
      recreate(shell, 'SUSPENDED')
      print('# and the run command above again', flush=True)
      return 0
    ended = status['state'] if status else 'no status.json'
    logging.info('attempt %d ended: %s at step %s (ssh exit codes %s)', attempt + 1, ended,
                 status and status.get('step'), codes)
    if ended == 'finished':
      print(f'babysit: {workdir} finished at step {status["step"]} after {attempt + 1} run(s)')
      return 0
    if ended == 'failed':
      print(f'babysit: the run failed at step {status["step"]}: {status.get("reason")}; '
            'not rerunning (fix the cause, then babysit again)', file=sys.stderr)
      return 1
  print(f'babysit: not finished after {_MAX_RESTARTS.value} restarts', file=sys.stderr)
  return 1


def xpk_command(train_flags: list[str]) -> list[str]:
  """The same run as an xpk (GKE) workload: xpk restarts it after a failure or a
  pre-emption up to --max-restarts times; every restart resumes from the workdir."""
  if not _CLUSTER.value or not _DOCKER_IMAGE.value:
    raise app.UsageError('xpk: give --cluster=GKE_CLUSTER and --docker_image=IMAGE (an image '
                         'with this repository installed, pip install -e .[tpu])')
  gen, _, size = _ACCELERATOR.value.partition('-')
  command = shlex.join(['python', '-m', 'gemini_embed.train', '--multiprocess', *train_flags])
  project = [f'--project={_PROJECT.value}'] if _PROJECT.value else []
  return ['xpk', 'workload', 'create', f'--cluster={_CLUSTER.value}', f'--workload={_TPU.value}',
          f'--tpu-type={XPK_NAMES.get(gen, gen)}-{size}', f'--num-slices={_NUM_SLICES.value}',
          f'--max-restarts={_MAX_RESTARTS.value}', f'--docker-image={_DOCKER_IMAGE.value}',
          f'--zone={_ZONE.value}', *project, f'--command={command}']


def main(argv: list[str]) -> int | None:
  args = argv[1:]
  if '--' in args:  # absl keeps the separator when flags come after the subcommand
    split = args.index('--')
    args, train_flags = args[:split], args[split + 1:]
  else:
    args, train_flags = args[:1], args[1:]
  if len(args) != 1 or args[0] not in SUBCOMMANDS:
    raise app.UsageError(f'give one subcommand of {", ".join(SUBCOMMANDS)}; got {args}')
  if not _TPU.value or not _ZONE.value:
    raise app.UsageError('--tpu=NAME and --zone=ZONE are required')
  command = args[0]
  needs_train_flags = command in ('run', 'babysit', 'xpk')
  if needs_train_flags != bool(train_flags):
    raise app.UsageError(f'{command}: ' + ('give the train flags after `--`: '
                         f'pod.py ... {command} -- --config=... --workdir=...' if needs_train_flags
                         else f'takes no arguments; got {train_flags}'))
  slices_flag = f'--config.mesh.slices={_NUM_SLICES.value}'
  if needs_train_flags and _NUM_SLICES.value > 1 and slices_flag not in train_flags:
    raise app.UsageError(f'--num_slices={_NUM_SLICES.value}: add {slices_flag} to the train '
                         'flags, so that the mesh spans the slices')
  shell = Shell(_DRY_RUN.value)
  if command == 'xpk':
    print(shlex.join(xpk_command(train_flags)))
    return 0
  if command in ('run', 'babysit'):
    return globals()[command](shell, train_flags)
  globals()[command](shell)
  return 0


if __name__ == '__main__':
  app.run(main)
