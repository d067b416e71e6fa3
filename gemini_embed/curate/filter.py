r"""LLM filtering of training pairs: a few-shot quality grade of each (query, positive).

    python -m gemini_embed.curate.filter --llm=SRC --input=TRAIN.jsonl --kept=KEPT.jsonl \
        --rejected=REJECTED.jsonl [--threshold=3] [--prompt=quality] [--nostrict] \
        [--num_shards=N --shard=K]

Each row's score is the expected grade (1–5) of prompts/quality.txt; a row scoring at
least --threshold goes to KEPT, every other row to REJECTED with its reason
(below_threshold, too_long: the prompt does not fit the context, bad_row: ...). Both
files carry `score_quality`: nothing is lost. Resumable, sharded, merged and summarised
as curate/ledger.py describes (KEPT.summary.json, KEPT.scores.png).
"""

from __future__ import annotations

from absl import app, flags

from gemini_embed.curate import cli, ledger, prompts
from gemini_embed.curate.judge import Judge
from gemini_embed.curate.training_rows import missing_text

FLAGS = flags.FLAGS
FIELDS = ('query', 'positive')


def filter_file(judge: Judge, input_path: str, kept: str, rejected: str, *,
                threshold: float = 3.0, prompt: str = 'quality', strict: bool = True,
                max_passage_chars: int = 1000, num_shards: int = 1, shard: int = 0) -> bool:
  """The tool's work; True once every shard is done and KEPT/REJECTED are written."""
  quality = prompts.load(prompt, ('query', 'passage'), graded=True)
  job = ledger.Job(input_path, kept, kept, rejected, problem=lambda r: missing_text(r, FIELDS),
                   strict=strict, num_shards=num_shards, shard=shard, desc='filter')

  def work(window):
    out, todo = [], []
    for index, row in window:
      bad = job.bad_row(row)
      out.append({'index': index, 'results': [bad] if bad else None})
      if not bad:
        todo.append(len(out) - 1)
    before = judge.tokens
    fills = [{'query': window[i][1]['query'],
              'passage': cli.cut(window[i][1]['positive'], max_passage_chars)} for i in todo]
    for i, score in zip(todo, judge.graded(quality, fills)):
      row = window[i][1]
      if score is None:
        res = ledger.result(row, kept=False, reason='too_long: the prompt exceeds the context')
      else:
        res = ledger.result(row, kept=score >= threshold,
                            reason=None if score >= threshold else 'below_threshold',
                            scores={'quality': score})
      out[i]['results'] = [res]
    return out, judge.tokens - before

  return job.run(work, window=judge.batch_size * 4)


def main(argv):
  del argv
  judge, num_shards, shard = cli.setup()
  merged = filter_file(judge, FLAGS.input, FLAGS.kept, FLAGS.rejected,
                       threshold=FLAGS.threshold, prompt=FLAGS.prompt, strict=FLAGS.strict,
                       max_passage_chars=FLAGS.max_passage_chars, num_shards=num_shards,
                       shard=shard)
  print(f'{FLAGS.input} → {FLAGS.kept} + {FLAGS.rejected}' if merged else
        f'{FLAGS.input}: shard {shard} of {num_shards} done; the last shard merges')


if __name__ == '__main__':
  cli.define_flags()
  flags.DEFINE_string('input', None, 'Training rows (query, positive, ...).')
  flags.DEFINE_string('kept', None, 'Rows scoring >= --threshold.')
  flags.DEFINE_string('rejected', None, 'Every other row, with its reason.')
  flags.DEFINE_float('threshold', 3.0, 'Keep rows whose expected grade (1–5) is at least this.')
  flags.DEFINE_string('prompt', 'quality', 'A prompt file, or a name in curate/prompts/.')
  flags.mark_flags_as_required(['input', 'kept', 'rejected'])
  app.run(main)
