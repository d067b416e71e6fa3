"""WORKDIR/lease.json: one trainer per workdir. A second one is refused naming the holder;
a stale lease (no heartbeat for a TTL) or one whose pid is gone on this host is taken
over; a clean exit releases it."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from gemini_embed.workdir_lease import LeaseHeldError, WorkdirLease
from tests.train_fixtures import load_config, train_command, train_env, write_training_data

FAST = dict(heartbeat_s=0.05, settle_s=0.02)


def _record(tmp_path) -> dict:
  with open(tmp_path / 'lease.json') as f:
    return json.load(f)


def _write_record(tmp_path, **fields) -> None:
  record = dict(run_id='0123-other-run', host='elsewhere', pid=4242, renewed=time.time(),
                heartbeat_s=30.0, ttl_s=90.0)
  record.update(fields)
  with open(tmp_path / 'lease.json', 'w') as f:
    json.dump(record, f)


def test_a_second_acquisition_is_refused_naming_the_holder_until_released(tmp_path):
  first = WorkdirLease(str(tmp_path), **FAST)
  first.acquire()
  try:
    with pytest.raises(LeaseHeldError) as e:
      WorkdirLease(str(tmp_path), **FAST).acquire()
    msg = str(e.value)
    print(msg)
    for part in ('lease.json', socket.gethostname(), f'pid {os.getpid()}', first.run_id):
      assert part in msg
  finally:
    first.release()
  assert not (tmp_path / 'lease.json').exists()
  with WorkdirLease(str(tmp_path), **FAST) as again:  # a re-run starts at once
    assert _record(tmp_path)['run_id'] == again.run_id


def test_the_heartbeat_keeps_a_live_lease_fresh(tmp_path):
  with WorkdirLease(str(tmp_path), **FAST) as lease:
    first = _record(tmp_path)['renewed']
    time.sleep(0.5)  # > 3 TTLs: only the heartbeat keeps it from going stale
    assert _record(tmp_path)['renewed'] > first
    with pytest.raises(LeaseHeldError):
      WorkdirLease(str(tmp_path), **FAST).acquire()
    assert _record(tmp_path)['run_id'] == lease.run_id


def test_a_live_lease_from_another_host_is_refused_and_a_stale_one_taken_over(tmp_path):
  _write_record(tmp_path)
  with pytest.raises(LeaseHeldError, match='host elsewhere, pid 4242'):
    WorkdirLease(str(tmp_path), **FAST).acquire()
  _write_record(tmp_path, renewed=time.time() - 91)
  with WorkdirLease(str(tmp_path), **FAST) as lease:
    assert _record(tmp_path)['run_id'] == lease.run_id


def test_a_lease_whose_pid_is_gone_on_this_host_is_taken_over_at_once(tmp_path):
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  _write_record(tmp_path, host=socket.gethostname(), pid=dead.pid)
  with WorkdirLease(str(tmp_path), **FAST) as lease:
    assert _record(tmp_path)['run_id'] == lease.run_id


def test_an_unreadable_lease_is_an_error_naming_the_file(tmp_path):
  for text in ('{"run_id": ', '{"run_id": "x", "pid": 1}'):
    (tmp_path / 'lease.json').write_text(text)
    with pytest.raises(LeaseHeldError, match='lease.json: unreadable'):
      WorkdirLease(str(tmp_path), **FAST).acquire()


def test_of_two_starting_at_once_exactly_one_wins(tmp_path):
  leases = [WorkdirLease(str(tmp_path), heartbeat_s=0.05, settle_s=0.2) for _ in range(2)]
  outcomes, start = [None, None], threading.Barrier(2)

  def take(i):
    start.wait()
    try:
      leases[i].acquire()
      outcomes[i] = 'held'
    except LeaseHeldError:
      outcomes[i] = 'refused'

  threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert sorted(outcomes) == ['held', 'refused']
  winner = leases[outcomes.index('held')]
  assert _record(tmp_path)['run_id'] == winner.run_id
  winner.release()


def test_a_holder_whose_lease_was_taken_over_is_told(tmp_path):
  lost = threading.Event()
  lease = WorkdirLease(str(tmp_path), on_lost=lambda msg: lost.set(), **FAST)
  lease.acquire()
  _write_record(tmp_path)  # another run took it over (this one stalled past the TTL)
  assert lost.wait(2.0)
  lease.release()
  assert _record(tmp_path)['run_id'] == '0123-other-run'  # not ours to delete


def test_a_second_trainer_is_refused_before_writing_anything(tmp_path):
  data_root = write_training_data(str(tmp_path / 'data'), load_config('prefinetune'))
  workdir = tmp_path / 'run'
  workdir.mkdir()
  # A live holder: this test process, on this host, renewed just now.
  _write_record(workdir, host=socket.gethostname(), pid=os.getpid(), run_id='the-first-run')
  out = subprocess.run(train_command(str(workdir), data_root), env=train_env(1),
                       capture_output=True, text=True, timeout=600)
  assert out.returncode != 0
  assert f'host {socket.gethostname()}, pid {os.getpid()}, run the-first-run' in out.stderr
  assert sorted(os.listdir(workdir)) == ['lease.json']
  assert _record(workdir)['run_id'] == 'the-first-run'
