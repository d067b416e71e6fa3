"""WORKDIR/lease.json: one trainer per workdir, on local disks and object stores alike.

Object stores (gs://) have no exclusive create or atomic rename, and a recreated pod
slice shares no locks, so the lease is a plain file that its holder keeps fresh; it
needs only what both kinds of storage give: a whole-file write that readers see whole
(an object PUT on gs://, a temporary file + rename locally; storage.write_text) and
read-after-write consistency (GCS has it):

    {"run_id": uuid, "host": ..., "pid": ..., "renewed": unix time, "heartbeat_s": ..., "ttl_s": ...}

A trainer takes it when there is none, when it is stale (not renewed for `ttl_s`, 3
heartbeats), or when its holder ran on this host and its pid is gone (a killed run's
re-run starts at once). Two taking it at once: each writes, waits `settle_s`, reads it
back; the last writer wins, the other sees another run id and refuses. A daemon thread
rewrites it every `heartbeat_s`; if it finds another run's lease there (this process
stalled past the TTL and was taken over) it calls `on_lost` (default: interrupt the
main thread, so that two trainers never write one workdir). A clean exit deletes it.

Hosts' clocks must agree to well within the TTL (NTP does). Tests shorten the periods
with GEMINI_EMBED_LEASE_HEARTBEAT_S and GEMINI_EMBED_LEASE_SETTLE_S.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable, Iterator

from absl import logging
from etils import epath

from gemini_embed import storage

LEASE_FILE = 'lease.json'
HEARTBEAT_S = 30.0
TTL_HEARTBEATS = 3
SETTLE_S = 2.0


class LeaseHeldError(RuntimeError):
  """Another trainer holds the workdir (or its lease file cannot be read)."""


def _interrupt_main(message: str) -> None:
  del message  # already logged
  _thread.interrupt_main()


class WorkdirLease:
  """acquire() / release(), or a context manager."""

  def __init__(self, workdir: str, *, heartbeat_s: float | None = None,
               settle_s: float | None = None,
               on_lost: Callable[[str], None] = _interrupt_main):
    self.path = epath.Path(workdir) / LEASE_FILE
    self.heartbeat_s = heartbeat_s or float(
        os.environ.get('GEMINI_EMBED_LEASE_HEARTBEAT_S', HEARTBEAT_S))
    self.settle_s = settle_s if settle_s is not None else float(
        os.environ.get('GEMINI_EMBED_LEASE_SETTLE_S', SETTLE_S))
    self.ttl_s = TTL_HEARTBEATS * self.heartbeat_s
    self.run_id = uuid.uuid4().hex
    self.host, self.pid = socket.gethostname(), os.getpid()
    self._on_lost = on_lost
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None

  def __enter__(self) -> 'WorkdirLease':
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()

  def acquire(self) -> None:
    """Takes the lease or raises LeaseHeldError naming its holder."""
    current = self._read()
    if current is not None:
      self._check_free(current)
    storage.makedirs(self.path.parent)
    self._write()
    time.sleep(self.settle_s)
    winner = self._read()
    if winner is None or winner.get('run_id') != self.run_id:
      raise LeaseHeldError(f'{self.path}: another trainer took this workdir while this one '
                           f'started ({_holder(winner)}); use another --workdir or stop it')
    logging.info('%s: held by run %s (%s, pid %d), renewed every %.0f s', self.path,
                 self.run_id, self.host, self.pid, self.heartbeat_s)
    self._thread = threading.Thread(target=self._heartbeat, name='workdir-lease', daemon=True)
    self._thread.start()

  def release(self) -> None:
    """Stops the heartbeat and deletes the lease if it is still this run's."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None
    with contextlib.suppress(LeaseHeldError):
      current = self._read()
      if current is not None and current.get('run_id') == self.run_id:
        self.path.unlink(missing_ok=True)

  # ---- the lease file ---------------------------------------------------------
  def _check_free(self, record: dict[str, Any]) -> None:
    age = time.time() - float(record['renewed'])
    ttl = float(record.get('ttl_s', self.ttl_s))
    if age > ttl:
      logging.warning('%s: taking over a stale lease (%s; not renewed for %.0f s > %.0f s)',
                      self.path, _holder(record), age, ttl)
      return
    if record.get('host') == self.host and not _pid_alive(int(record['pid'])):
      logging.warning('%s: taking over the lease of a process that is gone (%s)',
                      self.path, _holder(record))
      return
    raise LeaseHeldError(
        f'{self.path}: this workdir is held by another trainer ({_holder(record)}, '
        f'renewed {age:.0f} s ago). Two trainers would overwrite each other\'s checkpoints: '
        'wait for that run to finish, stop it, or use another --workdir. If it died, its '
        f'lease expires {ttl - age:.0f} s from now (at once for a re-run on its host).')

  def _read(self) -> dict[str, Any] | None:
    try:
      text = self.path.read_text()
    except FileNotFoundError:
      return None
    try:
      record = json.loads(text)
      if not isinstance(record, dict):
        raise ValueError('not a JSON object')
      record['renewed'], record['pid'] = float(record['renewed']), int(record['pid'])
      record['run_id'] = str(record['run_id'])
    except (ValueError, TypeError, KeyError) as e:
      why = f'no {e} field' if isinstance(e, KeyError) else e
      raise LeaseHeldError(f'{self.path}: unreadable ({why}); if no trainer is running on this '
                           'workdir, delete the file and start again') from None
    return record

  def _write(self) -> None:
    record = dict(run_id=self.run_id, host=self.host, pid=self.pid, renewed=time.time(),
                  heartbeat_s=self.heartbeat_s, ttl_s=self.ttl_s)
    storage.write_text(self.path, json.dumps(record))  # readers never see a partial file

  def _heartbeat(self) -> None:
    while not self._stop.wait(self.heartbeat_s):
      try:
        current = self._read()
        if current is None or current.get('run_id') != self.run_id:
          message = (f'{self.path}: this run ({self.run_id}) lost the workdir to '
                     f'{_holder(current)}; stopping so that only one trainer writes it')
          logging.error(message)
          self._on_lost(message)
          return
        self._write()
      except (OSError, LeaseHeldError) as e:  # a storage hiccup: try again next beat
        logging.warning('%s: renewal failed (%s); retrying in %.0f s', self.path, e,
                        self.heartbeat_s)


@contextlib.contextmanager
def held(workdir: str, holder: bool = True) -> Iterator[None]:
  """The workdir's lease around a block; a no-op where `holder` is false (in a
  multi-process run only process 0 holds it)."""
  if not holder:
    yield
    return
  with WorkdirLease(workdir):
    yield


def _holder(record: dict[str, Any] | None) -> str:
  if record is None:
    return 'no lease left'
  return f'host {record.get("host")}, pid {record.get("pid")}, run {record.get("run_id")}'


def _pid_alive(pid: int) -> bool:
  if pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process
    return True
  return True
