"""Calling an encoder callback, and the MRL views of its output.

An encoder callback is

    encode(texts: list[str], kind: 'query' | 'document', task: str) -> Float[N, D]

(un-normalised allowed). `encode_texts` calls it once per unique text in chunks
with a progress bar and checks what comes back; `mrl_view` takes the first `dim`
coordinates and re-normalises them (a prefix of a unit vector is not a unit vector),
so one encode serves every requested dimension.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np
from tqdm.auto import tqdm

Kind = Literal['query', 'document']
EncodeFn = Callable[[list[str], Kind, str], np.ndarray]

# texts per encoder call: a progress-bar step, not the model's batch size; large, as an
# encoder pads each call's last batch (a packed one rounds its rows up to batch_size/8)
CHUNK = 2048


def encode_texts(encode: EncodeFn, texts: list[str], kind: Kind, task: str,
                 desc: str = 'encode') -> np.ndarray:
  """Float32[len(texts), D] raw embeddings; each distinct text is encoded once."""
  unique = list(dict.fromkeys(texts))
  position = {text: i for i, text in enumerate(unique)}
  chunks = []
  quiet = True if len(unique) <= CHUNK else None  # None: bars on a TTY only
  with tqdm(total=len(unique), desc=desc, unit='text', disable=quiet,
            leave=False) as bar:
    for start in range(0, len(unique), CHUNK):
      batch = unique[start:start + CHUNK]
      out = np.asarray(encode(batch, kind, task))
      if out.ndim != 2 or out.shape[0] != len(batch):
        raise ValueError(f'{desc}: the encoder returned shape {out.shape} for {len(batch)} texts; '
                         'expected [num_texts, dim]')
      if not np.all(np.isfinite(out)):
        raise ValueError(f'{desc}: the encoder returned NaN or infinite values')
      chunks.append(out.astype(np.float32))
      bar.update(len(batch))
  width = {c.shape[1] for c in chunks}
  if len(width) > 1:
    raise ValueError(f'{desc}: the encoder returned different widths {sorted(width)} across calls')
  unique_embeddings = np.concatenate(chunks)
  return unique_embeddings[[position[t] for t in texts]]


def mrl_view(embeddings: np.ndarray, dim: int) -> np.ndarray:
  """Float32[N, dim]: the first `dim` coordinates, L2-normalised (zero rows stay zero)."""
  prefix = embeddings[:, :dim].astype(np.float32)
  norm = np.linalg.norm(prefix, axis=1, keepdims=True)
  return prefix / np.maximum(norm, 1e-12)


def resolve_dims(requested: list[int] | None, width: int) -> list[int]:
  """The dims to evaluate for an encoder of this width: each requested dim, capped at the
  width (a dim above it is the full embedding); all of it when none are requested."""
  if not requested:
    return [width]
  if any(d <= 0 for d in requested):
    raise ValueError(f'dims must be positive, got {requested}')
  return sorted({min(d, width) for d in requested})
