"""Tiny random causal LMs saved as Hugging Face directories that `--llm=DIR` loads, and
transformers' greedy decoding of them (the independent reference)."""

from __future__ import annotations

import os

import numpy as np

from gemini_embed.models.tokenizer import byte_level_tokenizer
from tests.models.hf_fixtures import tiny_hf_model

# The byte-level tokenizer's ids: 256 bytes, then <pad>, <bos>, <eos>.
PAD, BOS, EOS = 256, 257, 258
VOCAB = 260


def save_tiny_llm(directory: str, family: str = 'llama', seed: int = 0, context: int = 64):
  """A random transformers LM (logits spread wide enough that greedy choices are rarely
  near ties) in `directory` with a byte-level tokenizer.json; returns the torch model."""
  import torch
  model = tiny_hf_model(family, seed, vocab_size=VOCAB, max_position_embeddings=context,
                        pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)
  with torch.no_grad():
    model.get_input_embeddings().weight.mul_(10.0)
    if not model.config.tie_word_embeddings:
      model.get_output_embeddings().weight.mul_(10.0)
  model.save_pretrained(directory)
  byte_level_tokenizer().save(os.path.join(directory, 'tokenizer.json'))
  return model


def left_padded(prompts: list[list[int]], pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(ids, attention mask) with every prompt right-aligned."""
  s = max(map(len, prompts))
  ids = np.full((len(prompts), s), pad, np.int64)
  mask = np.zeros((len(prompts), s), np.int64)
  for i, p in enumerate(prompts):
    ids[i, s - len(p):], mask[i, s - len(p):] = p, 1
  return ids, mask


def transformers_greedy(model, prompts: list[list[int]], new_tokens: int, pad: int = 0
                        ) -> tuple[np.ndarray, np.ndarray]:
  """(tokens [B, new_tokens], logits [new_tokens, B, V]) of transformers' greedy
  `generate` on the left-padded batch, never stopping early (no EOS)."""
  import torch
  ids, mask = left_padded(prompts, pad)
  model.generation_config.eos_token_id = None
  with torch.no_grad():
    out = model.generate(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                         max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                         pad_token_id=pad, eos_token_id=None, output_logits=True,
                         return_dict_in_generate=True, top_k=None, top_p=None,
                         temperature=None)
  tokens = out.sequences[:, ids.shape[1]:].numpy()
  logits = np.stack([l.float().numpy() for l in out.logits])
  return tokens, logits


def compare_greedy(ours: list[list[int]], ref_tokens: np.ndarray, ref_logits: np.ndarray,
                   tie: float = 1e-4) -> tuple[int, list[str]]:
  """Token-for-token comparison; a row may diverge only at a step where the reference's
  top-2 logit gap is below `tie` (then the rest of that row is not compared). Returns
  (accepted near-tie divergences, failures)."""
  accepted, failures = 0, []
  for r, row in enumerate(ours):
    for t, want in enumerate(ref_tokens[r]):
      got = row[t] if t < len(row) else None
      if got == int(want):
        continue
      top2 = np.sort(ref_logits[t, r])[-2:]
      gap = float(top2[1] - top2[0])
      if gap < tie:
        accepted += 1
      else:
        failures.append(f'row {r} step {t}: ours {got}, transformers {int(want)} '
                        f'(its top-2 gap {gap:.2e})')
      break
  return accepted, failures
