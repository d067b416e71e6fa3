"""`configs/NAME.py:key=value,flag` arguments (big_vision's parse_arg).

    get_config('tiny,seed=3')  →  parse_arg('tiny,seed=3', tiny=False, seed=0)
                                →  ConfigDict(tiny=True, seed=3)

Types follow the defaults; a bare word sets a boolean to True; an unknown key
is an error that lists the known ones.
"""

from __future__ import annotations

from typing import Any

import ml_collections


def _convert(key: str, text: str, default: Any, config_file: str) -> Any:
  if isinstance(default, bool):
    if text.lower() in ('1', 'true', 'yes', ''):
      return True
    if text.lower() in ('0', 'false', 'no'):
      return False
    raise ValueError(f'{config_file}: argument {key}={text!r} should be a boolean')
  try:
    return type(default)(text) if default is not None else text
  except ValueError:
    raise ValueError(f'{config_file}: argument {key}={text!r} should be '
                     f'{type(default).__name__}') from None


def parse_arg(arg: str | None, *, config_file: str = 'config', **spec: Any
              ) -> ml_collections.ConfigDict:
  """Parses 'a=1,b,c=x' against the defaults in `spec`."""
  out = ml_collections.ConfigDict(dict(spec))
  for item in filter(None, (arg or '').split(',')):
    key, eq, value = item.partition('=')
    key = key.strip()
    if key not in spec:
      raise ValueError(f'{config_file}: unknown argument {key!r}; known arguments: {sorted(spec)}')
    out[key] = _convert(key, value.strip() if eq else '', spec[key], config_file)
  return out
