"""What `launch/pod.py` runs on the TPU VM workers, as shell command strings (each goes
through `gcloud ... ssh --command=`, so everything in it is quoted with shlex), and the
check of what the workers report back in `preflight` (launch/host_report.py)."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVE = 'gemini_embed-src.tar.gz'   # setup's copy of the tracked files, in ~ on every worker

MEGASCALE_PORT = 8080  # the slices' DCN coordinator: worker 0 of slice 0 (as MaxText's runner)


def git_sha() -> str:
  return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, check=True, text=True,
                        capture_output=True).stdout.strip()


def install_stamp(sha: str) -> str:
  """Changes when pyproject.toml or the commit does: then setup reinstalls."""
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    return hashlib.sha256(f.read() + sha.encode()).hexdigest()[:16]


def setup_remote(repo_dir: str, sha: str, stamp: str) -> str:
  """Unpack the tracked files into repo_dir; (re)install when the stamp differs."""
  repo = shlex.quote(repo_dir)
  install = ('python3 -m venv .venv && .venv/bin/pip install -q -U pip && '
             ".venv/bin/pip install -q -e '.[tpu]'")
  return (f'mkdir -p {repo} && tar -xzf ~/{ARCHIVE} -C {repo} && cd {repo} && '
          f'echo {sha} > .git_sha && '
          f'if [ "$(cat .install_stamp 2>/dev/null)" != {stamp} ]; then '
          f'{install} && echo {stamp} > .install_stamp; '
          f'else echo "install stamp {stamp}: up to date"; fi')


def with_env(env: dict[str, str], argv: list[str]) -> list[str]:
  return ['env', *(f'{k}={v}' for k, v in env.items()), *argv] if env else argv


def preflight_remote(repo_dir: str, env: dict[str, str]) -> str:
  # A crashed run can leave a process holding the TPU (/dev/accel* on v4, /dev/vfio/* on
  # v5e and later) and libtpu's lockfile: the next jax then fails with "TPU in use".
  free = ('(sudo lsof -t /dev/accel* /dev/vfio/* | xargs -r sudo kill -9; '
          'sudo rm -f /tmp/libtpu_lockfile) 2>/dev/null')
  report = shlex.join(with_env(env, ['.venv/bin/python', 'launch/host_report.py']))
  return f'{free}; cd {shlex.quote(repo_dir)} && {report}'


def train_remote(repo_dir: str, train_flags: list[str], background: bool,
                 env: dict[str, str]) -> str:
  run = shlex.join(with_env(env, ['launch/worker_run.sh', *train_flags]))
  if background:
    run = f'nohup {run} > /dev/null 2>&1 < /dev/null &'
  return f'cd {shlex.quote(repo_dir)} && {run}'


def preflight_problems(reports: list[dict], hosts: int, chips: int, sha: str, slices: str
                       ) -> list[str]:
  """What is wrong with the workers' HOST_REPORTs (empty: nothing); `slices` names them
  ('v5p-128 × 1')."""
  problems = []
  if len(reports) != hosts:
    problems.append(f'{len(reports)} of {hosts} workers reported: see the ssh output above '
                    'for the ones that did not')
  for key in ('jax', 'jaxlib', 'libtpu', 'git_sha', 'local_devices', 'devices', 'processes'):
    values = {}
    for r in reports:
      values.setdefault(str(r[key]), []).append(r['host'])
    if len(values) > 1:
      problems.append(f'{key} differs between hosts: ' + '; '.join(
          f'{v} on {", ".join(h)}' for v, h in values.items()) + ' (rerun setup)')
  if reports and any(r['git_sha'] != sha for r in reports):
    problems.append(f'the workers run another commit than this checkout ({sha[:12]}); rerun setup')
  if reports and any(r['devices'] != chips for r in reports):
    problems.append(f'the hosts see {reports[0]["devices"]} devices; {slices} has {chips}')
  processes = sorted(r['process'] for r in reports)
  if processes != list(range(len(reports))):
    problems.append(f'process ids {processes}: expected 0…{len(reports) - 1}, each once')
  return problems
