"""sentence-transformers' files around an exported base model.

    modules.json   0 Transformer (the directory itself) → 1_Pooling (mean over real
                   tokens, prompt included, as `encode` pools) → 2_Dense (our projection:
                   no bias, identity activation; ST's defaults are Tanh with a bias)
                   → 3_Normalize
    config_sentence_transformers.json   prompts: 'query' and each task string →
                   `encode`'s query prompt, 'document' → its document prompt, and mteb's
                   task-type keys (Retrieval-query, STS, …) as `evaluate` maps them
    sentence_bert_config.json           max_seq_length (see `max_seq_length`)
"""

from __future__ import annotations

import json
import os

import numpy as np

from gemini_embed.data.spec import DOC_TEMPLATE, QUERY_TEMPLATE
from gemini_embed.eval.mteb_adapter import MTEB_TASK_STRINGS
from gemini_embed.models.safetensors_writer import write_safetensors

# design.md's task strings, the prompts `evaluate` uses per task type.
TASK_STRINGS = ('retrieval', 'code retrieval', 'reranking', 'classification', 'clustering',
                'pair_classification', 'sts', 'bitext')
_DOCUMENT_SIDE = ('Retrieval', 'Reranking')  # mteb types with a document side
_ST_VERSION = '6.2.0'


def prompt_prefix(template: str, **fields: str) -> str:
  """'task: {task} | query: {text}' → 'task: retrieval | query: ' (ST prepends prompts)."""
  if not template.endswith('{text}') or template.count('{text}') != 1:
    raise ValueError(f'template {template!r}: sentence-transformers prompts are prefixes, '
                     'so {text} must come last, once')
  return template[:-len('{text}')].format(**fields)


def prompts(extra_tasks=()) -> dict[str, str]:
  """ST prompt name → prompt, the same strings `encode` puts around a text."""
  query = lambda task: prompt_prefix(QUERY_TEMPLATE, task=task)
  document = prompt_prefix(DOC_TEMPLATE, title='none')
  out = {'query': query('retrieval'), 'document': document}
  for task in dict.fromkeys((*TASK_STRINGS, *extra_tasks)):
    out[task] = query(task)
  for mteb_type, task in MTEB_TASK_STRINGS.items():
    if mteb_type in _DOCUMENT_SIDE:
      out[f'{mteb_type}-query'] = query(task)
      out[f'{mteb_type}-document'] = document
    else:
      out[mteb_type] = query(task)
  return out


def _json(path: str, value) -> None:
  with open(path, 'w') as f:
    json.dump(value, f, indent=2)


def write_st_files(directory: str, projection: np.ndarray, *, max_seq_length: int,
                   extra_tasks=(), dtype=np.float32) -> None:
  """projection: ours, [width, embed_dim] (ST's Dense weight is its transpose)."""
  width, embed_dim = projection.shape
  names = [('0', '', 'sentence_transformers.base.modules.transformer.Transformer'),
           ('1', '1_Pooling', 'sentence_transformers.sentence_transformer.modules.pooling.Pooling'),
           ('2', '2_Dense', 'sentence_transformers.base.modules.dense.Dense'),
           ('3', '3_Normalize', 'sentence_transformers.base.modules.normalize.Normalize')]
  _json(os.path.join(directory, 'modules.json'),
        [dict(idx=i, name=n, path=p, type=t) for i, (n, p, t) in enumerate(names)])
  for _, path, _ in names[1:]:
    os.makedirs(os.path.join(directory, path), exist_ok=True)
  _json(os.path.join(directory, '1_Pooling', 'config.json'),
        dict(embedding_dimension=width, pooling_mode='mean', include_prompt=True))
  _json(os.path.join(directory, '2_Dense', 'config.json'),
        dict(in_features=width, out_features=embed_dim, bias=False,
             activation_function='torch.nn.modules.linear.Identity',
             module_input_name='sentence_embedding', module_output_name='sentence_embedding'))
  write_safetensors(os.path.join(directory, '2_Dense', 'model.safetensors'),
                    {'linear.weight': np.ascontiguousarray(np.asarray(projection).T.astype(dtype))})
  _json(os.path.join(directory, '3_Normalize', 'config.json'),
        dict(module_input_name='sentence_embedding', module_output_name='sentence_embedding'))
  _json(os.path.join(directory, 'sentence_bert_config.json'),
        dict(max_seq_length=max_seq_length, transformer_task='feature-extraction',
             modality_config={'text': {'method': 'forward',
                                       'method_output_name': 'last_hidden_state'}},
             module_output_name='token_embeddings'))
  _json(os.path.join(directory, 'config_sentence_transformers.json'),
        dict(__version__={'sentence_transformers': _ST_VERSION}, model_type='SentenceTransformer',
             prompts=prompts(extra_tasks), default_prompt_name=None, similarity_fn_name='cosine'))
