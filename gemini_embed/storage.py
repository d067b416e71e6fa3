"""Where files live: local disks and object stores (gs://), one way, through etils.epath.

    path = storage.as_path('gs://bucket/runs/ft1')   # stays gs://; a local path is made absolute
    storage.write_text(path / 'status.json', text)   # readers never see a partial file
    storage.check_writable(workdir, '--workdir')     # at start-up, before anything compiles

Every tool's paths go through here or `epath.Path`: `os.path.abspath('gs://b/x')` would
be `<cwd>/gs:/b/x`, and `open`/`os.makedirs` would write each host's local disk.

Object stores differ from a disk in ways the callers rely on:
  * a whole-object write is atomic (readers see the old or the new object), so
    `write_text` writes in place there, and through a temporary file + rename locally;
  * nothing can be appended: files that grow (metrics.jsonl) are rewritten whole;
  * a "directory" is a prefix: `makedirs` does nothing there (gcsfs's would create a
    mistyped bucket), and renaming one copies every object (not atomic);
  * a read is a request: files read by offset (JSONL rows) are copied locally once
    (`local_copy`).

gs:// goes through gcsfs (the `gcs` extra) unless TensorFlow is installed, when etils
prefers tf.io.gfile: set EPATH_USE_TF=false to keep gcsfs (tests do; the trainer warns at
start-up otherwise: warn_if_tf_routes_gs).
"""

from __future__ import annotations

import atexit
import functools
import glob as glob_lib
import importlib.util
import os
import shutil
import socket
import tempfile
import uuid
from typing import Iterable, Sequence

import jax
import numpy as np
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

_GLOB_CHARS = frozenset('*?[')
_HOSTNAME_BYTES = 255
_COPY_CHUNK = 8 << 20
_local_copies: dict[str, str] = {}  # remote URI → its local copy (local_copy)
_warned_tf_routes_gs = False        # warn_if_tf_routes_gs warns once per process


class StorageError(OSError):
  """A path a tool needs cannot be read or written; the message says which and what to do."""


def is_remote(path: str | os.PathLike) -> bool:
  """True for URIs (gs://, s3://, …): no local disk, no append, no atomic rename."""
  return '://' in os.fspath(path)


def as_path(path: str | os.PathLike) -> epath.Path:
  """An epath.Path; a local path made absolute (orbax wants one), a URI kept as it is."""
  text = os.fspath(path)
  return epath.Path(text if is_remote(text) else os.path.abspath(text))


def join(root: str, path: str) -> str:
  """`path` under `root` unless it is absolute or a URI itself (config globs, data roots)."""
  if is_remote(path) or os.path.isabs(path):
    return path
  return str(epath.Path(root) / path) if is_remote(root) else os.path.join(root, path)


def makedirs(path: str | os.PathLike) -> epath.Path:
  """`path` (and its parents) as a directory; nothing on an object store, which has no
  directories, and where gcsfs's makedirs would create a missing (mistyped) bucket."""
  path = as_path(path)
  if not is_remote(path):
    path.mkdir(parents=True, exist_ok=True)
  return path


def same_place(a: str, b: str) -> bool:
  """Whether two paths name the same directory (symlinks resolved locally)."""
  if is_remote(a) or is_remote(b):
    return os.fspath(a).rstrip('/') == os.fspath(b).rstrip('/')
  return os.path.realpath(a) == os.path.realpath(b)


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes `path` whole: in place on an object store (an object write is atomic), through
  a sibling temporary file and a rename on a local disk."""
  path = as_path(path)
  if is_remote(path):
    path.write_text(text)
    return
  tmp = path.parent / f'.{path.name}.{uuid.uuid4().hex}.tmp'
  tmp.write_text(text)
  tmp.replace(path)


def glob(pattern: str) -> list[str]:
  """Sorted paths matching `pattern`, local (glob.glob) or a URI (no `**` there: etils
  refuses recursive patterns on object stores)."""
  if not is_remote(pattern):
    return sorted(glob_lib.glob(pattern))
  parts = pattern.split('/')
  first = next((i for i, p in enumerate(parts) if _GLOB_CHARS & set(p)), None)
  if first is None:
    return [pattern] if epath.Path(pattern).exists() else []
  base = epath.Path('/'.join(parts[:first]))
  return sorted(str(p) for p in base.glob('/'.join(parts[first:])))


def local_copy(path: str) -> str:
  """`path` itself if local; a remote file copied (once per process) into a local cache
  folder that is deleted at exit: for readers that seek (JSONL rows read by offset)."""
  if not is_remote(path):
    return path
  if path not in _local_copies:
    local = os.path.join(_cache_dir(), f'{len(_local_copies)}-{epath.Path(path).name}')
    copy_file(path, local)
    _local_copies[path] = local
  return _local_copies[path]


@functools.cache
def _cache_dir() -> str:
  folder = tempfile.mkdtemp(prefix='gemini_embed-remote-')
  atexit.register(shutil.rmtree, folder, ignore_errors=True)
  return folder


def upload_dir(local_dir: str, target: str) -> None:
  """Copies the files under `local_dir` to the directory `target` (local or gs://)."""
  for folder, _, files in os.walk(local_dir):
    for name in sorted(files):
      path = os.path.join(folder, name)
      destination = as_path(target) / os.path.relpath(path, local_dir)
      makedirs(destination.parent)
      copy_file(path, destination)


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
  """One file, streamed, between any two places (epath's copy picks the source's backend
  for both ends: a local source would write a gs:// target to the local disk)."""
  with as_path(source).open('rb') as src, as_path(target).open('wb') as dst:
    shutil.copyfileobj(src, dst, _COPY_CHUNK)


def check_writable(directory: str, field: str) -> None:
  """Creates `directory`, writes, reads back and deletes a probe file there; a StorageError
  naming `field` and the cause otherwise. Call at start-up, before anything compiles:
  a wrong bucket or missing credentials should not surface at the first checkpoint."""
  path = as_path(directory)
  probe = path / f'.write-probe-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}'
  try:
    makedirs(path)
    probe.write_text('probe')
    back = probe.read_text()
    probe.unlink()
  except Exception as e:  # gcsfs/google-auth raise many kinds; all mean "not usable"
    raise StorageError(f'{field}={directory}: cannot write there ({type(e).__name__}: '
                       f'{_first_line(e)}). {_advice(directory)}') from e
  if back != 'probe':
    raise StorageError(f'{field}={directory}: a file written there reads back differently')


def check_readable(path: str, field: str) -> None:
  """`path` exists (file or directory); a StorageError naming `field` and the cause otherwise."""
  try:
    found = epath.Path(path).exists()
  except Exception as e:  # an unreachable store, refused credentials
    raise StorageError(f'{field}={path}: cannot read it ({type(e).__name__}: '
                       f'{_first_line(e)}). {_advice(path)}') from e
  if not found:
    raise StorageError(f'{field}={path}: not found')


def check_workdir(workdir: str) -> None:
  """A trainer's --workdir, from every process before anything compiles: shared by all
  hosts of the run (check_shared_workdir) and writable from each (check_writable)."""
  check_shared_workdir(workdir, process_hostnames())
  check_writable(workdir, '--workdir')


def process_hostnames() -> list[str]:
  """The hostname of every process of the run, by process index (a collective)."""
  name = socket.gethostname().encode()[:_HOSTNAME_BYTES]
  if jax.process_count() == 1:
    return [name.decode()]
  buf = np.zeros(_HOSTNAME_BYTES, np.uint8)
  buf[:len(name)] = np.frombuffer(name, np.uint8)
  rows = multihost_utils.process_allgather(buf)
  return [bytes(row).rstrip(b'\0').decode(errors='replace') for row in np.asarray(rows)]


def check_shared_workdir(workdir: str, hosts: Sequence[str]) -> None:
  """A run whose processes live on more than one host (`hosts`: each process's hostname)
  needs a workdir they all see: a local path would give every host its own checkpoints,
  and a resume would find only part of them."""
  distinct = sorted(set(hosts))
  if len(distinct) > 1 and not is_remote(workdir):
    shown = ', '.join(distinct[:4]) + (f', … ({len(distinct)} hosts)' if len(distinct) > 4 else '')
    raise StorageError(
        f'--workdir={workdir} is a local path, but this run spans {len(distinct)} hosts '
        f'({shown}): each would write its own copy. Use a directory every host sees, '
        'e.g. --workdir=gs://BUCKET/runs/NAME (pip install -e .[tpu] brings gcsfs).')


def warn_if_tf_routes_gs(paths: Iterable[str | os.PathLike]) -> bool:
  """Logs a warning, once per process, when one of `paths` is gs:// and etils would read
  it through tf.io.gfile: it does when TensorFlow is importable (the seqio extra brings it)
  and EPATH_USE_TF is not false, and it caches that choice for the process at the first
  gs:// access. The gcs extra installs and the tests exercise gcsfs, not that route. Call
  at start-up, before the first gs:// access. True if it warned (now or before)."""
  global _warned_tf_routes_gs
  if _warned_tf_routes_gs:
    return True
  remote = next((os.fspath(p) for p in paths if os.fspath(p).startswith('gs://')), None)
  if remote is None or not _etils_prefers_tf():
    return False
  logging.warning('%s: etils will route gs:// through tf.io.gfile (TensorFlow is installed and '
                  'EPATH_USE_TF=%r), not through gcsfs, which the gcs extra installs and the '
                  'tests cover. Set EPATH_USE_TF=false in the environment of every process to '
                  'use gcsfs.', remote, os.environ.get('EPATH_USE_TF', ''))
  _warned_tf_routes_gs = True
  return True


def _etils_prefers_tf() -> bool:
  """etils.epath's own rule (gpath._is_tf_installed), without importing TensorFlow."""
  if os.environ.get('EPATH_USE_TF', '').lower() in ('false', 'no', 'f', '0'):
    return False
  return importlib.util.find_spec('tensorflow') is not None


def _first_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return text[0][:300] if text else ''


def _advice(path: str) -> str:
  if os.fspath(path).startswith('gs://'):
    return ('Check the bucket name, that this machine has credentials with access to it '
            '(`gcloud auth application-default login`, or the VM\'s service account), and '
            'that gcsfs is installed (pip install -e .[tpu]).')
  return 'Check that the path exists and that this user may write there.'


def run_paths(config, workdir: str) -> list[str]:
  """Every place a training run reads or writes: the workdir, the model and tokenizer it
  starts from, the dev suite, and each dataset's files under config.data.root."""
  root = config.data.root
  data = [join(root, p.strip()) for entry in config.data.datasets.values()
          for p in entry.files.split(',') if p.strip()]
  return [workdir, config.init_from, config.tokenizer, config.eval.suite, root, *data]
