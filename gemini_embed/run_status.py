"""How a training run ended: `WORKDIR/status.json` and the trainer's exit code.

    {"state": "running" | "finished" | "preempted" | "failed",
     "step": 120,               # the step reached (running: the one it started from;
                                #   failed: the one that failed)
     "total_steps": 1000,
     "last_checkpoint": 120,    # newest checkpoint on disk (null: none)
     "reason": "...",           # failed only: what went wrong, one line
     "time": 1767000000.0}      # unix seconds of the write

"running" is written when the loop starts: a run killed outright (SIGKILL, out of
memory) leaves it. Exit codes: 0 finished, PREEMPTED_EXIT_CODE after a SIGTERM save (rerun the same
command to resume), FAILED_EXIT_CODE when training stopped on an error it names.
"""

from __future__ import annotations

import json
import os
import time

import jax

from gemini_embed import storage

STATUS_FILE = 'status.json'
PREEMPTED_EXIT_CODE = 42
FAILED_EXIT_CODE = 1
EXIT_CODES = {'finished': 0, 'preempted': PREEMPTED_EXIT_CODE, 'failed': FAILED_EXIT_CODE}


class RunFailed(RuntimeError):
  """Training cannot go on at `step`; the message says why and what is kept."""

  def __init__(self, step: int, message: str):
    super().__init__(message)
    self.step = step


def read_status(workdir: str) -> dict | None:
  """WORKDIR/status.json of a local workdir; None when there is none yet."""
  path = os.path.join(workdir, STATUS_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def finished(workdir: str) -> bool:
  """The run reached its last step and said so (a pipeline's stage is done)."""
  status = read_status(workdir)
  return bool(status) and status['state'] == 'finished' and status['step'] >= status['total_steps']


def write_status(workdir: str, state: str, step: int, total_steps: int,
                 last_checkpoint: int | None, reason: str | None = None) -> None:
  """WORKDIR/status.json, whole or not at all (process 0 only)."""
  if jax.process_index() != 0:
    return
  record = dict(state=state, step=step, total_steps=total_steps, last_checkpoint=last_checkpoint,
                time=time.time())
  if reason is not None:
    record['reason'] = reason
  storage.write_text(storage.as_path(workdir) / STATUS_FILE, json.dumps(record, indent=2))

