"""`config.init_from`: the Embedder a run starts from, placed into its shardings.

    Hugging Face directory (config.json + *.safetensors)  ─┐ the LLM's backbone under this run's
    GGUF model directory (fetch_offline)                  ─┴ policies (+ truncate_layers), and a
                                                             fresh projection head (seeded)
    gemini_embed workdir or soup (model.json + checkpoints/)   every parameter as saved, under
                                                             this run's policies; its architecture
                                                             is final (truncate_layers not applied)

A learned temperature (`log_temperature`, an Embedder Param) follows the run that
starts, not the source: a run that learns τ keeps a source workdir's learned τ and
otherwise starts from its configured τ; a run that does not learn τ drops it.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
from etils import epath
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from gemini_embed import checkpoint
from gemini_embed.models import gguf_import, hf_import, param_import
from gemini_embed.models.embedder import Embedder
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.transformer import Transformer

# TransformerConfig fields a run sets for itself whatever its source: how the model
# computes, not what its parameters are.
POLICY_FIELDS = ('attention_mode', 'attention_impl', 'precision', 'remat', 'scan_unroll')


def classify_source(path: str) -> str:
  """'workdir' (a gemini_embed run or soup, local or gs://), 'hf' (safetensors) or 'gguf'
  (both local: their readers memory-map the files)."""
  directory = epath.Path(path)
  if (directory / checkpoint.MODEL_FILE).exists() and (
      directory / checkpoint.CHECKPOINT_DIR).is_dir():
    return 'workdir'
  if os.path.exists(os.path.join(path, 'config.json')) and (
      os.path.exists(os.path.join(path, 'model.safetensors')) or
      os.path.exists(os.path.join(path, 'model.safetensors.index.json'))):
    return 'hf'
  if gguf_import.is_gguf_model_dir(path):
    return 'gguf'
  raise ValueError(f'config.init_from={path!r}: not a gemini_embed workdir (model.json + '
                   'checkpoints/), a Hugging Face directory (config.json + *.safetensors) or a '
                   'GGUF model directory (see gemini_embed.models.fetch_offline)')


def run_policies(config) -> dict[str, Any]:
  """This run's policy fields (POLICY_FIELDS) from `config.model`."""
  return {f: config.model[f] for f in POLICY_FIELDS}


def truncated(cfg: TransformerConfig, keep: int) -> TransformerConfig:
  """The first `keep` layers of `cfg` (0 = all): `config.truncate_layers`."""
  if not keep:
    return cfg
  try:
    return cfg.with_layers(keep)
  except ValueError as e:
    raise ValueError(f'config.truncate_layers={keep}: {e}') from None


def adapt_backbone(cfg: TransformerConfig, config) -> TransformerConfig:
  """An LLM checkpoint's architecture under this run's policies (attention mode and
  kernel, precision, remat, scan unroll) and optional `config.truncate_layers` (keep the first N layers;
  0 = all)."""
  return truncated(cfg.replace(**run_policies(config)),
                   int(config.get('truncate_layers', 0) or 0))


def load_pretrained(source: str, *, embed_dim: int, mesh, rules, seed: int = 0,
                    policies: Mapping[str, Any] | None = None, truncate_layers: int = 0,
                    temperature: float | None = None) -> tuple[Embedder, TransformerConfig]:
  """(Embedder placed into its shardings, its TransformerConfig) from `source`.

  seed: the projection head of an LLM source is initialised as a fresh run's would be.
  policies: POLICY_FIELDS values of this run (`run_policies(config)`).
  temperature: this run's initial τ if it learns τ (`config.loss.temperature`), else None.
  """
  policies = dict(policies or {})
  kind = classify_source(source)
  if kind == 'workdir':
    return _from_workdir(source, embed_dim, mesh, rules, policies, temperature)
  cfg = source_architecture(source, policies, truncate_layers, kind)
  load = hf_import.load_hf_embedder if kind == 'hf' else gguf_import.load_gguf_embedder
  return load(source, embed_dim, mesh, rules, seed=seed, cfg=cfg, temperature=temperature)


def load_backbone(source: str, *, mesh, rules, policies: Mapping[str, Any] | None = None
                  ) -> tuple[Transformer, TransformerConfig]:
  """The transformer alone (no projection head) from `source`, placed into its
  shardings, under `policies` (the LLM runtime: attention_mode='causal'). A workdir
  gives its trained backbone."""
  policies = dict(policies or {})
  kind = classify_source(source)
  if kind == 'workdir':
    model, _ = checkpoint.restore_embedder(source, mesh=mesh, rules=rules, policies=policies)
    return model.backbone, model.backbone.cfg
  cfg = source_architecture(source, policies, 0, kind)
  tensors = (hf_import.HFCheckpoint(source) if kind == 'hf'
             else gguf_import.GGUFCheckpoint(gguf_import.gguf_file(source)))
  model = param_import.load_embedder(lambda: Transformer(cfg, nnx.Rngs(0)), cfg, tensors, mesh,
                                     rules, prefix=())
  return model, cfg


def source_architecture(source: str, policies: Mapping[str, Any], truncate_layers: int = 0,
                        kind: str | None = None) -> TransformerConfig:
  """The backbone `source` gives (its config only, no weights read), under `policies`;
  truncate_layers applies to LLM sources, a workdir's architecture is final."""
  kind = kind or classify_source(source)
  if kind == 'workdir':
    return checkpoint.read_model_info(source).model.replace(**policies)
  cfg = (hf_import.hf_model_config(source) if kind == 'hf'
         else gguf_import.gguf_model_config(source))
  return truncated(cfg.replace(**policies), truncate_layers)


def init_from_architecture(config) -> TransformerConfig:
  """The backbone `config.init_from` gives a run with `config`."""
  return source_architecture(config.init_from, run_policies(config),
                             int(config.get('truncate_layers', 0) or 0))


def load_init_from(config, mesh, rules) -> tuple[Embedder, TransformerConfig]:
  """`config.init_from` as a run with `config` starts from it: its embed_dim, seed,
  policies, truncate_layers and (if it learns τ) initial temperature."""
  return load_pretrained(
      config.init_from, embed_dim=config.embed_dim, mesh=mesh, rules=rules, seed=config.seed,
      policies=run_policies(config), truncate_layers=int(config.get('truncate_layers', 0) or 0),
      temperature=config.loss.temperature if config.loss.learn_temperature else None)


def _from_workdir(source: str, embed_dim: int, mesh, rules, policies: dict[str, Any],
                  temperature: float | None) -> tuple[Embedder, TransformerConfig]:
  info = checkpoint.read_model_info(source)
  if info.embed_dim != embed_dim:
    raise ValueError(f'config.embed_dim={embed_dim}: init_from={source} was trained with '
                     f'embed_dim={info.embed_dim} (its model.json)')
  model, _ = checkpoint.restore_embedder(source, mesh=mesh, rules=rules, policies=policies)
  learned = hasattr(model, 'log_temperature')
  if temperature is None and learned:
    del model.log_temperature
  elif temperature is not None and not learned:
    # As Embedder.__init__ makes it, replicated over the mesh.
    value = jnp.log(jnp.asarray(temperature, jnp.float32))
    model.log_temperature = nnx.Param(jax.device_put(value, NamedSharding(mesh, P())))
  return model, info.model.replace(**policies)
