"""The trainer's start-up warning when etils would send gs:// through tf.io.gfile rather
than gcsfs: its rule against etils' own (gpath._is_tf_installed), once per process, and
the run's paths it looks at (workdir, data under config.data.root). No training."""

import importlib.util
import logging

import pytest
from etils.epath import gpath

from gemini_embed import storage
from gemini_embed.configlib import base_config
from gemini_embed.data.spec import dataset_entry

_find_spec = importlib.util.find_spec


@pytest.fixture
def fresh(monkeypatch, caplog):
  """A process that has not warned yet, TensorFlow importable or not as a test says."""
  monkeypatch.setattr(storage, '_warned_tf_routes_gs', False)
  monkeypatch.delenv('EPATH_USE_TF', raising=False)
  caplog.set_level(logging.WARNING)

  def tensorflow(installed: bool):
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *args: (
        (_find_spec('os') if installed else None) if name == 'tensorflow'
        else _find_spec(name, *args)))

  return tensorflow


def _warnings(caplog):
  return [r.getMessage() for r in caplog.records if 'tf.io.gfile' in r.getMessage()]


@pytest.mark.parametrize('value', [None, 'false', 'False', '0', 'no', 'f', 'true', '1'])
@pytest.mark.parametrize('installed', [True, False])
def test_the_rule_is_etils_own(fresh, monkeypatch, value, installed):
  fresh(installed)
  if value is not None:
    monkeypatch.setenv('EPATH_USE_TF', value)
  gpath._is_tf_installed.cache_clear()
  try:
    assert storage._etils_prefers_tf() == gpath._is_tf_installed()
  finally:
    gpath._is_tf_installed.cache_clear()


def test_warns_once_naming_the_path_and_the_fix(fresh, caplog):
  fresh(True)
  config = base_config('tiny')
  config.data.root = 'gs://bucket/corpora'
  config.data.datasets['a'] = dataset_entry('a-*.jsonl, /local/b.jsonl', 'a task')
  paths = storage.run_paths(config, '/local/run')
  assert 'gs://bucket/corpora/a-*.jsonl' in paths and '/local/b.jsonl' in paths
  assert storage.warn_if_tf_routes_gs(paths)
  assert storage.warn_if_tf_routes_gs(['gs://bucket/run'])
  (message,) = _warnings(caplog)
  assert 'gs://bucket/corpora' in message and 'Set EPATH_USE_TF=false' in message


@pytest.mark.parametrize('case', ['local paths', 'EPATH_USE_TF=false', 'no TensorFlow'])
def test_no_warning(fresh, monkeypatch, caplog, case):
  fresh(case != 'no TensorFlow')
  if case == 'EPATH_USE_TF=false':
    monkeypatch.setenv('EPATH_USE_TF', 'false')
  paths = ['/local/run', 'runs/corpora/a.jsonl'] if case == 'local paths' else ['gs://b/run']
  assert not storage.warn_if_tf_routes_gs(paths)
  assert not _warnings(caplog)
