"""experiments/refactor_check/digest.py: the hash it prints is the sha256 of the newest
checkpoint's params (sorted paths, dtype, shape, bytes), and a one-bit change moves it."""

import hashlib
import importlib.util
import os

import numpy as np
import orbax.checkpoint as ocp

_PATH = os.path.join(os.path.dirname(__file__), '..', 'experiments', 'refactor_check', 'digest.py')


def _digest_module():
  spec = importlib.util.spec_from_file_location('refactor_digest', _PATH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _save(workdir, step, tree):
  ocp.PyTreeCheckpointer().save(os.path.join(workdir, 'checkpoints', str(step), 'params'), tree)


def test_digest_is_the_sha256_of_the_newest_params_and_sees_one_bit(tmp_path):
  digest = _digest_module().params_digest
  w = str(tmp_path / 'run')
  b = np.arange(6, dtype=np.float32).reshape(2, 3)
  a = np.array([1, -2], dtype=np.int32)
  _save(w, 1, {'b': np.zeros((2, 3), np.float32), 'a': a})
  _save(w, 7, {'b': b, 'a': a})
  expected = hashlib.sha256()
  for key, x in (("['a']", a), ("['b']", b)):          # sorted by key path
    expected.update(f'{key}|{x.dtype}|{x.shape}|'.encode())
    expected.update(x.tobytes())
  assert digest(w) == (7, 2, expected.hexdigest())

  flipped = b.copy()
  flipped.view(np.uint32)[1, 2] ^= 1                   # one bit of one float
  w2 = str(tmp_path / 'run2')
  _save(w2, 7, {'b': flipped, 'a': a})
  assert digest(w2)[2] != expected.hexdigest()
