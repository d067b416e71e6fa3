r"""Generate completions of prompts with an LLM:

    python -m gemini_embed.llm.generate --llm=SRC --input=PROMPTS.jsonl --output=OUT.jsonl \
        [--chat] [--max_new_tokens=64] [--temperature=0] [--top_p=1] [--top_k=0] [--seed=0] \
        [--batch_size=8] [--stop=STRING ...] [--num_shards=N --shard=K] [--mesh=data:-1]

Rows {"prompt": str, ...} → the same rows plus {"completion": str, "finish_reason":
"stop" | "length"}, in input order. A prompt whose tokens + max_new_tokens exceed the
model's context gets {"error": "..."} instead (never truncated). Temperature 0 is
greedy; otherwise row r (its index in the input) samples with fold_in(seed, r), so
its completion does not depend on its batch or on a resume. A rerun appends to
OUTPUT from where it stopped (llm/jobs.py); the result is the uninterrupted run's.
"""

from __future__ import annotations

from typing import Sequence

from absl import app, flags, logging

from gemini_embed.llm import cli, jobs
from gemini_embed.llm.chat import prompt_ids
from gemini_embed.llm.decode import Generator
from gemini_embed.llm.model import LLM
from gemini_embed.llm.sampling import Sampling

FLAGS = flags.FLAGS


def define_flags() -> None:
  cli.define_flags()
  flags.DEFINE_integer('max_new_tokens', 64, 'Tokens to generate at most per row.')
  flags.DEFINE_float('temperature', 0.0, '0 = greedy.')
  flags.DEFINE_float('top_p', 1.0, 'Nucleus sampling mass (1 = off).')
  flags.DEFINE_integer('top_k', 0, 'Keep the k most likely tokens (0 = off).')
  flags.DEFINE_integer('seed', 0, 'Sampling seed.')
  flags.DEFINE_multi_string('stop', [], 'Stop when the completion contains this string (cut '
                            'before it; repeatable).')


def check_row(row: jobs.Row) -> None:
  if not isinstance(row.get('prompt'), str):
    raise ValueError('needs a "prompt" string field')


def generate_file(llm: LLM, mesh, rules, input_path: str, output: str, *, chat: bool = False,
                  max_new_tokens: int = 64, params: Sampling = Sampling(),
                  stop: Sequence[str] = (), batch_size: int = 8, num_shards: int = 1,
                  shard: int = 0, generator: Generator | None = None) -> str:
  """The tool's work (the CLI is a thin wrapper); returns the output path written."""
  gen = generator or Generator(llm, mesh, rules, batch_size=batch_size)

  def process(window):
    ids = [prompt_ids(llm, row['prompt'], chat) for _, row in window]
    out: list[jobs.Row] = [dict(row) for _, row in window]
    fits = []
    for i, p in enumerate(ids):
      if len(p) + max_new_tokens > llm.context_length:
        out[i]['error'] = (f'the prompt is {len(p)} tokens; with max_new_tokens='
                           f'{max_new_tokens} it exceeds the context of '
                           f'{llm.context_length} tokens')
        logging.warning('input row %d: %s', window[i][0], out[i]['error'])
      elif not p:
        out[i]['error'] = 'the prompt has no tokens'
      else:
        fits.append(i)
    fits.sort(key=lambda i: len(ids[i]))   # similar lengths share a bucket
    done = gen.generate([ids[i] for i in fits], [window[i][0] for i in fits],
                        max_new_tokens=max_new_tokens, params=params, stop=stop)
    tokens = 0
    for i, c in zip(fits, done):
      out[i]['completion'], out[i]['finish_reason'] = c.text, c.finish_reason
      tokens += len(c.tokens)
    return out, tokens

  return jobs.run(input_path, output, check=check_row, process=process,
                  window=gen.batch_size * 4, num_shards=num_shards, shard=shard,
                  desc='generate')


def main(argv):
  del argv
  params = Sampling(temperature=FLAGS.temperature, top_k=FLAGS.top_k, top_p=FLAGS.top_p,
                    seed=FLAGS.seed)
  jobs.read_rows(FLAGS.input, check_row)   # bad rows fail before the model loads
  llm, mesh, rules, num_shards, shard = cli.setup()
  path = generate_file(llm, mesh, rules, FLAGS.input, FLAGS.output, chat=FLAGS.chat,
                       max_new_tokens=FLAGS.max_new_tokens, params=params, stop=FLAGS.stop,
                       batch_size=FLAGS.batch_size, num_shards=num_shards, shard=shard)
  print(f'{FLAGS.input} → {path}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
