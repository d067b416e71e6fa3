"""Import a Hugging Face safetensors checkpoint (Gemma 3 text, Llama, Qwen2/3)
into a sharded Embedder: config from config.json, tensors streamed one by one."""

from __future__ import annotations

from typing import Any

from flax import nnx

from gemini_embed.models.embedder import Embedder
from gemini_embed.models.hf_config import model_config_from_hf, read_hf_config
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.param_import import load_embedder
from gemini_embed.models.safetensors_reader import SafetensorsCheckpoint

# Where the decoder sits inside the saved model, outermost first.
_PREFIXES = ('model.language_model.', 'language_model.model.', 'model.', '')


class HFCheckpoint:
  """A safetensors checkpoint seen through canonical `model.`-prefixed names."""

  def __init__(self, directory: str):
    self.description = directory
    self.file = SafetensorsCheckpoint(directory)
    for prefix in _PREFIXES:
      if prefix + 'embed_tokens.weight' in self.file:
        self.prefix = prefix
        break
    else:
      raise ValueError(f'{directory}: no embed_tokens.weight under any known prefix {_PREFIXES}; '
                       'is this a decoder LLM checkpoint?')

  def _theirs(self, name: str) -> str:
    if name.startswith('model.'):
      return self.prefix + name[len('model.'):]
    return name

  def names(self) -> list[str]:
    ours = []
    for n in self.file.names():
      ours.append('model.' + n[len(self.prefix):] if n.startswith(self.prefix) and self.prefix else
                  n if self.prefix else 'model.' + n)
    return ours

  def tensor(self, name: str):
    return self.file.get(self._theirs(name))


def hf_model_config(directory: str, **overrides: Any) -> TransformerConfig:
  cfg = model_config_from_hf(read_hf_config(directory), f'{directory}/config.json')
  return cfg.replace(**overrides) if overrides else cfg


def load_hf_embedder(directory: str, embed_dim: int, mesh, rules, *, seed: int = 0,
                     cfg: TransformerConfig | None = None, temperature: float | None = None,
                     **overrides: Any) -> tuple[Embedder, TransformerConfig]:
  """cfg: the checkpoint's config, possibly adjusted (e.g. `with_layers`), default read
  from config.json; temperature: the initial τ of a learned `log_temperature` (None: none);
  overrides: fields to change (attention_mode, precision, remat, …)."""
  cfg = cfg or hf_model_config(directory)
  cfg = cfg.replace(**overrides) if overrides else cfg
  source = HFCheckpoint(directory)
  model = load_embedder(lambda: Embedder(cfg, embed_dim, nnx.Rngs(seed), temperature=temperature),
                        cfg, source, mesh, rules)
  return model, cfg
