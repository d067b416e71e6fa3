"""Tiny GGUF files written the way llama.cpp's convert_hf_to_gguf.py writes them.

From a tiny random transformers model: HF names → GGUF names, Llama attn_q/attn_k
rows permuted to llama.cpp's interleaved RoPE layout, Gemma norms stored as w + 1,
2-D weights optionally quantised. Our reader is then checked against transformers'
reader of the same file (gguf_reference.py), so a wrong convention here cannot hide
a wrong convention there.
"""

from __future__ import annotations

import re

import gguf
import numpy as np

_LAYER = {
    'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output', 'self_attn.q_norm': 'attn_q_norm',
    'self_attn.k_norm': 'attn_k_norm', 'input_layernorm': 'attn_norm',
    'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
    'post_feedforward_layernorm': 'post_ffw_norm', 'pre_feedforward_layernorm': 'ffn_norm',
}


def llama_cpp_permute(w: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
  """convert_hf_to_gguf.py's LlamaModel.permute (HF rotate-half → interleaved pairs)."""
  if n_head_kv is not None and n_head != n_head_kv:
    n_head = n_head_kv
  return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
          .swapaxes(1, 2).reshape(w.shape))


def gguf_name(hf_name: str, arch: str) -> str:
  if hf_name == 'model.embed_tokens.weight':
    return 'token_embd.weight'
  if hf_name == 'model.norm.weight':
    return 'output_norm.weight'
  if hf_name == 'lm_head.weight':
    return 'output.weight'
  layer, part, suffix = re.match(r'model\.layers\.(\d+)\.(.+)\.(weight|bias)$', hf_name).groups()
  if part == 'post_attention_layernorm':
    kind = 'post_attention_norm' if arch == 'gemma3' else 'ffn_norm'
  else:
    kind = _LAYER[part]
  return f'blk.{layer}.{kind}.{suffix}'


def write_gguf(model, path: str, quantize: gguf.GGMLQuantizationType | None = None,
               arch: str | None = None, extra=None) -> str:
  """Writes `model` (a transformers LlamaForCausalLM / Gemma3ForCausalLM) as GGUF.

  extra(writer) may add or override metadata/tensors (error-path tests).
  """
  cfg = model.config
  arch = arch or ('gemma3' if cfg.model_type == 'gemma3_text' else 'llama')
  head_dim = getattr(cfg, 'head_dim', None) or cfg.hidden_size // cfg.num_attention_heads
  w = gguf.GGUFWriter(path, arch)
  w.add_name(f'tiny-{arch}')
  w.add_block_count(cfg.num_hidden_layers)
  w.add_context_length(cfg.max_position_embeddings)
  w.add_embedding_length(cfg.hidden_size)
  w.add_feed_forward_length(cfg.intermediate_size)
  w.add_head_count(cfg.num_attention_heads)
  w.add_head_count_kv(cfg.num_key_value_heads)
  w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
  w.add_vocab_size(cfg.vocab_size)
  rope = cfg.rope_parameters
  w.add_rope_freq_base(rope['full_attention']['rope_theta'] if arch == 'gemma3'
                       else rope['rope_theta'])
  if arch == 'gemma3':
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_sliding_window(cfg.sliding_window)
  else:
    w.add_rope_dimension_count(head_dim)
  if extra is not None:
    extra(w)
  for name, tensor in model.state_dict().items():
    if name == 'lm_head.weight' and cfg.tie_word_embeddings:
      continue
    x = tensor.float().numpy().copy()
    target = gguf_name(name, arch)
    if arch == 'llama' and target.endswith('attn_q.weight'):
      x = llama_cpp_permute(x, cfg.num_attention_heads, cfg.num_attention_heads)
    if arch == 'llama' and target.endswith('attn_k.weight'):
      x = llama_cpp_permute(x, cfg.num_attention_heads, cfg.num_key_value_heads)
    if arch == 'gemma3' and target.endswith('norm.weight'):
      x = x + 1.0   # convert_hf_to_gguf's Gemma norm_shift
    if quantize is not None and x.ndim == 2:
      w.add_tensor(target, gguf.quants.quantize(x, quantize),
                   raw_dtype=quantize)
    else:
      w.add_tensor(target, x.astype(np.float32))
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()
  return path


def tiny_gemma3_for_gguf(seed: int = 0):
  """A Gemma 3 whose hyper-parameters a GGUF can carry: GGUF has no query scale or
  layer pattern, so transformers' reader falls back to Gemma 3's (256, every 6th
  layer global); head_dim is 256 and there are 6 layers to match."""
  import torch
  import transformers as tf
  cfg = tf.Gemma3TextConfig(vocab_size=96, hidden_size=64, intermediate_size=96,
                            num_hidden_layers=6, num_attention_heads=2, num_key_value_heads=1,
                            head_dim=256, max_position_embeddings=64, sliding_window=4,
                            query_pre_attn_scalar=256)
  cfg._attn_implementation = 'eager'
  torch.manual_seed(seed)
  model = tf.Gemma3ForCausalLM(cfg).eval()
  with torch.no_grad():
    for p in model.parameters():
      if p.ndim == 1:
        p.add_(0.3 * torch.randn_like(p))
  return model
