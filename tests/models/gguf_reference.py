"""transformers' own reading of a GGUF file: the independent reference for our import.

`AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)` insists on `accelerate`,
which is not in our pinned test stack, before it does anything GGUF-specific. For
the llama and gemma3 architectures its GGUF path is: config from
`AutoConfig.from_pretrained(dir, gguf_file=...)`, then the tensors from
`load_gguf_checkpoint(..., return_tensors=True, model_to_load=model)` (transformers'
name map, Q/K un-permutation and Gemma norm shift), loaded into the model. We run
exactly those two steps, in float32, with eager attention.

The tokenizer references follow llama.cpp where transformers' GGUF conversion
differs from it (see `llamacpp_split_ids`).
"""

from __future__ import annotations

import os

import numpy as np


def transformers_gguf_model(path: str):
  import torch
  import transformers as tf
  from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

  directory, name = os.path.split(path)
  config = tf.AutoConfig.from_pretrained(directory, gguf_file=name)
  config._attn_implementation = 'eager'
  with torch.device('meta'):
    skeleton = tf.AutoModelForCausalLM.from_config(config)
  tensors = load_gguf_checkpoint(path, return_tensors=True, model_to_load=skeleton)['tensors']
  model = tf.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
  missing, unexpected = model.load_state_dict(tensors, strict=False)
  assert not unexpected, unexpected
  assert set(missing) <= {'lm_head.weight'}, missing
  if missing:
    assert config.tie_word_embeddings
    model.tie_weights()
  return model


def transformers_hidden(model, tokens: np.ndarray, valid: np.ndarray) -> np.ndarray:
  import torch
  with torch.no_grad():
    out = model.model(input_ids=torch.tensor(tokens, dtype=torch.long),
                      attention_mask=torch.tensor(valid, dtype=torch.long))
  return out.last_hidden_state.float().numpy()


# ---- tokenizer references ------------------------------------------------------------
# llama.cpp's split for tokenizer.ggml.pre == 'smollm' (src/llama-vocab.cpp): every
# Unicode number on its own, then GPT-2's regex, each applied to the previous pieces.
# transformers' GGUF conversion knows no 'smollm' entry and uses GPT-2's regex alone.
SMOLLM_REGEXES = (r'\p{N}',
                  r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)")


def _regex_split(pieces: list[str], pattern: str) -> list[str]:
  """llama.cpp's unicode_regex_split: matches and the text between them are both pieces."""
  import regex
  out = []
  for piece in pieces:
    pos = 0
    for m in regex.finditer(pattern, piece):
      if m.start() > pos:
        out.append(piece[pos:m.start()])
      out.append(m.group())
      pos = m.end()
    if pos < len(piece):
      out.append(piece[pos:])
  return out


def smollm_reference_ids(ref_tokenizer, text: str) -> list[int]:
  """transformers' BPE on the pieces of llama.cpp's 'smollm' pre-tokenizer."""
  pieces = [text]
  for pattern in SMOLLM_REGEXES:
    pieces = _regex_split(pieces, pattern)
  ids = []
  for piece in pieces:
    ids.extend(ref_tokenizer.encode(piece, add_special_tokens=False))
  return ids


def user_defined_tokens(path: str) -> dict[str, int]:
  """The file's user-defined tokens (type 4), read by transformers' GGUF reader."""
  from transformers.integrations.gguf import get_gguf_tokenizer
  _, tokenizer, _ = get_gguf_tokenizer(path)
  return {t: i for i, (t, kind) in enumerate(zip(tokenizer['tokens'], tokenizer['token_type']))
          if kind == 4}


def sentencepiece_reference_ids(ref_tokenizer, text: str, user_defined: dict[str, int],
                                bos_id: int | None) -> list[int]:
  """transformers' tokenizer on the fragments of llama.cpp's user-defined-token partition.

  llama.cpp matches user-defined tokens (Gemma's runs of spaces, '\\n\\n', '<td>') in
  the raw text, longest token first, before running BPE on what lies between
  (llama_vocab::impl::tokenizer_st_partition). transformers turns Gemma's runs of
  spaces into top-ranked merges instead, which differs for runs over 31 spaces.
  """
  fragments: list[tuple[str, bool]] = [(text, False)]
  for token in sorted(user_defined, key=lambda t: len(t.encode()), reverse=True):
    nxt = []
    for frag, is_token in fragments:
      if is_token or token not in frag:
        nxt.append((frag, is_token))
        continue
      parts = frag.split(token)
      for i, part in enumerate(parts):
        if i:
          nxt.append((token, True))
        if part:
          nxt.append((part, False))
    fragments = nxt
  ids = [bos_id] if bos_id is not None else []
  for frag, is_token in fragments:
    if is_token:
      ids.append(user_defined[frag])
    else:
      ids.extend(ref_tokenizer.encode(frag, add_special_tokens=False))
  return ids
