r"""Score continuations and options with an LLM:

    python -m gemini_embed.llm.score --llm=SRC --input=ROWS.jsonl --output=OUT.jsonl [--chat] \
        [--batch_size=8] [--num_shards=N --shard=K] [--mesh=data:-1]

Rows {"prompt", "continuation"} → + {"logprob": Σ log p of the continuation's tokens,
"num_tokens"} (their mean is logprob / num_tokens); rows {"prompt", "options": [str,
...]} → + {"probs": [...]} (softmax over the options' summed log p, in their order).
A row too long for the context gets {"error": "..."}. Resumable and shardable as
`generate` (llm/jobs.py).
"""

from __future__ import annotations

import numpy as np
from absl import app, flags, logging

from gemini_embed.llm import cli, jobs
from gemini_embed.llm.chat import prompt_ids
from gemini_embed.llm.model import LLM
from gemini_embed.llm.scoring import Scorer, probabilities


def check_row(row: jobs.Row) -> None:
  if not isinstance(row.get('prompt'), str):
    raise ValueError('needs a "prompt" string field')
  has_cont, has_opts = 'continuation' in row, 'options' in row
  if has_cont == has_opts:
    raise ValueError('needs exactly one of "continuation" (a string) and "options" (a list '
                     'of strings)')
  if has_cont and not isinstance(row['continuation'], str):
    raise ValueError('"continuation" must be a string')
  if has_opts and (not isinstance(row['options'], list) or not row['options'] or
                   not all(isinstance(o, str) for o in row['options'])):
    raise ValueError('"options" must be a non-empty list of strings')


def score_file(llm: LLM, mesh, rules, input_path: str, output: str, *, chat: bool = False,
               batch_size: int = 8, num_shards: int = 1, shard: int = 0,
               scorer: Scorer | None = None) -> str:
  """The tool's work (the CLI is a thin wrapper); returns the output path written."""
  scorer = scorer or Scorer(llm, mesh, rules, batch_size=batch_size)
  encode = lambda text: llm.tokenizer.encode(text, add_special_tokens=False).ids

  def process(window):
    out = [dict(row) for _, row in window]
    pairs, owners = [], []
    for i, (index, row) in enumerate(window):
      context = prompt_ids(llm, row['prompt'], chat)
      targets = [encode(row['continuation'])] if 'continuation' in row else [
          encode(o) for o in row['options']]
      try:
        for t in targets:
          scorer.check(context, t)
      except ValueError as e:
        out[i]['error'] = str(e)
        logging.warning('input row %d: %s', index, e)
        continue
      pairs += [(context, t) for t in targets]
      owners += [i] * len(targets)
    logps = scorer.token_logprobs(pairs) if pairs else []
    per_row: dict[int, list[np.ndarray]] = {}
    for i, lp in zip(owners, logps):
      per_row.setdefault(i, []).append(lp)
    for i, lps in per_row.items():
      if 'continuation' in out[i]:
        out[i]['logprob'], out[i]['num_tokens'] = float(lps[0].sum()), len(lps[0])
      else:
        out[i]['probs'] = [float(x) for x in probabilities(lps)]
    return out, sum(len(c) + len(t) for c, t in pairs)

  return jobs.run(input_path, output, check=check_row, process=process,
                  window=scorer.batch_size * 4, num_shards=num_shards, shard=shard,
                  desc='score')


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  jobs.read_rows(FLAGS.input, check_row)   # bad rows fail before the model loads
  llm, mesh, rules, num_shards, shard = cli.setup()
  path = score_file(llm, mesh, rules, FLAGS.input, FLAGS.output, chat=FLAGS.chat,
                    batch_size=FLAGS.batch_size, num_shards=num_shards, shard=shard)
  print(f'{FLAGS.input} → {path}')


if __name__ == '__main__':
  cli.define_flags()
  app.run(main)
