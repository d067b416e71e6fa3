"""A tiny embedder workdir per model family, its backbone a tiny random HF model, and
texts in a word-level vocabulary that fits that model."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from flax import nnx

from gemini_embed import checkpoint, sharding
from gemini_embed.models.hf_import import load_hf_embedder
from tests.data.fixtures import word_tokenizer
from tests.models.hf_fixtures import tiny_hf_model
from tests.train_fixtures import load_config

EMBED_DIM = 32
MRL_DIMS = (16, 32)
QUERY_MAX_LEN, DOC_MAX_LEN = 24, 32
WORDS = ('red blue green amber violet grey kettle bridge lantern violin harbour tractor '
         'orchard compass stands near the river is painted which a of and on in at by').split()
PROMPT_WORDS = 'task : | query title none text retrieval sts code clustering . ?'
QUERIES = ['which kettle is red ?', 'the bridge near the river',
           'which violin is painted amber and grey ?', 'a compass']
DOCUMENTS = [
    'the red kettle stands near the river .',
    'a violin is painted amber and grey and stands on the bridge by the harbour .',
    # 30 words: past doc_max_len (32 with the prompt), and far past Gemma's window of 6
    ' '.join(WORDS[i % len(WORDS)] for i in range(30)),
    'compass']


def text_tokenizer():
  lines = [' '.join(WORDS), PROMPT_WORDS] + QUERIES + DOCUMENTS
  return word_tokenizer(lines)


def save_run(workdir: str, model, cfg, tokenizer, *, init_from: str,
             query_max_len: int = QUERY_MAX_LEN, doc_max_len: int = DOC_MAX_LEN,
             learned_temperature: bool = False, embed_dim: int = EMBED_DIM,
             mrl_dims: tuple[int, ...] = MRL_DIMS) -> str:
  """model.json, a params-only checkpoint (step 3), tokenizer.json and config.json: a
  workdir as a soup writes it."""
  checkpoint.write_model_info(workdir, checkpoint.ModelInfo(cfg, embed_dim, mrl_dims,
                                                            learned_temperature))
  params = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model)))
  checkpoint.save_params_only(workdir, params, step=3)
  tokenizer.save(os.path.join(workdir, 'tokenizer.json'))
  config = load_config('prefinetune')
  config.data.query_max_len, config.data.doc_max_len = query_max_len, doc_max_len
  config.data.pack = False
  config.init_from = init_from
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2))
  return workdir


def write_workdir(path: str, family: str, *, temperature: float | None = None) -> str:
  """A workdir whose backbone is a tiny random HF model of `family`, projection random."""
  hf_dir = os.path.join(path, 'hf')
  tiny_hf_model(family).save_pretrained(hf_dir)
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  model, cfg = load_hf_embedder(hf_dir, EMBED_DIM, mesh, sharding.DEFAULT_RULES, seed=3,
                                temperature=temperature)
  tok = text_tokenizer()
  assert tok.get_vocab_size() <= cfg.vocab_size
  return save_run(os.path.join(path, 'run'), model, cfg, tok, init_from=hf_dir,
                  learned_temperature=temperature is not None)


def read_json(path: str):
  with open(path) as f:
    return json.load(f)
