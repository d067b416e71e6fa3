"""A trained run or soup → a sentence-transformers / Hugging Face model directory.

    python -m gemini_embed.export --workdir=DIR[:STEP] --output=OUT \
        [--format=sentence-transformers|hf] [--dtype=float32|bfloat16] [--push_to_hub=NAME]

    OUT/model.safetensors, config.json     the backbone as a transformers base model
                                           (models/hf_export.py; Llama/Qwen: + remote code)
    OUT/tokenizer.json, tokenizer_config.json   with `encode`'s BOS/EOS (tokenizer_files.py)
    OUT/modules.json, 1_Pooling/, 2_Dense/, 3_Normalize/, config_sentence_transformers.json,
        sentence_bert_config.json          sentence-transformers only (st_files.py)
    OUT/README.md                          the model card (model_card.py)

`--format=hf` writes the base model and tokenizer only (`AutoModel`: hidden states,
to pool and project yourself: OUT/projection.safetensors holds the head). A learned
temperature is dropped (it scales the loss, not the embedding); soups export like runs.
"""

from __future__ import annotations

import json
import os
import tempfile

import jax
import ml_collections
import numpy as np
from etils import epath
from flax import nnx

from gemini_embed import checkpoint, storage
from gemini_embed.export.model_card import model_card
from gemini_embed.export.st_files import prompts, write_st_files
from gemini_embed.export.tokenizer_files import write_tokenizer
from gemini_embed.models import hf_export
from gemini_embed.models.safetensors_writer import write_safetensors
from gemini_embed.models.tokenizer import TOKENIZER_FILE, read_tokenizer

FORMATS = ('sentence-transformers', 'hf')
DTYPES = {'float32': np.float32, 'bfloat16': jax.numpy.bfloat16}


def parse_workdir(arg: str) -> tuple[str, int | None]:
  """'DIR' or 'DIR:STEP' (a colon followed by digits; gs:// paths keep theirs)."""
  head, sep, tail = arg.rpartition(':')
  if sep and tail.isdigit():
    return head, int(tail)
  return arg, None


def base_llm(run_config, limit: int = 8) -> str:
  """The LLM a run started from: `init_from` followed through workdirs (a fine-tune's
  pre-finetuning run, …) to the HF/GGUF directory, with the layers the run kept."""
  source, config = run_config.get('init_from') or '', run_config
  for _ in range(limit):
    path = epath.Path(source) / 'config.json' if source else None
    if not (path and path.exists() and (epath.Path(source) / 'model.json').exists()):
      break
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
    source = config.get('init_from') or ''
  if not source:
    return 'a randomly initialised backbone'
  layers = config.get('truncate_layers') or 0
  return f'{source} (its first {layers} layers)' if layers else source


def export(workdir: str, output: str, step: int | None = None, *,
           fmt: str = 'sentence-transformers', dtype: str = 'float32') -> dict:
  """Writes OUT (see the module doc); returns a summary (step, family, dims, files). A
  gs:// OUT is written to a local folder first, then uploaded file by file."""
  if fmt not in FORMATS:
    raise ValueError(f'--format={fmt!r}: use one of {FORMATS}')
  if dtype not in DTYPES:
    raise ValueError(f'--dtype={dtype!r}: use one of {sorted(DTYPES)}')
  np_dtype = np.dtype(DTYPES[dtype])
  run_config = ml_collections.ConfigDict(
      json.loads((epath.Path(workdir) / 'config.json').read_text()))
  if storage.is_remote(output):
    storage.check_writable(output, '--output')
    with tempfile.TemporaryDirectory(prefix='gemini_embed-export-') as local:
      summary = export(workdir, local, step, fmt=fmt, dtype=dtype)
      storage.upload_dir(local, output)
    return summary
  info = checkpoint.read_model_info(workdir)
  model, step = checkpoint.restore_embedder(workdir, step)  # host arrays, one CPU device
  params = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model)))
  cfg = info.model
  data = run_config.data
  max_len = max(int(data.query_max_len), int(data.doc_max_len))
  os.makedirs(output, exist_ok=True)

  remote = hf_export.needs_remote_code(cfg)
  tokenizer = read_tokenizer(epath.Path(workdir) / TOKENIZER_FILE)
  special = write_tokenizer(tokenizer, cfg.family, data, output, max_len,
                            hf_export.REMOTE_TOKENIZER if remote else None)
  write_safetensors(os.path.join(output, 'model.safetensors'),
                    hf_export.hf_tensors(params['backbone'], cfg, np_dtype))
  config = hf_export.hf_config(cfg, dtype=dtype, max_positions=max(max_len, 2048),
                               special_ids=special)
  with open(os.path.join(output, 'config.json'), 'w') as f:
    json.dump(config, f, indent=2)
  if remote:
    hf_export.write_remote_code(output)

  tasks = sorted({str(e.task) for e in run_config.data.datasets.values()})
  if fmt == 'sentence-transformers':
    write_st_files(output, params['projection'], max_seq_length=max_len, extra_tasks=tasks,
                   dtype=np_dtype)
  else:
    write_safetensors(os.path.join(output, 'projection.safetensors'),
                      {'projection': np.ascontiguousarray(params['projection'].astype(np_dtype))})
  card = model_card(
      workdir=workdir, step=step, family=cfg.family,
      base=base_llm(run_config),
      embed_dim=info.embed_dim, mrl_dims=info.mrl_dims, max_seq_length=max_len,
      query_max_len=int(data.query_max_len), doc_max_len=int(data.doc_max_len),
      prompts=prompts(tasks), remote_code=remote, dtype=dtype)
  with open(os.path.join(output, 'README.md'), 'w') as f:
    f.write(card)
  return dict(step=step, family=cfg.family, embed_dim=info.embed_dim,
              mrl_dims=list(info.mrl_dims), remote_code=remote, max_seq_length=max_len,
              files=sorted(os.listdir(output)))


def push_to_hub(output: str, repo_id: str) -> None:
  """Uploads OUT to the Hub (needs network and a token; not tested offline)."""
  from huggingface_hub import HfApi  # noqa: PLC0415
  api = HfApi()
  api.create_repo(repo_id, exist_ok=True)
  api.upload_folder(folder_path=output, repo_id=repo_id)
