"""A bounded scan of a GGUF file's header, run before gguf.GGUFReader sees the file.

GGUFReader trusts every count in the file: an array length of 2**62 makes it loop and
allocate without bound, and a truncated file, a huge count or an offset past the end
surfaces as a bare IndexError/ValueError. This walks the same layout (llama.cpp's
docs/gguf.md, versions 2 and 3) without building anything per element:

    magic 'GGUF' | version u32 | tensor count u64 | kv count u64
    kv × (key string, value type u32, value)       string = u64 length + UTF-8 bytes
                                                    array = item type u32, u64 length, items
    tensor × (name string, n_dims u32, dims u64 × n_dims, ggml type u32, offset u64)
    padding to general.alignment (default 32) | data section: each tensor at its offset

Every count, string and array length must fit in the bytes left given the smallest size
its elements can have, and every tensor must lie inside the data section. Every error is
a ValueError that names the file and the offset.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import NoReturn

import gguf

VT = gguf.GGUFValueType
_SCALAR_SIZES = {VT.UINT8: 1, VT.INT8: 1, VT.BOOL: 1, VT.UINT16: 2, VT.INT16: 2, VT.UINT32: 4,
                 VT.INT32: 4, VT.FLOAT32: 4, VT.UINT64: 8, VT.INT64: 8, VT.FLOAT64: 8}
_MIN_SIZES = {**_SCALAR_SIZES, VT.STRING: 8, VT.ARRAY: 4 + 8}
_KV_MIN_SIZE = 8 + 4 + 1            # empty key, value type, a one-byte value
_TENSOR_MIN_SIZE = 8 + 4 + 4 + 8    # empty name, n_dims = 0, ggml type, offset
_MAX_NESTING = 8
# GGUFReader builds ~700 bytes of numpy views per metadata entry, array element and tensor
# (~9 µs each). The largest real vocabularies (Gemma 3: 262k tokens, scores and types) need
# under 800k; this cap keeps a hostile file under ~20 s and ~1.5 GB of parsing.
MAX_ITEMS = 2**21
_SUPPORTED_VERSIONS = (2, 3)


def check_gguf_header(path: str) -> None:
  """Raises ValueError (naming `path`) unless gguf.GGUFReader can parse `path` safely."""
  with open(path, 'rb') as f:
    size = os.fstat(f.fileno()).st_size
    if size < 4 + 4 + 8 + 8:
      raise ValueError(f'{path}: GGUF header: the file is {size} bytes, shorter than a GGUF '
                       'header; it is truncated or not a GGUF model')
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
      _Scan(path, data, size).run()


class _Scan:
  """One pass over the header; `pos` is the offset of the next unread byte."""

  def __init__(self, path: str, data: mmap.mmap, size: int):
    self.path, self.data, self.size = path, data, size
    self.pos = 0
    self.order = '<'
    self.items = 0
    self.tensor_names: set[str] = set()

  def fail(self, what: str, hint: str = 'the file is corrupt or not a GGUF model') -> NoReturn:
    raise ValueError(f'{self.path}: GGUF header: {what}; {hint}')

  # ---- bounded reads -------------------------------------------------------------------
  def need(self, n: int, what: str) -> None:
    if n > self.size - self.pos:
      self.fail(f'{what} at offset {self.pos} needs {n} bytes but the file ends at '
                f'{self.size}', 'the file is truncated or not a GGUF model')

  def unpack(self, fmt: str, what: str) -> int:
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

  def skip_string(self, what: str) -> None:
    n = self.count(f'{what}: string length', 1)
    self.pos += n

  def skip_strings(self, n: int, where: str) -> None:
    """skip_string n times (a vocabulary: 262k strings), without the per-call overhead."""
    data, size, fmt, pos = self.data, self.size, self.order + 'Q', self.pos
    for _ in range(n):
      if pos + 8 > size:
        self.pos = pos
        self.need(8, f'{where}: string length')
      (length,) = struct.unpack_from(fmt, data, pos)
      if length > size - pos - 8:
        self.fail(f'{where}: string length {length} at offset {pos} exceeds the file size '
                  f'({size} bytes)')
      pos += 8 + length
    self.pos = pos

  def name(self, what: str) -> str:
    """A key or tensor name: GGUFReader decodes these as UTF-8 while it parses."""
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
    self.add_items(kv_count, 'key/value count')
    alignment = self.key_values(kv_count)
    if tensor_count * _TENSOR_MIN_SIZE > self.size - self.pos:
      self.fail(f'tensor count {tensor_count} (at offset 8) exceeds the file size '
                f'({self.size} bytes)')
    self.add_items(tensor_count, 'tensor count')
    tensors = [self.tensor_info() for _ in range(tensor_count)]
    data_start = -(-self.pos // alignment) * alignment
    for name, at, end in tensors:
      if data_start + end > self.size:
        self.fail(f"tensor '{name}' (data offset {at}, {end - at} bytes) lies past the end of "
                  f'the file ({self.size} bytes, data section from {data_start})',
                  'the file is truncated or corrupt')

  def key_values(self, count: int) -> int:
    """Walks the metadata; returns general.alignment."""
    seen = {'GGUF.version', 'GGUF.tensor_count', 'GGUF.kv_count'}   # GGUFReader's own fields
    alignment = gguf.GGUF_DEFAULT_ALIGNMENT
    for _ in range(count):
      at = self.pos
      key = self.name('key')
      if key in seen:
        self.fail(f"key '{key}' at offset {at} appears twice")
      seen.add(key)
      vtype = self.value_type(f"key '{key}'")
      if key == gguf.Keys.General.ALIGNMENT:
        if vtype != VT.UINT32:
          self.fail(f'{key} has value type {vtype.name}, not UINT32')
        alignment = self.unpack('I', key)
        if alignment == 0 or alignment & (alignment - 1):
          self.fail(f'{key}={alignment} is not a power of two')
      else:
        self.value(vtype, f"key '{key}'", depth=0)
    return alignment

  def value_type(self, where: str) -> gguf.GGUFValueType:
    at = self.pos
    raw = self.unpack('I', f'{where}: value type')
    try:
      return VT(raw)
    except ValueError:
      self.fail(f'{where}: value type {raw} at offset {at} is unknown')

  def value(self, vtype: gguf.GGUFValueType, where: str, depth: int) -> None:
    if vtype in _SCALAR_SIZES:
      self.need(_SCALAR_SIZES[vtype], f'{where}: {vtype.name} value')
      self.pos += _SCALAR_SIZES[vtype]
    elif vtype == VT.STRING:
      self.skip_string(where)
    else:
      if depth == _MAX_NESTING:
        self.fail(f'{where}: arrays nested more than {_MAX_NESTING} deep at offset {self.pos}')
      itype = self.value_type(f'{where}: array item')
      n = self.count(f'{where}: array length', _MIN_SIZES[itype])
      self.add_items(n, where)
      if itype in _SCALAR_SIZES:
        self.pos += n * _SCALAR_SIZES[itype]
      elif itype == VT.STRING:
        self.skip_strings(n, where)
      else:
        for _ in range(n):
          self.value(itype, where, depth + 1)

  def tensor_info(self) -> tuple[str, int, int]:
    """(name, data offset, end offset) of one tensor, relative to the data section."""
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
    return name, offset, offset + elements * type_size // block

