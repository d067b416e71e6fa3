"""Test setup: simulate a pod slice with 8 CPU devices (before JAX starts)."""

import os

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=8').strip()
# libtpu is installed (the test extra, for gemini_embed.aot): keep JAX from probing for a TPU.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
# One OpenBLAS thread (numpy/scikit-learn, here and in every CLI subprocess, which inherit
# it): the tests' matrices are small, and a second thread that finds the other core busy
# makes a 45-class LogisticRegression.fit ~15x slower (1.3 s vs 0.08 s measured on 2 shared
# cores); it dominated the demo's evaluation. JAX and torch do not use it.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import jax  # noqa: E402
from absl import flags  # noqa: E402

# grain workers and absl-using code read flags; pytest never parses them.
flags.FLAGS.mark_as_parsed()

assert jax.device_count() == 8, 'tests expect 8 simulated CPU devices'


def pytest_collection_modifyitems(items):
  """Slow tests first, the demo's end-to-end run (minutes) first of all: with two workers
  (`make test`, pytest-xdist by file) the longest files start at once instead of finishing
  last on one worker while the other idles."""
  def key(item):
    return ('test_demo.py' not in item.nodeid, item.get_closest_marker('slow') is None)
  items.sort(key=key)  # stable: file order and test order otherwise kept


def pytest_xdist_make_scheduler(config, log):
  """`make test`'s --dist loadfile, except that the modules checking the real LLMs are one
  unit: they share tests/models/real_cache.py's per-process loads (tens of seconds per
  model and reference), which two workers would each pay."""
  from xdist.scheduler import LoadFileScheduling  # noqa: PLC0415  (only under xdist)

  from tests.models.real_cache import MODULES  # noqa: PLC0415

  if config.getvalue('dist') != 'loadfile':
    return None  # another --dist: xdist's own scheduler

  class ModuleScheduling(LoadFileScheduling):
    def _split_scope(self, nodeid: str) -> str:
      module = nodeid.split('::', 1)[0]
      return 'real LLMs' if module in MODULES else module

  return ModuleScheduling(config, log)
