"""A pipeline of the project's own commands (`make demo`, `make recipe`): each stage is
printed before it runs, and the workdir tells which stages are done."""

from __future__ import annotations

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


def module(name: str, *args: str) -> list[str]:
  return [sys.executable, '-m', f'gemini_embed.{name}', *args]


def done(workdir: str) -> bool:
  return os.path.exists(os.path.join(workdir, 'checkpoints')) and any(
      os.path.exists(os.path.join(workdir, 'checkpoints', s, 'commit_success.txt'))
      for s in os.listdir(os.path.join(workdir, 'checkpoints')))


def latest_step(workdir: str) -> int:
  return max(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit())
