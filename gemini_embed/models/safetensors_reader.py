"""Memory-mapped reading of HF safetensors checkpoints, tensor by tensor.

Reads the format directly (8-byte header length, JSON header, raw data) with
`np.memmap`, so nothing is loaded until a tensor is asked for, bfloat16 works
(via ml_dtypes), and torch is not needed. Each file's header is first validated
by the safetensors package's own parser (header length within the file, JSON of
the right shape, offsets inside the data section and matching dtype × shape):
weights come from the internet, and a malformed header is an error naming the
file, never header bytes read as weights. Handles a single `model.safetensors`
and sharded `*.safetensors.index.json`.
"""

from __future__ import annotations

import json
import os
import struct

import ml_dtypes
import numpy as np
import safetensors

_DTYPES = {
    'F64': np.float64, 'F32': np.float32, 'F16': np.float16,
    'BF16': ml_dtypes.bfloat16, 'I64': np.int64, 'I32': np.int32,
    'I16': np.int16, 'I8': np.int8, 'U8': np.uint8, 'BOOL': np.bool_,
}


class SafetensorsCheckpoint:
  """name → np.ndarray (a read-only memmap view) over one or many files."""

  def __init__(self, directory: str):
    self.directory = directory
    index = os.path.join(directory, 'model.safetensors.index.json')
    single = os.path.join(directory, 'model.safetensors')
    if os.path.exists(index):
      files = _shards(index, directory)
    elif os.path.exists(single):
      files = ['model.safetensors']
    else:
      raise FileNotFoundError(
          f'{directory}: no model.safetensors or model.safetensors.index.json; '
          'point init_from at a Hugging Face checkpoint directory')
    self._where: dict[str, tuple[str, dict, int]] = {}
    for name in files:
      path = os.path.join(directory, name)
      header, data_start = _read_header(path)
      for tensor, info in header.items():
        self._where[tensor] = (path, info, data_start)

  def names(self) -> list[str]:
    return sorted(self._where)

  def __contains__(self, name: str) -> bool:
    return name in self._where

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(self._where[name][1]['shape'])

  def get(self, name: str) -> np.ndarray:
    if name not in self._where:
      raise KeyError(f'{self.directory}: checkpoint has no tensor {name!r}')
    path, info, data_start = self._where[name]
    if info['dtype'] not in _DTYPES:
      raise ValueError(f'{path}: tensor {name!r} has unsupported dtype {info["dtype"]}')
    begin, _ = info['data_offsets']   # validated against dtype × shape by _read_header
    dtype = np.dtype(_DTYPES[info['dtype']])
    shape = tuple(info['shape'])
    return np.memmap(path, dtype=dtype, mode='r', offset=data_start + begin, shape=shape)


def _shards(index: str, directory: str) -> list[str]:
  """The file names a sharded checkpoint's index lists, each checked to be in `directory`."""
  try:
    with open(index) as f:
      content = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f'{index}: not valid JSON ({e}); the file is corrupt') from None
  weight_map = content.get('weight_map') if isinstance(content, dict) else None
  if not isinstance(weight_map, dict) or not all(
      isinstance(v, str) for v in weight_map.values()):
    raise ValueError(f'{index}: no "weight_map" from tensor names to file names; the file is '
                     'corrupt or not a safetensors index')
  files = sorted(set(weight_map.values()))
  for name in files:
    if name in ('', '.', '..') or os.path.basename(name) != name:
      raise ValueError(f'{index}: weight_map names {name!r}, which is not a file name in '
                       f'{directory}; the index is corrupt')
    if not os.path.isfile(os.path.join(directory, name)):
      raise FileNotFoundError(f'{index}: weight_map names {name}, which does not exist in '
                              f'{directory}; download every shard of the checkpoint')
  return files


def _read_header(path: str) -> tuple[dict, int]:
  """(tensor name → {dtype, shape, data_offsets}, offset of the data section) of one file."""
  try:
    with safetensors.safe_open(path, 'np'):
      pass
  except safetensors.SafetensorError as e:
    raise ValueError(f'{path}: not a valid safetensors file ({e}); the file is corrupt or '
                     'truncated: download it again') from None
  with open(path, 'rb') as f:
    (n,) = struct.unpack('<Q', f.read(8))
    header = json.loads(f.read(n))
  header.pop('__metadata__', None)
  return header, 8 + n
