"""Write a safetensors file from NumPy arrays (float32, bfloat16 via ml_dtypes, ints).

The format: an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
data_offsets}} (plus `__metadata__`), then the raw little-endian bytes. Written here
rather than with `safetensors.numpy` because that has no bfloat16.
"""

from __future__ import annotations

import json
import os
import struct

import ml_dtypes
import numpy as np

_DTYPES = {np.dtype(np.float32): 'F32', np.dtype(ml_dtypes.bfloat16): 'BF16',
           np.dtype(np.float16): 'F16', np.dtype(np.int32): 'I32', np.dtype(np.int64): 'I64'}


def write_safetensors(path: str, tensors: dict[str, np.ndarray],
                      metadata: dict[str, str] | None = None) -> None:
  header: dict = {'__metadata__': dict(metadata or {'format': 'pt'})}
  offset = 0
  names = sorted(tensors)
  for name in names:
    array = tensors[name]
    if array.dtype not in _DTYPES:
      raise ValueError(f'{path}: tensor {name!r} has dtype {array.dtype}; '
                       f'supported: {sorted(str(d) for d in _DTYPES)}')
    header[name] = {'dtype': _DTYPES[array.dtype], 'shape': list(array.shape),
                    'data_offsets': [offset, offset + array.nbytes]}
    offset += array.nbytes
  blob = json.dumps(header, separators=(',', ':')).encode()
  blob += b' ' * (-len(blob) % 8)  # the data starts 8-byte aligned
  tmp = path + '.tmp'
  with open(tmp, 'wb') as f:
    f.write(struct.pack('<Q', len(blob)))
    f.write(blob)
    for name in names:
      f.write(np.ascontiguousarray(tensors[name]).tobytes())  # little-endian hosts
  os.replace(tmp, path)
