"""Untrusted GGUF files: crafted headers fail fast, in bounded memory, with an error that
names the file; a valid file reads as before."""

import contextlib
import signal
import struct
import time
import tracemalloc

import gguf
import numpy as np
import pytest

from gemini_embed.models.gguf_import import GGUFCheckpoint, open_reader

TOKENS = ['<unk>', 'a', 'b', 'ab']
EMBED = np.arange(4 * 8, dtype=np.float32).reshape(4, 8)
UP = np.full((16, 32), 127.0, np.float32)   # exact in Q8_0 (scale 1)


def write_tiny(path, endianess=gguf.GGUFEndian.LITTLE) -> str:
  """A tiny but complete llama GGUF: config metadata, a tokenizer, one F32 and one Q8_0 tensor."""
  w = gguf.GGUFWriter(str(path), 'llama', endianess=endianess)
  w.add_name('tiny')
  w.add_block_count(1)
  w.add_embedding_length(8)
  w.add_feed_forward_length(16)
  w.add_head_count(2)
  w.add_layer_norm_rms_eps(1e-5)
  w.add_tokenizer_model('gpt2')
  w.add_token_list(TOKENS)
  w.add_token_types([1, 1, 1, 1])
  w.add_token_merges(['a b'])
  w.add_uint32('test.aaaa', 1)
  w.add_uint32('test.bbbb', 2)
  w.add_tensor('token_embd.weight', EMBED)
  w.add_tensor('blk.0.ffn_up.weight', gguf.quants.quantize(UP,
                                                          gguf.GGMLQuantizationType.Q8_0),
               raw_dtype=gguf.GGMLQuantizationType.Q8_0)
  w.add_tensor('blk.0.ffn_up.bias', np.ones(16, np.float32))
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()
  return str(path)


@pytest.fixture(scope='module')
def valid(tmp_path_factory):
  return write_tiny(tmp_path_factory.mktemp('gguf') / 'tiny.gguf')


@contextlib.contextmanager
def deadline(seconds: float):
  """Interrupts a runaway parse (the unfixed reader loops for minutes)."""
  def expire(*_):
    raise TimeoutError(f'still running after {seconds} s')
  old = signal.signal(signal.SIGALRM, expire)
  signal.setitimer(signal.ITIMER_REAL, seconds)
  try:
    yield
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def _after(raw: bytes, name: str) -> int:
  """The offset just past the (length-prefixed) string `name` in the header."""
  at = raw.index(struct.pack('<Q', len(name)) + name.encode())
  return at + 8 + len(name)


def _token_ab(raw) -> int:
  """The offset of the last token, 'ab' (its u64 length, then its bytes)."""
  return raw.index(struct.pack('<Q', 2) + b'ab')


def _set(raw: bytearray, offset: int, fmt: str, value) -> None:
  raw[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)


def _array_length(raw, key='tokenizer.ggml.token_type', n=2**62):
  _set(raw, _after(raw, key) + 8, '<Q', n)   # key, value type, item type, length


def _tensor_offset(raw, name='blk.0.ffn_up.weight', offset=2**40):
  _set(raw, _after(raw, name) + 4 + 2 * 8 + 4, '<Q', offset)   # n_dims, 2 dims, type


def _tensor_dim(raw, name='token_embd.weight', dim=2**31):
  _set(raw, _after(raw, name) + 4, '<Q', dim)


def _tensor_type(raw, name='token_embd.weight', qtype=999):
  _set(raw, _after(raw, name) + 4 + 2 * 8, '<I', qtype)


def _value_type(raw, key='general.name', vtype=77):
  _set(raw, _after(raw, key), '<I', vtype)


def _key_bytes(raw, key='general.name', new=b'\xff\xfeneral.name'):
  at = raw.index(key.encode())
  raw[at:at + len(new)] = new


def _rename(raw, old: str, new: str):
  """Same-length rename of a key or tensor name."""
  assert len(old) == len(new)
  at = _after(raw, old) - len(old)
  raw[at:at + len(old)] = new.encode()


CASES = {
    'bad magic': (lambda raw: raw.__setitem__(slice(0, 4), b'GGUX'), r'not a GGUF file'),
    'version 1': (lambda raw: _set(raw, 4, '<I', 1), r'version 1'),
    'huge array length': (_array_length, r"tokenizer\.ggml\.token_type.*array length "
                                         rf'{2**62} at offset \d+ exceeds the file size'),
    'huge string array length': (lambda raw: _array_length(raw, 'tokenizer.ggml.tokens'),
                                 r'tokenizer\.ggml\.tokens.*array length'),
    'huge tensor count': (lambda raw: _set(raw, 8, '<Q', 2**60), r'tensor count'),
    'huge kv count': (lambda raw: _set(raw, 16, '<Q', 2**60), r'key/value count'),
    'huge string length': (lambda raw: _set(raw, _after(raw, 'general.name') + 4, '<Q', 2**50),
                           r'general\.name.*string length'),
    'huge string length in an array': (lambda raw: _set(raw, _token_ab(raw), '<Q', 2**50),
                                       r"tokenizer\.ggml\.tokens': string length"),
    'tensor offset past the end': (_tensor_offset, r'blk\.0\.ffn_up\.weight.*past the end'),
    'tensor dims past the end': (_tensor_dim, r'token_embd\.weight.*past the end'),
    'unknown tensor type': (_tensor_type, r'token_embd\.weight.*type 999'),
    'unknown value type': (_value_type, r'general\.name.*value type 77'),
    'key not UTF-8': (_key_bytes, r'not valid UTF-8'),
    'duplicate key': (lambda raw: _rename(raw, 'test.bbbb', 'test.aaaa'),
                      r"key 'test\.aaaa'.*twice"),
    'duplicate tensor': (lambda raw: _rename(raw, 'blk.0.ffn_up.bias', 'token_embd.weight'),
                         r"tensor 'token_embd\.weight'.*twice"),
}


@pytest.mark.parametrize('case', list(CASES))
def test_crafted_header_fails_fast_naming_the_file(valid, tmp_path, case):
  patch, message = CASES[case]
  raw = bytearray(open(valid, 'rb').read())
  patch(raw)
  path = tmp_path / 'crafted.gguf'
  path.write_bytes(raw)
  tracemalloc.start()
  start = time.perf_counter()
  try:
    with deadline(5.0), pytest.raises(ValueError) as e:
      open_reader(str(path))
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert time.perf_counter() - start < 1.0
  assert peak < 20e6, f'{peak / 1e6:.0f} MB'
  assert str(e.value).startswith(f'{path}: ')
  assert e.match(message)


def test_truncated_file_names_the_file(valid, tmp_path):
  raw = open(valid, 'rb').read()
  header_end = gguf.GGUFReader(valid).data_offset
  for cut in (0, 3, 20, 60, _token_ab(raw) + 4, header_end - 1, header_end + 4, len(raw) - 1):
    path = tmp_path / f'cut{cut}.gguf'
    path.write_bytes(raw[:cut])
    with deadline(5.0), pytest.raises(ValueError, match=r'truncated|past the end') as e:
      open_reader(str(path))
    assert str(e.value).startswith(f'{path}: '), (cut, e.value)


def test_metadata_elements_beyond_any_real_model_are_refused(tmp_path):
  """Within the file size, but GGUFReader would build ~700 bytes per element in ~9 µs:
  this 4 MB file would take 40 s and 3 GB."""
  n = 4 * 2**20
  key = b'junk'
  raw = (b'GGUF' + struct.pack('<IQQ', 3, 0, 1) + struct.pack('<Q', len(key)) + key +
         struct.pack('<IIQ', gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT8, n) + bytes(n))
  path = tmp_path / 'many.gguf'
  path.write_bytes(raw)
  with deadline(5.0), pytest.raises(ValueError, match=rf"{path}: .*'junk'.*limit"):
    open_reader(str(path))


def test_arrays_nested_too_deep_are_refused(tmp_path):
  """GGUFReader recurses once per level: 2000 levels are a bare RecursionError."""
  depth = 2000
  nested = struct.pack('<IQ', gguf.GGUFValueType.ARRAY, 1) * depth
  raw = (b'GGUF' + struct.pack('<IQQ', 3, 0, 1) + struct.pack('<Q', 4) + b'deep' +
         struct.pack('<I', gguf.GGUFValueType.ARRAY) + nested +
         struct.pack('<IQ', gguf.GGUFValueType.UINT8, 1) + b'\x00')
  path = tmp_path / 'deep.gguf'
  path.write_bytes(raw)
  with deadline(5.0), pytest.raises(ValueError, match=rf"{path}: .*'deep'.*nested"):
    open_reader(str(path))


def test_big_endian_file_is_scanned_in_its_byte_order(tmp_path):
  path = write_tiny(tmp_path / 'big.gguf', gguf.GGUFEndian.BIG)
  assert_reads_like_gguf_reader(path)
  raw = bytearray(open(path, 'rb').read())
  _set(raw, 8, '>Q', 2**60)
  crafted = tmp_path / 'big-crafted.gguf'
  crafted.write_bytes(raw)
  with pytest.raises(ValueError, match=rf'{crafted}: GGUF header: tensor count {2**60}'):
    open_reader(str(crafted))


def test_string_value_not_utf8_names_file_and_key(valid, tmp_path):
  raw = bytearray(open(valid, 'rb').read())
  raw[_token_ab(raw) + 8] = 0xff
  path = tmp_path / 'token.gguf'
  path.write_bytes(raw)
  with pytest.raises(ValueError, match=rf"{path}: metadata key 'tokenizer\.ggml\.tokens'.*UTF-8"):
    GGUFCheckpoint(str(path))


def test_valid_file_reads_as_before(valid):
  ckpt = GGUFCheckpoint(valid)
  assert ckpt.config.width == 8 and ckpt.config.vocab_size == 4
  assert ckpt.metadata('tokenizer.ggml.tokens') == TOKENS
  np.testing.assert_array_equal(ckpt.tensor('model.embed_tokens.weight'), EMBED)
  np.testing.assert_array_equal(ckpt.tensor('model.layers.0.mlp.up_proj.weight'), UP)
  assert_reads_like_gguf_reader(valid)


def assert_reads_like_gguf_reader(path: str) -> None:
  """Every field's value and every tensor's name, type, shape and bytes as the gguf
  package's GGUFReader reads them (the reference)."""
  header, ref = open_reader(path), gguf.GGUFReader(path)
  assert list(header.fields) == list(ref.fields) and header.data_offset == ref.data_offset
  for key, field in ref.fields.items():
    assert header.fields[key] == field.contents(), key
  assert [t.name for t in header.tensors] == [t.name for t in ref.tensors]
  for ours, theirs in zip(header.tensors, ref.tensors):
    assert ours.tensor_type == theirs.tensor_type and ours.shape == tuple(theirs.shape)
    assert ours.data.dtype == theirs.data.dtype and ours.data.shape == theirs.data.shape
    np.testing.assert_array_equal(ours.data, theirs.data)
