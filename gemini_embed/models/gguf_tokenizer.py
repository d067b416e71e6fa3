"""Tokenizers rebuilt from a GGUF file's metadata, as `tokenizers.Tokenizer` objects.

llama.cpp keeps the vocabulary in `tokenizer.ggml.*` keys; two kinds are built here:

  gpt2   byte-level BPE (SmolLM2): the token strings are already in GPT-2's byte
         alphabet and the merges are listed. `tokenizer.ggml.pre` names the split
         regex; 'smollm' also splits every digit off on its own.
  llama  SentencePiece BPE (Gemma): tokens with scores, no merges. A SentencePiece
         BPE merges, at each step, the adjacent pair whose union is the
         highest-scoring piece, so every split (left, right) of a normal piece
         becomes a merge ranked by that piece's score. Characters outside the
         vocabulary fall back to <0xXX> byte pieces; spaces are spelled '▁'.

Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
6 byte. Control tokens become special tokens (never split); user-defined ones
(Gemma's '\\n\\n', '<table>', runs of spaces) are matched whole in the text, as
SentencePiece and llama.cpp do. llama.cpp stores user-defined runs of spaces
with real spaces; they are respelled with '▁' to meet the normalised text.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = '\u2581'   # SentencePiece's visible space '▁'

# tokenizer.ggml.pre → pre-tokenizers (byte-level BPE). The GPT-2 regex is ByteLevel's own.
_BYTE_LEVEL_PRE = {
    'default': (),
    'gpt2': (),
    'gpt-2': (),
    'smollm': (pre_tokenizers.Digits(individual_digits=True),),
}


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
  """Ids (and strings) the data pipeline needs; None when the file names none."""
  bos_id: int | None
  eos_id: int | None
  pad_id: int | None
  unk_id: int | None
  bos: str | None
  eos: str | None
  pad: str | None
  unk: str | None
  add_bos: bool
  add_eos: bool

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def special_tokens(meta, source: str) -> SpecialTokens:
  """meta(key, default) reads GGUF metadata (e.g. GGUFCheckpoint.metadata)."""
  tokens = _tokens(meta, source)

  def token(key):
    i = _token_id(meta, f'tokenizer.ggml.{key}_token_id', len(tokens), source)
    return (None, None) if i is None else (i, tokens[i])

  (bos_id, bos), (eos_id, eos) = token('bos'), token('eos')
  (pad_id, pad), (unk_id, unk) = token('padding'), token('unknown')
  default_bos = meta('tokenizer.ggml.model', None) == 'llama'   # llama.cpp's default for SPM
  return SpecialTokens(bos_id, eos_id, pad_id, unk_id, bos, eos, pad, unk,
                       add_bos=bool(meta('tokenizer.ggml.add_bos_token', default_bos)),
                       add_eos=bool(meta('tokenizer.ggml.add_eos_token', False)))


def gguf_tokenizer(meta, source: str) -> Tokenizer:
  """The file's tokenizer; its post-processor adds BOS/EOS as the file asks."""
  kind = meta('tokenizer.ggml.model', None)
  if kind == 'gpt2':
    tok = _byte_level_bpe(meta, source)
  elif kind == 'llama':
    tok = _sentencepiece_bpe(meta, source)
  else:
    raise ValueError(f'{source}: tokenizer.ggml.model={kind!r} is not supported '
                     "(supported: 'gpt2' byte-level BPE, 'llama' SentencePiece BPE)")
  _add_template(tok, special_tokens(meta, source))
  return tok


def _tokens(meta, source: str) -> list[str]:
  tokens = meta('tokenizer.ggml.tokens', None)
  if not tokens:
    raise ValueError(f'{source}: no tokenizer.ggml.tokens; this GGUF carries no tokenizer')
  return list(tokens)


def _token_id(meta, key: str, n: int, source: str) -> int | None:
  """The id under `key` (None if absent), which must index the vocabulary of n tokens."""
  i = meta(key, None)
  if i is None:
    return None
  if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
    raise ValueError(f'{source}: {key}={i!r} is not a token id ({n} tokens); the file is '
                     'corrupt')
  return i


def _per_token(meta, key: str, n: int, source: str) -> list | None:
  """A list with one entry per token (None if absent)."""
  values = meta(key, None)
  if values is not None and len(values) != n:
    raise ValueError(f'{source}: {key} has {len(values)} entries for {n} tokens; the file is '
                     'corrupt')
  return values


def _types(meta, n: int, source: str) -> list[int]:
  types = _per_token(meta, 'tokenizer.ggml.token_type', n, source)
  return [int(t) for t in types] if types is not None else [NORMAL] * n


def _byte_level_bpe(meta, source: str) -> Tokenizer:
  tokens = _tokens(meta, source)
  types = _types(meta, len(tokens), source)
  pre = meta('tokenizer.ggml.pre', 'default') or 'default'
  if pre not in _BYTE_LEVEL_PRE:
    raise ValueError(f'{source}: tokenizer.ggml.pre={pre!r} (the split regex) is not '
                     f'supported; supported: {sorted(_BYTE_LEVEL_PRE)}')
  merges = [tuple(m.split(' ', 1)) for m in meta('tokenizer.ggml.merges', None) or ()]
  if not merges:
    raise ValueError(f'{source}: a gpt2 (byte-level BPE) tokenizer needs tokenizer.ggml.merges')
  vocab = {t: i for i, t in enumerate(tokens)}
  tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
  tok.pre_tokenizer = pre_tokenizers.Sequence(
      [*_BYTE_LEVEL_PRE[pre], pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
  tok.decoder = decoders.ByteLevel()
  _add_specials(tok, tokens, types, respelled=set())
  return tok


def _sentencepiece_bpe(meta, source: str) -> Tokenizer:
  tokens = _tokens(meta, source)
  types = _types(meta, len(tokens), source)
  scores = _per_token(meta, 'tokenizer.ggml.scores', len(tokens), source)
  if scores is None:
    raise ValueError(f'{source}: a SentencePiece (llama) tokenizer needs tokenizer.ggml.scores')
  spelled, respelled = _respell_spaces(tokens, types)
  vocab = {t: i for i, t in enumerate(spelled)}
  if len(vocab) != len(spelled):
    raise ValueError(f'{source}: tokenizer.ggml.tokens has duplicate entries')

  normal = {t for t, ty in zip(spelled, types) if ty == NORMAL}
  ranked = []
  for i, (piece, ty) in enumerate(zip(spelled, types)):
    if ty != NORMAL or len(piece) < 2:
      continue
    for cut in range(1, len(piece)):
      left, right = piece[:cut], piece[cut:]
      if left in normal and right in normal:
        ranked.append((-float(scores[i]), i, cut, left, right))
  ranked.sort()
  merges = [(left, right) for *_, left, right in ranked]

  unk_id = _token_id(meta, 'tokenizer.ggml.unknown_token_id', len(tokens), source)
  tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=True, byte_fallback=True,
                             unk_token=spelled[unk_id] if unk_id is not None else None))
  prefix = bool(meta('tokenizer.ggml.add_space_prefix', False))
  tok.normalizer = normalizers.Sequence(
      ([normalizers.Prepend(SPACE)] if prefix else []) + [normalizers.Replace(' ', SPACE)])
  steps = [decoders.Replace(SPACE, ' '), decoders.ByteFallback(), decoders.Fuse()]
  tok.decoder = decoders.Sequence(steps + ([decoders.Strip(' ', 1, 0)] if prefix else []))
  _add_specials(tok, spelled, types, respelled)
  return tok


def _respell_spaces(tokens: list[str], types: list[int]) -> tuple[list[str], set[str]]:
  """User-defined tokens stored with real spaces get '▁' (unless that spelling is taken)."""
  taken = set(tokens)
  out, respelled = list(tokens), set()
  for i, (t, ty) in enumerate(zip(tokens, types)):
    if ty == USER_DEFINED and ' ' in t:
      new = t.replace(' ', SPACE)
      if new not in taken:
        out[i] = new
        respelled.add(new)
  return out, respelled


def _add_specials(tok: Tokenizer, tokens: list[str], types: list[int], respelled: set[str]):
  control = [AddedToken(t, special=True, normalized=False)
             for t, ty in zip(tokens, types) if ty == CONTROL]
  # Respelled runs of '▁' match the normalised text; the rest match the raw text.
  user = [AddedToken(t, special=False, normalized=t in respelled)
          for t, ty in zip(tokens, types) if ty == USER_DEFINED]
  if control:
    tok.add_special_tokens(control)
  if user:
    tok.add_tokens(user)


def _add_template(tok: Tokenizer, special: SpecialTokens) -> None:
  bos = [special.bos] if special.add_bos and special.bos is not None else []
  eos = [special.eos] if special.add_eos and special.eos is not None else []
  if not bos and not eos:
    return
  ids = {t: tok.token_to_id(t) for t in bos + eos}
  single = bos + ['$A'] + eos
  pair = bos + ['$A'] + eos + bos + ['$B:1'] + eos
  tok.post_processor = processors.TemplateProcessing(
      single=' '.join(single), pair=' '.join(pair), special_tokens=list(ids.items()))
