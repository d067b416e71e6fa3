"""A process that waits for a peer who never comes: `train --coordinator_timeout` ends
the wait, and the log names the address, the processes expected and what to check."""

import os
import socket
import subprocess
import sys

import pytest

from gemini_embed.distributed import NOT_JOINED_EXIT_CODE
from tests.train_fixtures import ROOT, train_env


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.mark.parametrize('process_id,expected', [
    (0, 'runs the coordinator at {address} and waited 4 s for processes 1, 2 of 3'),
    (2, 'process 2 of 3 on {host} could not register with the coordinator at {address}'),
])
def test_a_missing_process_is_named_before_the_run_aborts(tmp_path, process_id, expected):
  address = f'127.0.0.1:{_free_port()}'
  cmd = [sys.executable, '-m', 'gemini_embed.train', f'--config={ROOT}/configs/prefinetune.py:tiny',
         f'--workdir={tmp_path}', f'--coordinator_address={address}', '--num_processes=3',
         f'--process_id={process_id}', '--coordinator_timeout=4']
  out = subprocess.run(cmd, env=train_env(1), capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert expected.format(address=address, host=socket.gethostname()) in out.stderr, \
      out.stderr[-3000:]
  assert not os.path.exists(tmp_path / 'status.json')  # nothing started
  assert out.returncode == NOT_JOINED_EXIT_CODE
