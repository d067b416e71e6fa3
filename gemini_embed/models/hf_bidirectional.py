"""Bidirectional Llama / Qwen2 / Qwen3 encoders for transformers (`trust_remote_code`).

Shipped beside a gemini_embed export as `modeling_bidirectional.py` (models/hf_export.py);
transformers imports it, gemini_embed never does. transformers has no switch to make
these decoders non-causal, so each class here is the stock base model whose forward
replaces the causal mask with a padding-only one: every token attends to every real
token of its text (keys masked by `attention_mask`), as the embedder was trained.

`ExportedTokenizer` is tokenizer.json as written (TokenizersBackend): AutoTokenizer
otherwise rebuilds some families' tokenizers (Qwen2) from the vocabulary with its own
pre-tokenizer and special tokens, ignoring the ones the embedder was trained with.
"""

import torch
from transformers import LlamaModel, Qwen2Model, Qwen3Model, TokenizersBackend


class _Bidirectional:
  """Mixin over a transformers base model: a [B, 1, S, S] additive padding mask."""

  def __init__(self, config):
    super().__init__(config)
    for layer in self.layers:
      layer.self_attn.is_causal = False  # kernels that take `is_causal` (sdpa, flash)

  def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
    ref = input_ids if input_ids is not None else inputs_embeds
    batch, seq = ref.shape[0], ref.shape[1]
    if attention_mask is None:
      attention_mask = torch.ones(batch, seq, dtype=torch.long, device=ref.device)
    if attention_mask.dim() == 2:
      keys = attention_mask.bool()[:, None, None, :].expand(batch, 1, seq, seq)
      dtype = self.embed_tokens.weight.dtype
      attention_mask = torch.zeros(keys.shape, dtype=dtype, device=ref.device).masked_fill(
          ~keys, torch.finfo(dtype).min)
    return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                           inputs_embeds=inputs_embeds, **kwargs)


class BidirectionalLlamaModel(_Bidirectional, LlamaModel):
  pass


class BidirectionalQwen2Model(_Bidirectional, Qwen2Model):
  pass


class BidirectionalQwen3Model(_Bidirectional, Qwen3Model):
  pass


class ExportedTokenizer(TokenizersBackend):
  pass
