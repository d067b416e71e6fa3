"""`python -m tests.curate.kill_after TOOL ARGS` runs `python -m gemini_embed.curate.TOOL
ARGS` and SIGKILLs itself right after its $KILL_AFTER_FSYNCS-th fsync (jobs.run fsyncs
once per window of rows written): a process killed mid-run, at a known point."""

import os
import runpy
import signal
import sys

_fsync = os.fsync
_left = [int(os.environ['KILL_AFTER_FSYNCS'])]


def _fsync_then_die(fd):
  _fsync(fd)
  _left[0] -= 1
  if _left[0] == 0:
    os.kill(os.getpid(), signal.SIGKILL)


os.fsync = _fsync_then_die
tool = sys.argv.pop(1)
runpy.run_module(f'gemini_embed.curate.{tool}', run_name='__main__', alter_sys=True)
