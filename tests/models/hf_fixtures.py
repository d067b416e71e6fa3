"""Tiny random Hugging Face models of each family, built locally (no download)."""

from __future__ import annotations

import numpy as np

FAMILIES = ('llama', 'qwen2', 'qwen3', 'gemma3')


def tiny_hf_model(family: str, seed: int = 0, **overrides):
  """A random transformers causal LM whose every weight (norms included) is non-trivial;
  overrides: config fields (e.g. vocab_size, max_position_embeddings)."""
  import torch
  import transformers as tf

  common = dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
  common.update(overrides)
  if family == 'llama':
    cfg = tf.LlamaConfig(**common, tie_word_embeddings=False, rope_theta=500.0)
    cls = tf.LlamaForCausalLM
  elif family == 'qwen2':
    cfg = tf.Qwen2Config(**common, tie_word_embeddings=False, rope_theta=1000.0)
    cls = tf.Qwen2ForCausalLM
  elif family == 'qwen3':
    cfg = tf.Qwen3Config(**common, head_dim=24, tie_word_embeddings=True, rope_theta=1000.0)
    cls = tf.Qwen3ForCausalLM
  elif family == 'gemma3':
    cfg = tf.Gemma3TextConfig(**common, head_dim=16, query_pre_attn_scalar=12, sliding_window=6,
                              layer_types=['sliding_attention', 'full_attention', 'sliding_attention'],
                              rope_parameters={
                                  'sliding_attention': {'rope_type': 'default', 'rope_theta': 100.0},
                                  'full_attention': {'rope_type': 'linear', 'rope_theta': 5000.0,
                                                     'factor': 2.0}})
    cls = tf.Gemma3ForCausalLM
  else:
    raise ValueError(family)
  cfg._attn_implementation = 'eager'
  torch.manual_seed(seed)
  model = cls(cfg).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if p.ndim == 1:  # norms (init 0 or 1) and biases (init 0): make them matter
        p.add_(0.3 * torch.randn_like(p))
  return model


def gemma_bidirectional_twin(model):
  """The same weights under transformers' own bidirectional Gemma 3 (EmbeddingGemma's
  switch), built from a config dict so that its window conversion runs as on load."""
  d = model.config.to_dict()
  d['use_bidirectional_attention'] = True
  cfg = type(model.config).from_dict(d)
  cfg._attn_implementation = 'eager'
  twin = type(model)(cfg).eval()
  twin.load_state_dict(model.state_dict())
  return twin


def token_batch(vocab: int, seed: int = 1):
  """Two sequences of 12 tokens, the second right-padded to 7 real tokens."""
  rng = np.random.default_rng(seed)
  tokens = rng.integers(1, vocab, size=(2, 12)).astype(np.int32)
  valid = np.ones((2, 12), bool)
  valid[1, 7:] = False
  tokens[1, 7:] = 0
  return tokens, valid


def hf_hidden(model, tokens, valid, bidirectional: bool) -> np.ndarray:
  """Final hidden states from transformers; bidirectional via an explicit 4D mask
  (Gemma 3 through its own `use_bidirectional_attention` switch instead)."""
  import torch
  ids = torch.tensor(tokens, dtype=torch.long)
  with torch.no_grad():
    if bidirectional and model.config.model_type != 'gemma3_text':
      mask = torch.tensor(valid)[:, None, None, :].expand(-1, 1, tokens.shape[1], -1)
      additive = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
      out = model.model(input_ids=ids, attention_mask=additive)
    else:
      out = model.model(input_ids=ids, attention_mask=torch.tensor(valid, dtype=torch.long))
  return out.last_hidden_state.numpy()
