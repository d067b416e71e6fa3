"""Reads a GGUF file's header (metadata and tensor table) in one bounded pass.

The gguf package's GGUFReader trusts every count in the file (an array length of 2**62
makes it loop and allocate without bound; a truncated file, a huge count or an offset
past the end surfaces as a bare IndexError/ValueError) and builds ~700 bytes of numpy
views per metadata element (Gemma 3's 262k-token vocabulary: ~15 s per process). This
walks llama.cpp's layout (docs/gguf.md, versions 2 and 3) once, checking each count
against the bytes left before reading what it counts:

    magic 'GGUF' | version u32 | tensor count u64 | kv count u64
    kv × (key string, value type u32, value)       string = u64 length + UTF-8 bytes
                                                    array = item type u32, u64 length, items
    tensor × (name string, n_dims u32, dims u64 × n_dims, ggml type u32, offset u64)
    padding to general.alignment (default 32) | data section: each tensor at its offset

Every count, string and array length must fit in the bytes left given the smallest size
its elements can have, and every tensor must lie inside the data section. Every error is
a ValueError that names the file and the offset (or the key). Metadata values come out as
Python values (what GGUFReader's `ReaderField.contents()` returns), arrays of numbers in
one numpy read; tensors as memory-mapped numpy views shaped as GGUFReader shapes them.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import struct
from typing import Any, NoReturn

import gguf
import numpy as np

VT = gguf.GGUFValueType
_SCALAR_SIZES = {VT.UINT8: 1, VT.INT8: 1, VT.BOOL: 1, VT.UINT16: 2, VT.INT16: 2, VT.UINT32: 4,
                 VT.INT32: 4, VT.FLOAT32: 4, VT.UINT64: 8, VT.INT64: 8, VT.FLOAT64: 8}
_MIN_SIZES = {**_SCALAR_SIZES, VT.STRING: 8, VT.ARRAY: 4 + 8}
_KV_MIN_SIZE = 8 + 4 + 1            # empty key, value type, a one-byte value
_TENSOR_MIN_SIZE = 8 + 4 + 4 + 8    # empty name, n_dims = 0, ggml type, offset
_MAX_NESTING = 8
# Every metadata entry, array element and tensor becomes a Python object (~50-100 bytes).
# The largest real vocabularies (Gemma 3: 262k tokens, scores and types) need under 800k;
# this cap keeps a hostile file's metadata to a few hundred MB and a few seconds.
MAX_ITEMS = 2**21
_SUPPORTED_VERSIONS = (2, 3)
_NUMPY_TYPES = {VT.UINT8: np.uint8, VT.INT8: np.int8, VT.BOOL: np.bool_, VT.UINT16: np.uint16,
                VT.INT16: np.int16, VT.UINT32: np.uint32, VT.INT32: np.int32,
                VT.FLOAT32: np.float32, VT.UINT64: np.uint64, VT.INT64: np.int64,
                VT.FLOAT64: np.float64}
# Unquantised tensor types read as their numpy dtype (GGUFReader's choice); the rest as bytes.
_PLAIN_TENSOR_TYPES = {'F16': np.float16, 'F32': np.float32, 'F64': np.float64, 'I8': np.int8,
                       'I16': np.int16, 'I32': np.int32, 'I64': np.int64}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
  name: str
  tensor_type: gguf.GGMLQuantizationType
  shape: tuple[int, ...]   # the file's dims, fastest-varying first
  data: np.ndarray         # memory-mapped; reversed dims (bytes per row last if quantised)


@dataclasses.dataclass(frozen=True)
class GGUFHeader:
  path: str
  fields: dict[str, Any]   # key → value; GGUF.version / tensor_count / kv_count first
  tensors: list[TensorInfo]
  data_offset: int         # where the data section starts


def read_gguf_header(path: str) -> GGUFHeader:
  """The metadata and tensors of the GGUF file at `path`; a ValueError naming `path`
  (and the offset or key) if the file is truncated, corrupt or hostile."""
  with open(path, 'rb') as f:
    size = os.fstat(f.fileno()).st_size
    if size < 4 + 4 + 8 + 8:
      raise ValueError(f'{path}: GGUF header: the file is {size} bytes, shorter than a GGUF '
                       'header; it is truncated or not a GGUF model')
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
      scan = _Scan(path, data, size)
      scan.run()
  bytes_ = np.memmap(path, dtype=np.uint8, mode='r')
  tensors = [_tensor_view(t, bytes_, scan.data_offset, scan.order) for t in scan.tensors]
  return GGUFHeader(path, scan.fields, tensors, scan.data_offset)


def _tensor_view(t: tuple, bytes_: np.ndarray, data_offset: int, order: str) -> TensorInfo:
  name, offset, end, dims, qtype = t
  np_dims = tuple(reversed(dims))
  dtype = _PLAIN_TENSOR_TYPES.get(qtype.name)
  if dtype is None:
    np_dims, dtype = gguf.quants.quant_shape_to_byte_shape(np_dims, qtype), np.uint8
  raw = bytes_[data_offset + offset:data_offset + end]
  return TensorInfo(name, qtype, tuple(dims),
                    raw.view(np.dtype(dtype).newbyteorder(order)).reshape(np_dims))


class _Scan:
  """One pass over the header; `pos` is the offset of the next unread byte."""

  def __init__(self, path: str, data: mmap.mmap, size: int):
    self.path, self.data, self.size = path, data, size
    self.pos = 0
    self.order = '<'
    self.items = 0
    self.fields: dict[str, Any] = {}
    self.tensors: list[tuple] = []     # (name, offset, end, dims, ggml type)
    self.tensor_names: set[str] = set()
    self.data_offset = 0

  def fail(self, what: str, hint: str = 'the file is corrupt or not a GGUF model') -> NoReturn:
    raise ValueError(f'{self.path}: GGUF header: {what}; {hint}')

  # ---- bounded reads -------------------------------------------------------------------
  def need(self, n: int, what: str) -> None:
    if n > self.size - self.pos:
      self.fail(f'{what} at offset {self.pos} needs {n} bytes but the file ends at '
                f'{self.size}', 'the file is truncated or not a GGUF model')

  def unpack(self, fmt: str, what: str) -> Any:
    n = struct.calcsize(fmt)
    self.need(n, what)
    (value,) = struct.unpack_from(self.order + fmt, self.data, self.pos)
    self.pos += n
    return value

  def count(self, what: str, min_size: int) -> int:
    """A u64 count of elements of at least `min_size` bytes each, which must fit the file."""
    at = self.pos
    n = self.unpack('Q', what)
    if n * min_size > self.size - self.pos:
      self.fail(f'{what} {n} at offset {at} exceeds the file size ({self.size} bytes)')
    return n

  def add_items(self, n: int, where: str) -> None:
    self.items += n
    if self.items > MAX_ITEMS:
      self.fail(f'{where}: more than {MAX_ITEMS} metadata entries, array elements and '
                'tensors in all (a limit far above any real model)')

  def decode(self, raw: bytes, at: int, where: str) -> str:
    try:
      return raw.decode('utf-8')
    except UnicodeDecodeError as e:
      raise ValueError(f'{self.path}: metadata {where}: the string at offset {at} is not '
                       f'valid UTF-8 ({e}); the file is corrupt') from None

  def strings(self, n: int, where: str) -> list[str]:
    """n length-prefixed strings (a vocabulary: 262k of them), bounds-checked, decoded."""
    data, size, fmt, pos, out = self.data, self.size, self.order + 'Q', self.pos, []
    for _ in range(n):
      if pos + 8 > size:
        self.pos = pos
        self.need(8, f'{where}: string length')
      (length,) = struct.unpack_from(fmt, data, pos)
      if length > size - pos - 8:
        self.fail(f'{where}: string length {length} at offset {pos} exceeds the file size '
                  f'({size} bytes)')
      out.append(self.decode(data[pos + 8:pos + 8 + length], pos, where))
      pos += 8 + length
    self.pos = pos
    return out

  def name(self, what: str) -> str:
    """A key or tensor name."""
    n = self.count(f'{what}: string length', 1)
    raw = self.data[self.pos:self.pos + n]
    try:
      name = raw.decode('utf-8')
    except UnicodeDecodeError:
      self.fail(f'{what} {raw[:40]!r} at offset {self.pos} is not valid UTF-8')
    self.pos += n
    return name

  # ---- layout --------------------------------------------------------------------------
  def run(self) -> None:
    if self.data[:4] != b'GGUF':
      self.fail(f'magic {bytes(self.data[:4])!r} is not GGUF', 'it is not a GGUF file')
    self.pos = 4
    version = self.unpack('I', 'version')
    if version & 0xFFFF == 0:   # written on a machine of the other byte order (as GGUFReader)
      self.order = '>'
      version = struct.unpack('>I', struct.pack('<I', version))[0]
    if version not in _SUPPORTED_VERSIONS:
      self.fail(f'version {version} is not supported (supported: {_SUPPORTED_VERSIONS})',
                're-convert the model with a current llama.cpp')
    tensor_count = self.unpack('Q', 'tensor count')
    kv_count = self.count('key/value count', _KV_MIN_SIZE)
    self.fields = {'GGUF.version': version, 'GGUF.tensor_count': tensor_count,
                   'GGUF.kv_count': kv_count}
    self.add_items(kv_count, 'key/value count')
    alignment = self.key_values(kv_count)
    if tensor_count * _TENSOR_MIN_SIZE > self.size - self.pos:
      self.fail(f'tensor count {tensor_count} (at offset 8) exceeds the file size '
                f'({self.size} bytes)')
    self.add_items(tensor_count, 'tensor count')
    self.tensors = [self.tensor_info() for _ in range(tensor_count)]
    self.data_offset = -(-self.pos // alignment) * alignment
    for name, at, end, _, _ in self.tensors:
      if self.data_offset + end > self.size:
        self.fail(f"tensor '{name}' (data offset {at}, {end - at} bytes) lies past the end of "
                  f'the file ({self.size} bytes, data section from {self.data_offset})',
                  'the file is truncated or corrupt')

  def key_values(self, count: int) -> int:
    """Reads the metadata into `fields`; returns general.alignment."""
    alignment = gguf.GGUF_DEFAULT_ALIGNMENT
    for _ in range(count):
      at = self.pos
      key = self.name('key')
      if key in self.fields:
        self.fail(f"key '{key}' at offset {at} appears twice")
      vtype = self.value_type(f"key '{key}'")
      if key == gguf.Keys.General.ALIGNMENT:
        if vtype != VT.UINT32:
          self.fail(f'{key} has value type {vtype.name}, not UINT32')
        alignment = self.unpack('I', key)
        if alignment == 0 or alignment & (alignment - 1):
          self.fail(f'{key}={alignment} is not a power of two')
        self.fields[key] = alignment
      else:
        self.fields[key] = self.value(vtype, f"key '{key}'", depth=0)
    return alignment

  def value_type(self, where: str) -> gguf.GGUFValueType:
    at = self.pos
    raw = self.unpack('I', f'{where}: value type')
    try:
      return VT(raw)
    except ValueError:
      self.fail(f'{where}: value type {raw} at offset {at} is unknown')

  def value(self, vtype: gguf.GGUFValueType, where: str, depth: int) -> Any:
    if vtype in _SCALAR_SIZES:
      self.need(_SCALAR_SIZES[vtype], f'{where}: {vtype.name} value')
      return self.scalars(vtype, 1)[0]
    if vtype == VT.STRING:
      return self.strings(1, where)[0]
    if depth == _MAX_NESTING:
      self.fail(f'{where}: arrays nested more than {_MAX_NESTING} deep at offset {self.pos}')
    itype = self.value_type(f'{where}: array item')
    n = self.count(f'{where}: array length', _MIN_SIZES[itype])
    self.add_items(n, where)
    if itype in _SCALAR_SIZES:
      return self.scalars(itype, n)
    if itype == VT.STRING:
      return self.strings(n, where)
    return [self.value(itype, where, depth + 1) for _ in range(n)]

  def scalars(self, vtype: gguf.GGUFValueType, n: int) -> list:
    """n numbers of `vtype` (bounds checked by the caller), as Python values."""
    dtype = np.dtype(_NUMPY_TYPES[vtype]).newbyteorder(self.order)
    out = np.frombuffer(self.data, dtype, count=n, offset=self.pos).tolist()
    self.pos += n * _SCALAR_SIZES[vtype]
    return out

  def tensor_info(self) -> tuple:
    """(name, data offset, end offset, dims, ggml type) of one tensor; offsets relative to
    the data section."""
    at = self.pos
    name = self.name('tensor name')
    where = f"tensor '{name}'"
    if name in self.tensor_names:
      self.fail(f'{where} at offset {at} appears twice')
    self.tensor_names.add(name)
    n_dims = self.unpack('I', f'{where}: n_dims')
    self.need(8 * n_dims + 4 + 8, f'{where}: {n_dims} dims')
    dims = struct.unpack_from(f'{self.order}{n_dims}Q', self.data, self.pos)
    self.pos += 8 * n_dims
    at = self.pos
    raw = self.unpack('I', f'{where}: type')
    try:
      qtype = gguf.GGMLQuantizationType(raw)
      block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
      self.fail(f'{where}: ggml type {raw} at offset {at} is unknown')
    if dims and dims[0] % block:
      self.fail(f'{where}: its rows of {dims[0]} values are not whole {qtype.name} blocks of '
                f'{block}')
    elements = 1
    for d in dims:
      elements *= d
    offset = self.unpack('Q', f'{where}: data offset')
    return name, offset, offset + elements * type_size // block, dims, qtype
