"""Named backbone shapes. Real checkpoints bring their own config (`init_from`);
these presets size fresh inits, tests, and pod-scale sharding checks."""

from __future__ import annotations

import ml_collections

from gemini_embed.models.model_config import TransformerConfig, sliding_pattern

PRESETS: dict[str, dict] = {
    # Tests and tiny modes: a few ms per step on CPU.
    'tiny': dict(family='llama', vocab_size=512, num_layers=2, width=64, num_heads=4,
                 num_kv_heads=2, head_dim=16, mlp_dim=128),
    'tiny-gemma3': dict(family='gemma3', vocab_size=512, num_layers=3, width=64, num_heads=4,
                        num_kv_heads=1, head_dim=16, mlp_dim=128, qk_norm=True,
                        sliding_window=8, layer_types=sliding_pattern(3, 3),
                        rope_base=1_000_000.0, query_pre_attn_scalar=16),
    # The two LLMs that install offline (weights come from their GGUF files).
    'smollm2-135m': dict(family='llama', vocab_size=49152, num_layers=30, width=576, num_heads=9,
                         num_kv_heads=3, head_dim=64, mlp_dim=1536, norm_eps=1e-5,
                         rope_base=100_000.0, rope_local_base=100_000.0),
    'gemma3-270m': dict(family='gemma3', vocab_size=262144, num_layers=18, width=640, num_heads=4,
                        num_kv_heads=1, head_dim=256, mlp_dim=2048, qk_norm=True,
                        sliding_window=512, layer_types=sliding_pattern(18, 6),
                        rope_base=1_000_000.0, query_pre_attn_scalar=256),
    # Gemma-3-class backbones for pod runs.
    'gemma3-1b': dict(family='gemma3', vocab_size=262144, num_layers=26, width=1152, num_heads=4,
                      num_kv_heads=1, head_dim=256, mlp_dim=6912, qk_norm=True,
                      sliding_window=512, layer_types=sliding_pattern(26, 6),
                      rope_base=1_000_000.0, query_pre_attn_scalar=256),
    'gemma3-4b': dict(family='gemma3', vocab_size=262208, num_layers=34, width=2560, num_heads=8,
                      num_kv_heads=4, head_dim=256, mlp_dim=10240, qk_norm=True,
                      sliding_window=1024, layer_types=sliding_pattern(34, 6),
                      rope_base=1_000_000.0, rope_scaling='linear', rope_scaling_factor=8.0,
                      query_pre_attn_scalar=256),
    'gemma3-12b': dict(family='gemma3', vocab_size=262208, num_layers=48, width=3840, num_heads=16,
                       num_kv_heads=8, head_dim=256, mlp_dim=15360, qk_norm=True,
                       sliding_window=1024, layer_types=sliding_pattern(48, 6),
                       rope_base=1_000_000.0, rope_scaling='linear', rope_scaling_factor=8.0,
                       query_pre_attn_scalar=256),
}


def model_config(name: str, **overrides) -> ml_collections.ConfigDict:
  """The preset as a ConfigDict (the `config.model` of an experiment config)."""
  if name not in PRESETS:
    raise ValueError(f'unknown model preset {name!r}; known: {sorted(PRESETS)}')
  fields = TransformerConfig(**{**PRESETS[name], **overrides}).to_dict()
  return ml_collections.ConfigDict(fields)
