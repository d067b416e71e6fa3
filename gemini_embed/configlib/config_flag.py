"""Parsing the command line of a tool that takes `--config=FILE[:ARGS] --config.FIELD=VALUE`
(ml_collections config_flags), so that a bad `--config` is one line, not a traceback:

    app.run(main, flags_parser=parse_config_flags)

A config file that does not exist, or an override naming no field of the config
(`--config.optim.learnin_rate=1`), is one `FATAL Flags parsing error:` line naming
the flag, the field and the closest known names, and exit status 2 (a usage error).
"""

from __future__ import annotations

import difflib
import os
import sys

import ml_collections
from absl import app, flags

USAGE_ERROR = 2


def parse_config_flags(argv: list[str], name: str = 'config') -> list[str]:
  """absl's flag parsing (`app.run`'s flags_parser) with `--{name}` errors made one line."""
  value, overrides = _config_arguments(argv, name)
  if value is not None and not os.path.isfile(value.split(':', 1)[0]):
    _usage_error(f'--{name}={value}: no such config file; give a path such as '
                 'configs/finetune.py[:tiny]')
  try:
    return app.parse_flags_with_usage(argv)
  except (KeyError, AttributeError):  # ml_collections' error for an unknown override
    problem = value and unknown_field(flags.FLAGS[name].parser.parse(value), overrides, name)
    if not problem:
      raise
    _usage_error(problem)


def unknown_field(config: ml_collections.ConfigDict, overrides: list[str],
                  name: str = 'config') -> str | None:
  """The first override path (`optim.learnin_rate`) naming no field of `config`, described
  with the closest known names; None when every path names a field."""
  for path in overrides:
    node, where = config, name
    for part in path.split('.'):
      part = part.split('[', 1)[0]  # `mrl_dims[0]` indexes the field `mrl_dims`
      if not isinstance(node, ml_collections.ConfigDict):
        return (f'--{name}.{path}: {where} is a value ({type(node).__name__}), '
                'not a group of fields')
      if part not in node:
        known = sorted(node.keys())
        close = difflib.get_close_matches(part, known, n=3)
        hint = (f'did you mean {" or ".join(f"{where}.{c}" for c in close)}?' if close
                else f'its fields: {", ".join(known)}')
        return f'--{name}.{path}: {where} has no field {part!r}; {hint}'
      node, where = node[part], f'{where}.{part}'
  return None


def _config_arguments(argv: list[str], name: str) -> tuple[str | None, list[str]]:
  """(the `--name` value, the `--name.PATH` override paths) as given on the command line."""
  value, overrides = None, []
  args = iter(argv[1:])
  for arg in args:
    if arg == '--':
      break
    if not arg.startswith('-'):
      continue
    key, eq, rest = arg.lstrip('-').partition('=')
    if key == name:
      value = rest if eq else next(args, None)
    elif key.startswith(name + '.'):
      overrides.append(key[len(name) + 1:])
  return value, overrides


def _usage_error(message: str) -> None:
  sys.stderr.write(f'FATAL Flags parsing error: {message}\n')
  sys.exit(USAGE_ERROR)
