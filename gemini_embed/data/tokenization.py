"""Texts → fixed-bucket token arrays with the backbone's `tokenizers.Tokenizer`.

The tokenizer's own post-processor is bypassed (`add_special_tokens=False`): BOS
and EOS come from the config, resolved per model family when 'auto'
(Gemma: BOS only; Llama/SmolLM2, Qwen: none). A text is truncated to
`max_len` tokens counting BOS/EOS (EOS is kept on truncation), then the batch is
padded to the smallest bucket that holds its longest row, so a train step sees at
most `num_buckets` lengths per side:

    buckets(256, 3) = (64, 128, 256)
    tokens  [bos t1 t2 t3 eos  0   0   0 ]   Int32[B, L]   (pad id 0, masked)
    valid   [ 1   1  1  1   1  0   0   0 ]   Bool[B, L]
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from gemini_embed.data.spec import AUTO

# Family → (bos, eos) token strings; '' means none.
FAMILY_SPECIAL_TOKENS = {
    'gemma3': ('<bos>', ''),
    'llama': ('', ''),
    'qwen2': ('', ''),
    'qwen3': ('', ''),
}


def bucket_lengths(max_len: int, num_buckets: int) -> tuple[int, ...]:
  return tuple(sorted({max_len >> k for k in range(num_buckets)}))


def bucket_for(length: int, buckets: Sequence[int]) -> int:
  for b in buckets:
    if length <= b:
      return b
  return buckets[-1]


def special_token_id(tokenizer, token: str, field: str) -> int | None:
  if not token:
    return None
  token_id = tokenizer.token_to_id(token)
  if token_id is None:
    raise ValueError(f'{field}={token!r}: not in the tokenizer vocabulary; set it to a token '
                     "the tokenizer has, or '' for none")
  return token_id


def special_tokens(family: str, bos: str = AUTO, eos: str = AUTO) -> tuple[str, str]:
  default_bos, default_eos = FAMILY_SPECIAL_TOKENS.get(family, ('', ''))
  return (default_bos if bos == AUTO else bos), (default_eos if eos == AUTO else eos)


@dataclasses.dataclass
class BucketTokenizer:
  """One side's tokenizer (queries or documents): texts → token ids with BOS/EOS,
  truncated to `max_len`, padded to a length bucket (Int32[N, L] tokens, Bool[N, L] valid)."""
  tokenizer: object
  max_len: int
  num_buckets: int = 3
  bos_id: int | None = None
  eos_id: int | None = None
  pad_id: int = 0

  def __post_init__(self):
    self.buckets = bucket_lengths(self.max_len, self.num_buckets)
    self._room = self.max_len - (self.bos_id is not None) - (self.eos_id is not None)
    if self._room < 1:
      raise ValueError(f'max_len={self.max_len} leaves no room for text after BOS/EOS')

  def token_lists(self, texts: Sequence[str]) -> list[list[int]]:
    encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
    head = [self.bos_id] if self.bos_id is not None else []
    tail = [self.eos_id] if self.eos_id is not None else []
    return [head + e.ids[:self._room] + tail for e in encodings]

  def pad(self, token_lists: Sequence[list[int]], length: int | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Int32[N, L] tokens and Bool[N, L] valid; L = the bucket (or `length`)."""
    longest = max((len(t) for t in token_lists), default=1)
    length = length or bucket_for(longest, self.buckets)
    tokens = np.full((len(token_lists), length), self.pad_id, np.int32)
    valid = np.zeros((len(token_lists), length), bool)
    for i, ids in enumerate(token_lists):
      tokens[i, :len(ids)] = ids
      valid[i, :len(ids)] = True
    return tokens, valid

  def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    return self.pad(self.token_lists(texts))


def encoders_from_config(data_config, family: str, tokenizer, num_buckets: int | None = None
                         ) -> tuple[BucketTokenizer, BucketTokenizer]:
  """(query side, document side) from `config.data` and the model family.

  `num_buckets` overrides `config.data.num_buckets` (1: always pad to max_len, what a
  multi-process pipeline needs for equal shapes on every process)."""
  bos, eos = special_tokens(family, data_config.bos_token, data_config.eos_token)
  bos_id = special_token_id(tokenizer, bos, 'config.data.bos_token')
  eos_id = special_token_id(tokenizer, eos, 'config.data.eos_token')
  buckets = data_config.num_buckets if num_buckets is None else num_buckets
  make = lambda max_len: BucketTokenizer(tokenizer, max_len, buckets, bos_id, eos_id)
  return make(data_config.query_max_len), make(data_config.doc_max_len)
