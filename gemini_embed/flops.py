"""Analytic model FLOPs of a training step (for MFU), counting matmuls only.

Per sequence of S tokens through L layers of width d: 2·S·P_layer for the
projections (q, k, v, o, gate, up, down) + 4·S²·H·hd for attention scores and
values; the embedding head adds 2·d·D once per sequence. Training = 3 × forward
(backward ≈ 2 × forward). Remat recomputation is not counted: this is *model*
FLOP utilisation, not hardware utilisation.

Two counts of one step (`StepFlops`):
  padded  what the step's shapes compute: every padded row at its full length
          (a packed row of L tokens attends over L², as XLA computes it);
  real    each text alone at its own length, attention within the text only —
          what an ideal kernel on unpadded texts would need; packing's gain shows
          as padded approaching real.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gemini_embed.models.model_config import TransformerConfig


@dataclasses.dataclass(frozen=True)
class StepFlops:
  padded: float
  real: float


def backbone_flops(cfg: TransformerConfig, seq_len):
  """Forward FLOPs of the transformer layers over one row of `seq_len` tokens (an int,
  or an array of lengths: one count each)."""
  d, h, k, hd, f = cfg.width, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.mlp_dim
  per_layer_params = d * h * hd * 2 + d * k * hd * 2 + 3 * d * f
  s = seq_len
  return cfg.num_layers * (2 * s * per_layer_params + 4 * s * s * h * hd)


def forward_flops(cfg: TransformerConfig, seq_len: int, embed_dim: int) -> float:
  return backbone_flops(cfg, seq_len) + 2 * cfg.width * embed_dim


def train_step_flops(cfg: TransformerConfig, embed_dim: int, shapes: list[tuple[int, int]]) -> float:
  """shapes: (num_sequences, padded_length) for queries, positives, negatives."""
  return 3.0 * sum(n * forward_flops(cfg, s, embed_dim) for n, s in shapes)


def packed_train_step_flops(cfg: TransformerConfig, embed_dim: int, rows: int, row_length: int,
                            num_texts: int) -> float:
  """A packed step: `rows` rows of `row_length` tokens, the head once per text."""
  return 3.0 * (rows * backbone_flops(cfg, row_length) + num_texts * 2 * cfg.width * embed_dim)


def real_train_flops(cfg: TransformerConfig, embed_dim: int, lengths: np.ndarray) -> float:
  """Each text of `lengths` tokens on its own: the real-token count."""
  n = np.asarray(lengths, np.float64)
  return 3.0 * float(np.sum(backbone_flops(cfg, n)) + n.size * 2 * cfg.width * embed_dim)
