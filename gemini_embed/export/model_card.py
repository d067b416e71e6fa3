"""README.md of an export: what the model is and how to load it, with its dev scores."""

from __future__ import annotations

import json

from gemini_embed import storage


def _score(x) -> str:
  return '–' if x is None else f'{100 * x:.2f}'


def dev_scores(workdir: str) -> str | None:
  """A markdown table of results.json's aggregates for this model (its rows are those whose
  `model` is the workdir's name; all rows when none is), from the workdir's results.json,
  else its parent's (`make demo` writes DIR/results.json beside DIR/soup/)."""
  directory = storage.as_path(workdir)
  name = directory.name
  for path in (directory / 'results.json', directory.parent / 'results.json'):
    if not path.exists():
      continue
    results = json.loads(path.read_text())
    aggregates = results.get('aggregates', {})
    systems = results.get('systems', {})
    mine = [label for label in aggregates if systems.get(label, {}).get('model') == name]
    rows = [f'| {label} | {_score(aggregates[label].get("mean_task"))} | '
            f'{_score(aggregates[label].get("mean_type"))} |' for label in (mine or aggregates)]
    if rows:
      return (f'Dev-suite scores (×100) from `{path}` (suite `{results.get("suite", "?")}`):\n\n'
              '| system@dim | mean (task) | mean (type) |\n|---|---:|---:|\n' + '\n'.join(rows))
  return None


def model_card(*, workdir: str, step: int, family: str, base: str, embed_dim: int,
               mrl_dims, max_seq_length: int, query_max_len: int, doc_max_len: int,
               prompts: dict[str, str], remote_code: bool, dtype: str) -> str:
  trust = ', trust_remote_code=True' if remote_code else ''
  dim = min(mrl_dims) if mrl_dims else embed_dim
  lines = [
      '---', 'library_name: sentence-transformers', 'pipeline_tag: sentence-similarity',
      'tags: [sentence-transformers, feature-extraction, gemini_embed]', '---', '',
      f'# gemini_embed embedder ({family})', '',
      f'Exported by `python -m gemini_embed.export` from `{workdir}` (step {step}), {dtype}.',
      f'Base LLM: {base} ({family} architecture), made bidirectional, mean-pooled, projected '
      f'to {embed_dim} dimensions, trained with NCE under a Matryoshka (MRL) head.', '',
      '## Use', '', '```python', 'from sentence_transformers import SentenceTransformer',
      f"model = SentenceTransformer('PATH'{trust})",
      "q = model.encode_query(['how do I reverse a list?'])   # prompt 'query'",
      "d = model.encode_document(['list.reverse() reverses in place.'])",
      "# another task's prompt: model.encode(texts, prompt_name='sts')",
      f"small = SentenceTransformer('PATH'{trust}, truncate_dim={dim})",
      "e = small.encode_query(texts, normalize_embeddings=True)", '```', '',
      f'**Matryoshka dims** {list(mrl_dims)} (full: {embed_dim}). sentence-transformers '
      'truncates *after* its Normalize module without re-normalising, so pass '
      '`normalize_embeddings=True` with `truncate_dim` (what gemini_embed\'s `encode --dim` '
      'returns: the prefix, re-normalised).', '',
      f'**Lengths**: gemini_embed truncates queries at {query_max_len} and documents at '
      f'{doc_max_len} tokens (prompt and special tokens included); sentence-transformers has '
      f'one `max_seq_length`, set to the larger ({max_seq_length}). Documents match exactly; '
      f'a query longer than {query_max_len} tokens keeps more of its text here.', '',
  ]
  if remote_code:
    lines += ['**Custom code**: transformers has no bidirectional switch for this family; '
              '`modeling_bidirectional.py` (a subclass of the stock base model that replaces '
              'the causal mask with a padding mask) is loaded with `trust_remote_code=True`.', '']
  else:
    lines += ['**No custom code**: Gemma 3 runs bidirectionally through transformers\' '
              '`use_bidirectional_attention` (config.json); its sliding layers attend within '
              '|i - j| <= window // 2, as in training.', '']
  lines += ['## Prompts', '', '| name | prompt |', '|---|---|']
  lines += [f'| {name} | `{prompt}` |'.replace(' | query', ' \\| query').replace(' | text', ' \\| text')
            for name, prompt in prompts.items()]
  scores = dev_scores(workdir)
  if scores:
    lines += ['', '## Scores', '', scores]
  return '\n'.join(lines) + '\n'
