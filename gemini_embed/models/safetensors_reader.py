"""Memory-mapped reading of HF safetensors checkpoints, tensor by tensor.

Reads the format directly (8-byte header length, JSON header, raw data) with
`np.memmap`, so nothing is loaded until a tensor is asked for, bfloat16 works
(via ml_dtypes), and neither torch nor the safetensors runtime is needed.
Handles a single `model.safetensors` and sharded `*.safetensors.index.json`.
"""

from __future__ import annotations

import json
import os
import struct

import ml_dtypes
import numpy as np

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
      with open(index) as f:
        weight_map = json.load(f)['weight_map']
      files = sorted(set(weight_map.values()))
    elif os.path.exists(single):
      files = ['model.safetensors']
    else:
      raise FileNotFoundError(
          f'{directory}: no model.safetensors or model.safetensors.index.json; '
          'point init_from at a Hugging Face checkpoint directory')
    self._where: dict[str, tuple[str, dict, int]] = {}
    for name in files:
      path = os.path.join(directory, name)
      with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
      header.pop('__metadata__', None)
      for tensor, info in header.items():
        self._where[tensor] = (path, info, 8 + n)

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
    begin, end = info['data_offsets']
    dtype = np.dtype(_DTYPES[info['dtype']])
    shape = tuple(info['shape'])
    if end - begin != dtype.itemsize * int(np.prod(shape)):
      raise ValueError(f'{path}: tensor {name!r} header size does not match its shape')
    return np.memmap(path, dtype=dtype, mode='r', offset=data_start + begin, shape=shape)
