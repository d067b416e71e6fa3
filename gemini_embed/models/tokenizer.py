"""Which tokenizer a run uses, and the byte-level fallback for fresh inits.

Order: the workdir's own `tokenizer.json` (a resumed run) > `config.tokenizer`
> `init_from/tokenizer.json` > a byte-level tokenizer (fresh tiny models).
The chosen one is saved as `WORKDIR/tokenizer.json` so encode/evaluate use it.
"""

from __future__ import annotations

import os

import jax
from etils import epath
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

from gemini_embed import storage

TOKENIZER_FILE = 'tokenizer.json'
BYTE_SPECIALS = ('<pad>', '<bos>', '<eos>')


def byte_level_tokenizer() -> Tokenizer:
  """256 byte tokens (GPT-2 byte alphabet) + <pad>=256, <bos>=257, <eos>=258."""
  alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(), key=_byte_of)
  vocab = {ch: i for i, ch in enumerate(alphabet)}
  for i, tok in enumerate(BYTE_SPECIALS):
    vocab[tok] = 256 + i
  tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
  tok.decoder = decoders.ByteLevel()
  tok.add_special_tokens(list(BYTE_SPECIALS))
  return tok


def _byte_of(ch: str) -> int:
  # GPT-2's byte ↔ unicode table: printable bytes map to themselves.
  table = _bytes_to_unicode()
  return {v: k for k, v in table.items()}[ch]


def _bytes_to_unicode() -> dict[int, str]:
  bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + \
      list(range(ord('®'), ord('ÿ') + 1))
  cs = bs[:]
  n = 0
  for b in range(256):
    if b not in bs:
      bs.append(b)
      cs.append(256 + n)
      n += 1
  return dict(zip(bs, map(chr, cs)))


def read_tokenizer(path: str | os.PathLike) -> Tokenizer:
  """A tokenizer.json, local or gs:// (the tokenizers library reads local files only)."""
  return Tokenizer.from_str(epath.Path(path).read_text())


def load_tokenizer(config, workdir: str) -> Tokenizer:
  candidates = [epath.Path(workdir) / TOKENIZER_FILE, config.tokenizer,
                epath.Path(config.init_from) / TOKENIZER_FILE if config.init_from else '']
  for path in candidates:
    if path and epath.Path(path).exists():
      tok = read_tokenizer(path)
      break
  else:
    if config.tokenizer:
      raise FileNotFoundError(f'config.tokenizer={config.tokenizer!r}: no such file')
    if config.init_from:
      raise FileNotFoundError(f'config.init_from={config.init_from!r} has no tokenizer.json; '
                              'set config.tokenizer')
    tok = byte_level_tokenizer()
  if tok.get_vocab_size() > config.model.vocab_size and not config.init_from:
    raise ValueError(f'config.model.vocab_size={config.model.vocab_size} is smaller than the '
                     f'tokenizer vocabulary ({tok.get_vocab_size()})')
  if jax.process_index() == 0:
    directory = storage.makedirs(workdir)
    storage.write_text(directory / TOKENIZER_FILE, tok.to_str())
  return tok
