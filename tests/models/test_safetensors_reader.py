"""Untrusted safetensors files: every malformed header is an error naming the file; a
valid file (F32 and BF16) reads as before."""

import json
import struct

import ml_dtypes
import numpy as np
import pytest

from gemini_embed.models.safetensors_reader import SafetensorsCheckpoint

A = np.arange(6, dtype=np.float32).reshape(2, 3)
B = np.array([1.5, -2.0, 3.25, 0.0], ml_dtypes.bfloat16)


def _header() -> dict:
  return {'__metadata__': {'format': 'pt'},
          'a': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [0, 24]},
          'b': {'dtype': 'BF16', 'shape': [4], 'data_offsets': [24, 32]}}


def write(directory, header=None, header_bytes=None, length=None, data=None,
          whole=None) -> str:
  """model.safetensors as safetensors writes it (8-byte length, JSON header, data), or `whole`."""
  raw = header_bytes if header_bytes is not None else json.dumps(header or _header()).encode()
  data = A.tobytes() + B.tobytes() if data is None else data
  path = directory / 'model.safetensors'
  path.write_bytes(whole if whole is not None else
                   struct.pack('<Q', len(raw) if length is None else length) + raw + data)
  return str(path)


def test_valid_file_reads_as_before(tmp_path):
  write(tmp_path)
  ckpt = SafetensorsCheckpoint(str(tmp_path))
  assert ckpt.names() == ['a', 'b'] and ckpt.shape('a') == (2, 3)
  np.testing.assert_array_equal(ckpt.get('a'), A)
  assert ckpt.get('b').dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(ckpt.get('b'), B)


def _with(tensor: str, **fields) -> dict:
  h = _header()
  h[tensor].update(fields)
  return h


def _without(tensor: str, field: str) -> dict:
  h = _header()
  del h[tensor][field]
  return h


CASES = {
    'negative data_offsets': dict(header=_with('a', data_offsets=[-16, 8])),
    'header length 2**62': dict(length=2**62),
    'header length past the end': dict(length=200),
    'non-JSON header': dict(header_bytes=b'{"a": {"dtype": "F32", '),
    'header not a dict': dict(header_bytes=b'[1, 2, 3]'),
    'tensor entry not a dict': dict(header=dict(_header(), a=[0, 24])),
    'missing dtype': dict(header=_without('a', 'dtype')),
    'missing data_offsets': dict(header=_without('b', 'data_offsets')),
    'offsets past the end': dict(header=_with('b', data_offsets=[24, 4000])),
    'end before begin': dict(header=_with('a', data_offsets=[24, 0])),
    'dtype x shape mismatch': dict(header=_with('a', shape=[3, 3])),
    'negative shape': dict(header=_with('a', shape=[-2, -3])),
    'unknown dtype': dict(header=_with('a', dtype='Q99')),
    'truncated data': dict(data=A.tobytes()),
    'shorter than a header': dict(whole=b'\x01\x02'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_malformed_file_is_an_error_naming_it(tmp_path, case):
  path = write(tmp_path, **CASES[case])
  with pytest.raises(ValueError) as e:
    ckpt = SafetensorsCheckpoint(str(tmp_path))
    for name in ckpt.names():   # reading must not hand back header bytes as weights
      ckpt.get(name)
  assert str(e.value).startswith(f'{path}: '), e.value


def _index(tmp_path, text: str) -> None:
  write(tmp_path)
  (tmp_path / 'model.safetensors').rename(tmp_path / 'model-00001-of-00001.safetensors')
  (tmp_path / 'model.safetensors.index.json').write_text(text)


@pytest.mark.parametrize('text,error,message', [
    ('{"weight_map": ', ValueError, 'not valid JSON'),
    ('[]', ValueError, 'weight_map'),
    ('{"metadata": {}}', ValueError, 'weight_map'),
    ('{"weight_map": {"a": "model-00002-of-00002.safetensors"}}', FileNotFoundError,
     r'model-00002-of-00002\.safetensors.*does not exist'),
    ('{"weight_map": {"a": "../model-00001-of-00001.safetensors"}}', ValueError,
     'not a file name'),
])
def test_bad_index_is_an_error_naming_it(tmp_path, text, error, message):
  _index(tmp_path, text)
  with pytest.raises(error, match=message) as e:
    SafetensorsCheckpoint(str(tmp_path))
  assert str(e.value).startswith(f'{tmp_path / "model.safetensors.index.json"}: ')


def test_sharded_index_reads_as_before(tmp_path):
  _index(tmp_path, json.dumps({'weight_map': {'a': 'model-00001-of-00001.safetensors',
                                              'b': 'model-00001-of-00001.safetensors'}}))
  np.testing.assert_array_equal(SafetensorsCheckpoint(str(tmp_path)).get('a'), A)
