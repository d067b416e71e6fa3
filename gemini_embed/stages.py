"""A pipeline of the project's own commands (`make demo`, `make recipe`): each stage is
printed before it runs, and the workdir tells which stages are done."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time


def stage(title: str, cmd: list[str], env: dict[str, str] | None = None, *,
          skip: bool = False) -> None:
  """Runs CMD, printed first and timed; `skip` (the workdir says it is done) says so instead."""
  if skip:
    print(f'\n=== {title}: done, skipped', flush=True)
    return
  print(f'\n=== {title}\n$ {" ".join(cmd)}', flush=True)
  start = time.time()
  subprocess.run(cmd, check=True, env=env)
  print(f'=== {title}: {time.time() - start:.0f} s', flush=True)


# Device files of the accelerators JAX drives: TPU (accel, vfio), NVIDIA and AMD GPUs.
ACCELERATOR_DEVICES = ('/dev/accel*', '/dev/vfio/[0-9]*', '/dev/nvidia[0-9]*', '/dev/kfd')


def accelerator_devices() -> list[str]:
  return sorted(p for pattern in ACCELERATOR_DEVICES for p in glob.glob(pattern))


def pipeline_env(cache_dir: str) -> dict[str, str]:
  """The stages' environment: JAX's persistent compilation cache in CACHE_DIR (a later
  stage loads what an earlier one compiled), and JAX_PLATFORMS=cpu where the machine has
  no accelerator device file (unless JAX_PLATFORMS is set): with libtpu installed (the
  test extra) JAX otherwise probes for a TPU in every stage, ~2 s and a screen of libtpu
  errors each."""
  env = dict(os.environ)
  env.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.abspath(cache_dir))
  env.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '1')
  if 'JAX_PLATFORMS' not in env and not accelerator_devices():
    env['JAX_PLATFORMS'] = 'cpu'
    print(f'no accelerator device ({", ".join(ACCELERATOR_DEVICES)}): the stages run with '
          'JAX_PLATFORMS=cpu', flush=True)
  return env


def module(name: str, *args: str) -> list[str]:
  return [sys.executable, '-m', f'gemini_embed.{name}', *args]


def done(workdir: str) -> bool:
  return os.path.exists(os.path.join(workdir, 'checkpoints')) and any(
      os.path.exists(os.path.join(workdir, 'checkpoints', s, 'commit_success.txt'))
      for s in os.listdir(os.path.join(workdir, 'checkpoints')))


def latest_step(workdir: str) -> int:
  return max(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit())
