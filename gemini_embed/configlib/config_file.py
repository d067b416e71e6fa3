"""Loading a Python config file (`configs/NAME.py`) by path, as `--config=FILE:ARG` does.

    config = load_config_file('configs/finetune.py', 'tiny,mixture=code')
    module = config_module('configs/finetune.py')     # e.g. for its `sweep(add)`
"""

from __future__ import annotations

import importlib.util
import os
import types

import ml_collections


def config_module(path: str) -> types.ModuleType:
  """The config file at `path`, executed as a fresh module (not cached in sys.modules)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such config file; give a path such as '
                            'configs/finetune.py')
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f'config_file_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """`get_config(arg)` of the config file at `path`."""
  module = config_module(path)
  if not callable(getattr(module, 'get_config', None)):
    raise AttributeError(f'{path}: defines no get_config(arg); a config file returns its '
                         'ConfigDict from get_config')
  return module.get_config(arg)
