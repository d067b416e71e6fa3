"""Analytic model FLOPs of a training step (for MFU), counting matmuls only.

Per sequence of S tokens through L layers of width d: 2·S·P_layer for the
projections (q, k, v, o, gate, up, down) + 4·S²·H·hd for attention scores and
values; the embedding head adds 2·d·D once per sequence. Training = 3 × forward
(backward ≈ 2 × forward). Remat recomputation is not counted: this is *model*
FLOP utilisation, not hardware utilisation.
"""

from __future__ import annotations

from gemini_embed.models.model_config import TransformerConfig


def forward_flops(cfg: TransformerConfig, seq_len: int, embed_dim: int) -> float:
  d, h, k, hd, f = cfg.width, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.mlp_dim
  per_layer_params = d * h * hd * 2 + d * k * hd * 2 + 3 * d * f
  s = seq_len
  per_layer = 2 * s * per_layer_params + 4 * s * s * h * hd
  return cfg.num_layers * per_layer + 2 * d * embed_dim


def train_step_flops(cfg: TransformerConfig, embed_dim: int, shapes: list[tuple[int, int]]) -> float:
  """shapes: (num_sequences, padded_length) for queries, positives, negatives."""
  return 3.0 * sum(n * forward_flops(cfg, s, embed_dim) for n, s in shapes)
