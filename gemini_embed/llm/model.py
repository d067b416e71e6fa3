"""`--llm=SRC` → the model, its tokenizer and what decoding needs from its metadata.

    SRC = smollm2 | gemma3-270m   the offline models (models/fetch_offline.py; fetched
                                  into their default directory on first use)
        | a GGUF model directory  gguf_model.json + .gguf + tokenizer.json
        | a Hugging Face directory  config.json + *.safetensors + tokenizer.json
        | a gemini_embed workdir  its trained backbone (tied embeddings as logits)

The weights come through the project's one loader (models/pretrained.load_backbone)
in causal mode, placed into the mesh's shardings. End-of-sequence ids, the chat
template and the context length come from the GGUF metadata or the HF
config/tokenizer_config/generation_config files.
"""

from __future__ import annotations

import dataclasses
import json
import os

from tokenizers import Tokenizer

from gemini_embed.models import fetch_offline, gguf_import, pretrained
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.models.transformer import Transformer

# How the runtime computes (models/pretrained.POLICY_FIELDS).
POLICIES = dict(attention_mode='causal', remat='none')


@dataclasses.dataclass
class LLM:
  model: Transformer
  cfg: TransformerConfig
  tokenizer: Tokenizer
  eos_ids: tuple[int, ...]        # generation stops at any of them
  pad_id: int
  bos: str | None                 # strings a chat template may use
  eos: str | None
  chat_template: str | None       # Jinja (HF convention), None if the source has none
  context_length: int             # prompt + generated tokens must fit
  source: str


def resolve_source(src: str) -> str:
  """An offline model's name → its model directory (fetched if missing); else `src`."""
  if src in fetch_offline.MODELS and not os.path.exists(src):
    directory = fetch_offline.default_model_dir(src)
    if not os.path.exists(os.path.join(directory, gguf_import.MODEL_JSON)):
      directory = fetch_offline.fetch(src, directory)
    return directory
  if not os.path.isdir(src):
    raise FileNotFoundError(f'--llm={src!r}: not one of {sorted(fetch_offline.MODELS)} nor a '
                            'model directory (GGUF, Hugging Face or gemini_embed workdir)')
  return src


def load_llm(src: str, mesh, rules, precision: str | None = None) -> LLM:
  """The LLM named by `src` on `mesh` (`precision`: a models/precision.py policy string)."""
  directory = resolve_source(src)
  policies = dict(POLICIES, **({'precision': precision} if precision else {}))
  model, cfg = pretrained.load_backbone(directory, mesh=mesh, rules=rules, policies=policies)
  tok_path = os.path.join(directory, 'tokenizer.json')
  if not os.path.exists(tok_path):
    raise FileNotFoundError(f'--llm={src}: {tok_path} is missing; the runtime needs the '
                            "model's tokenizer.json")
  tokenizer = Tokenizer.from_file(tok_path)
  kind = pretrained.classify_source(directory)
  meta = _gguf_metadata(directory) if kind == 'gguf' else _hf_metadata(directory)
  return LLM(model=model, cfg=cfg, tokenizer=tokenizer, source=src, **meta)


def _gguf_metadata(directory: str) -> dict:
  ckpt = gguf_import.GGUFCheckpoint(gguf_import.gguf_file(directory))
  special = gguf_import.read_manifest(directory)['special_tokens'] if os.path.exists(
      os.path.join(directory, gguf_import.MODEL_JSON)) else {}
  eos = [special.get('eos_id'), ckpt.metadata('tokenizer.ggml.eot_token_id')]
  arch = ckpt.metadata('general.architecture')
  eos_ids = tuple(sorted({int(i) for i in eos if i is not None}))
  return dict(eos_ids=eos_ids, pad_id=_first(special.get('pad_id'), *eos_ids, 0),
              bos=special.get('bos'), eos=special.get('eos'),
              chat_template=ckpt.metadata('tokenizer.chat_template'),
              context_length=int(ckpt.metadata(f'{arch}.context_length', 0) or 0) or 1 << 30)


def _hf_metadata(directory: str) -> dict:
  config = _json(directory, 'config.json')
  config = config.get('text_config', config)
  generation = _json(directory, 'generation_config.json')
  tok_config = _json(directory, 'tokenizer_config.json')
  eos = generation.get('eos_token_id', config.get('eos_token_id'))
  eos_ids = tuple(sorted({int(i) for i in (eos if isinstance(eos, list) else [eos])
                          if i is not None}))
  template = tok_config.get('chat_template')
  jinja = os.path.join(directory, 'chat_template.jinja')
  if template is None and os.path.exists(jinja):
    with open(jinja) as f:
      template = f.read()
  return dict(eos_ids=eos_ids,
              pad_id=_first(generation.get('pad_token_id'), config.get('pad_token_id'),
                            *eos_ids, 0),
              bos=_token_text(tok_config.get('bos_token')),
              eos=_token_text(tok_config.get('eos_token')), chat_template=template,
              context_length=int(config.get('max_position_embeddings') or 1 << 30))


def _json(directory: str, name: str) -> dict:
  path = os.path.join(directory, name)
  if not os.path.exists(path):
    return {}
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f'{path}: not valid JSON ({e})') from None


def _token_text(token) -> str | None:
  return token.get('content') if isinstance(token, dict) else token


def _first(*values) -> int:
  return next(int(v) for v in values if v is not None)
