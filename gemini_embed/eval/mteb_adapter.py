"""An encoder callback behind the `mteb` package's encoder protocol (mteb 2.x).

    model = MtebEncoder(encode_fn, name='gemini_embed/ours', embed_dim=3072, dim=768)
    mteb.evaluate(model, tasks, cache=None)

mteb hands batches of {"text": [...]} and a prompt type: "query" → kind 'query',
"document" → kind 'document', none (symmetric tasks: STS, classification, …) →
kind 'query', as our own runners do. The task string is mteb's task type mapped to
design.md's prompt keys (override with `task_strings`, keyed by mteb task name or
type). With `dim`, embeddings are the re-normalised MRL prefix of that size.
mteb is imported lazily: it is an optional dependency.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from gemini_embed.eval.embeddings import EncodeFn, mrl_view

# mteb task type → our task string
MTEB_TASK_STRINGS = {
    'Retrieval': 'retrieval',
    'Reranking': 'reranking',
    'Classification': 'classification',
    'MultilabelClassification': 'classification',
    'Clustering': 'clustering',
    'PairClassification': 'pair_classification',
    'STS': 'sts',
    'Summarization': 'sts',
    'BitextMining': 'bitext',
}


class MtebEncoder:
  """Implements mteb's EncoderProtocol: encode, similarity, similarity_pairwise, mteb_model_meta."""

  def __init__(self, encode: EncodeFn, name: str, embed_dim: int, *, dim: int | None = None,
               revision: str = 'local', task_strings: Mapping[str, str] | None = None):
    # mteb is optional and heavy: imported only when an adapter is built.
    from mteb.models.model_meta import ModelMeta  # noqa: PLC0415

    if '/' not in name:
      raise ValueError(f'mteb model names look like "org/model", got {name!r}')
    self._encode = encode
    self._dim = dim
    self._task_strings = dict(task_strings or {})
    self.mteb_model_meta = ModelMeta(
        loader=None, name=name, revision=revision, release_date=None, languages=None,
        n_parameters=None, memory_usage_mb=None, max_tokens=None,
        embed_dim=dim or embed_dim, license=None, open_weights=None,
        public_training_code=None, public_training_data=None, framework=['JAX'],
        similarity_fn_name='cosine', use_instructions=True, training_datasets=None)

  def task_string(self, task_metadata) -> str:
    return self._task_strings.get(
        task_metadata.name,
        self._task_strings.get(task_metadata.type,
                               MTEB_TASK_STRINGS.get(task_metadata.type, 'retrieval')))

  def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str,
             prompt_type=None, **kwargs: Any) -> np.ndarray:
    kind = 'document' if prompt_type is not None and str(getattr(
        prompt_type, 'value', prompt_type)) == 'document' else 'query'
    task = self.task_string(task_metadata)
    chunks = [np.asarray(self._encode(list(batch['text']), kind, task), np.float32)
              for batch in inputs]
    embeddings = np.concatenate(chunks) if chunks else np.zeros((0, 1), np.float32)
    return mrl_view(embeddings, self._dim or embeddings.shape[1])

  def similarity(self, embeddings1, embeddings2) -> np.ndarray:
    a, b = (mrl_view(np.atleast_2d(np.asarray(e, np.float32)), np.shape(e)[-1])
            for e in (embeddings1, embeddings2))
    return a @ b.T

  def similarity_pairwise(self, embeddings1, embeddings2) -> np.ndarray:
    a, b = (mrl_view(np.atleast_2d(np.asarray(e, np.float32)), np.shape(e)[-1])
            for e in (embeddings1, embeddings2))
    return np.sum(a * b, axis=1)
