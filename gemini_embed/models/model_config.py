"""Hyper-parameters of the transformer backbone, one dataclass for every family.

The experiment config (`configs/*.py`) holds these as a `config.model`
ConfigDict with exactly these field names; `TransformerConfig.from_config`
turns it into this frozen dataclass and checks it, naming the offending field.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from gemini_embed.models import precision as precision_lib

FAMILIES = ('gemma3', 'llama', 'qwen2', 'qwen3')
ATTENTION_MODES = ('bidirectional', 'causal')
REMAT_POLICIES = ('none', 'full', 'dots_saveable', 'dots_with_no_batch_dims_saveable')
ROPE_SCALINGS = ('none', 'linear')
# models/attention.py: 'xla' everywhere; 'splash' (TPU Pallas), 'cudnn' (GPU, bf16/f16);
# 'auto' = splash on TPU, cudnn on GPU for bf16/f16 compute, else xla.
ATTENTION_IMPLS = ('xla', 'splash', 'cudnn', 'auto')
CUDNN_DTYPES = ('bfloat16', 'float16')


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """One decoder-LLM backbone (Gemma 3, Llama/SmolLM2, Qwen2, Qwen3)."""

  family: str = 'llama'
  vocab_size: int = 256
  num_layers: int = 2
  width: int = 64                # model width d (HF hidden_size)
  num_heads: int = 4
  num_kv_heads: int = 2
  head_dim: int = 16
  mlp_dim: int = 128
  norm_eps: float = 1e-6
  # RoPE: one base per attention kind; Gemma 3 uses a different base locally.
  rope_base: float = 10_000.0
  rope_local_base: float = 10_000.0
  rope_scaling: str = 'none'      # 'none' | 'linear' (applied to global layers)
  rope_scaling_factor: float = 1.0
  # Sliding-window layers: `sliding_window` tokens (HF convention, causal);
  # `layer_types[i]` is 'full' or 'sliding'. Empty tuple = all full.
  sliding_window: int = 0
  layer_types: tuple[str, ...] = ()
  qkv_bias: bool = False          # Qwen2
  qk_norm: bool = False           # Gemma 3, Qwen3
  query_pre_attn_scalar: float = 0.0   # 0 = head_dim (scale 1/sqrt(head_dim))
  tie_embeddings: bool = True
  attention_mode: str = 'bidirectional'
  # params / compute / output dtypes (models/precision.py); norms, softmax, pooling,
  # similarities and the loss stay float32.
  precision: str = precision_lib.DEFAULT
  remat: str = 'none'
  # Layers per iteration of the scan over layers: 1 = a loop (one layer compiled; the
  # TPU/GPU default), num_layers (or more) = fully unrolled, which lets XLA's CPU
  # backend fuse and overlap work across layers (demo model: ~13% faster step).
  scan_unroll: int = 1
  attention_impl: str = 'xla'     # the attention kernel (ATTENTION_IMPLS)

  # ---- family conventions, derived, not configured ------------------------
  @property
  def is_gemma(self) -> bool:
    return self.family == 'gemma3'

  @property
  def activation(self) -> str:
    return 'gelu_tanh' if self.is_gemma else 'silu'

  @property
  def norm_offset(self) -> float:
    """Gemma stores RMSNorm scale as w and multiplies by (1 + w)."""
    return 1.0 if self.is_gemma else 0.0

  @property
  def embed_scale(self) -> bool:
    """Gemma multiplies token embeddings by sqrt(d)."""
    return self.is_gemma

  @property
  def sandwich_norms(self) -> bool:
    """Gemma 3 also normalises the outputs of attention and MLP."""
    return self.is_gemma

  @property
  def policy(self) -> precision_lib.Precision:
    """`precision` parsed (once per distinct string)."""
    return precision_lib.parse_precision(self.precision)

  @property
  def attn_scale(self) -> float:
    return (self.query_pre_attn_scalar or self.head_dim) ** -0.5

  def layer_is_sliding(self) -> tuple[bool, ...]:
    if not self.layer_types:
      return (False,) * self.num_layers
    return tuple(t == 'sliding' for t in self.layer_types)

  # ---- construction and checks --------------------------------------------
  @classmethod
  def from_config(cls, cfg: Any, prefix: str = 'config.model') -> 'TransformerConfig':
    """Builds from a ConfigDict/dict; unknown fields are errors naming the field."""
    d = dict(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in d:
      if k not in names:
        raise ValueError(f'{prefix}.{k}: unknown model field; valid fields are {sorted(names)}')
    if 'layer_types' in d and d['layer_types'] is not None:
      d['layer_types'] = tuple(d['layer_types'])
    out = cls(**d)
    out.validate(prefix)
    return out

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d['layer_types'] = list(self.layer_types)
    return d

  def replace(self, **kw) -> 'TransformerConfig':
    out = dataclasses.replace(self, **kw)
    out.validate()
    return out

  def with_layers(self, num_layers: int) -> 'TransformerConfig':
    """The first `num_layers` layers (a truncated backbone for cheap CPU runs)."""
    if not 0 < num_layers <= self.num_layers:
      raise ValueError(f'cannot keep {num_layers} of {self.num_layers} layers')
    return self.replace(num_layers=num_layers, layer_types=self.layer_types[:num_layers])

  def validate(self, prefix: str = 'config.model') -> None:
    def bad(field, why):
      raise ValueError(f'{prefix}.{field}={getattr(self, field)!r}: {why}')

    if self.family not in FAMILIES:
      bad('family', f'unknown model family; choose one of {FAMILIES}')
    if self.attention_mode not in ATTENTION_MODES:
      bad('attention_mode', f'choose one of {ATTENTION_MODES}')
    if self.remat not in REMAT_POLICIES:
      bad('remat', f'choose one of {REMAT_POLICIES}')
    if not isinstance(self.scan_unroll, int) or self.scan_unroll < 1:
      bad('scan_unroll', 'layers per scan iteration: an integer ≥ 1 (num_layers = unrolled)')
    if self.attention_impl not in ATTENTION_IMPLS:
      bad('attention_impl', f'choose one of {ATTENTION_IMPLS}')
    policy = precision_lib.parse_precision(self.precision, f'{prefix}.precision')
    if self.attention_impl == 'cudnn' and policy.compute_dtype.name not in CUDNN_DTYPES:
      bad('attention_impl', f'cuDNN attention computes in {CUDNN_DTYPES}, not '
          f'{prefix}.precision={self.precision!r}; set compute=bfloat16 '
          f'(e.g. {precision_lib.EXAMPLE!r}), or attention_impl=auto (cudnn where it '
          'applies, else xla)')
    if self.rope_scaling not in ROPE_SCALINGS:
      bad('rope_scaling', f'choose one of {ROPE_SCALINGS}')
    for f in ('vocab_size', 'num_layers', 'width', 'num_heads', 'num_kv_heads',
              'head_dim', 'mlp_dim'):
      if getattr(self, f) <= 0:
        bad(f, 'must be positive')
    if self.num_heads % self.num_kv_heads:
      bad('num_kv_heads', f'must divide num_heads={self.num_heads}')
    if self.layer_types:
      if len(self.layer_types) != self.num_layers:
        bad('layer_types', f'needs one entry per layer (num_layers={self.num_layers})')
      if set(self.layer_types) - {'full', 'sliding'}:
        bad('layer_types', "entries must be 'full' or 'sliding'")
      if 'sliding' in self.layer_types and self.sliding_window <= 0:
        bad('sliding_window', 'sliding layers need a positive window')


def sliding_pattern(num_layers: int, period: int) -> tuple[str, ...]:
  """Gemma 3's pattern: every `period`-th layer is global, the rest local."""
  return tuple('full' if (i + 1) % period == 0 else 'sliding' for i in range(num_layers))


def normalise_layer_types(types: Sequence[str] | None) -> tuple[str, ...]:
  """Maps HF layer-type names ('sliding_attention', 'full_attention') to ours."""
  if not types:
    return ()
  table = {'sliding_attention': 'sliding', 'full_attention': 'full',
           'sliding': 'sliding', 'full': 'full'}
  out = []
  for t in types:
    if t not in table:
      raise ValueError(f'layer type {t!r} is not supported (known: {sorted(table)})')
    out.append(table[t])
  return tuple(out)
