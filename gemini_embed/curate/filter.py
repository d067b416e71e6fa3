r"""LLM filtering of training pairs: a few-shot quality grade of each (query, positive).

    python -m gemini_embed.curate.filter --llm=SRC --input=TRAIN.jsonl --kept=KEPT.jsonl \
        --rejected=REJECTED.jsonl [--threshold=3 | --threshold=q0.2] [--prompt=quality] \
        [--nostrict] [--num_shards=N --shard=K]

Each row's score is the expected grade (1–5) of prompts/quality.txt; a row scoring at
least --threshold goes to KEPT, every other row to REJECTED with its reason
(below_threshold, too_long: the prompt does not fit the context, bad_row: ...).
--threshold=q0.2 rejects the lowest 20% of the run's grades instead (curate/threshold.py:
the cut is taken at the merge, over every shard's grades). Both files carry
`score_quality`: nothing is lost. Resumable, sharded, merged and summarised
as curate/ledger.py describes (KEPT.summary.json, KEPT.scores.png).
"""

from __future__ import annotations

from absl import app, flags

from gemini_embed.curate import cli, ledger, prompts
from gemini_embed.curate.judge import Judge
from gemini_embed.curate.threshold import ScoreCut, Threshold, parse
from gemini_embed.curate.training_rows import missing_text

FLAGS = flags.FLAGS
FIELDS = ('query', 'positive')


def filter_file(judge: Judge, input_path: str, kept: str, rejected: str, *,
                threshold: float | str | Threshold = 3.0, prompt: str = 'quality',
                strict: bool = True, max_passage_chars: int = 1000, num_shards: int = 1,
                shard: int = 0) -> bool:
  """The tool's work; True once every shard is done and KEPT/REJECTED are written.
  threshold: a grade (3) or a quantile of the run's grades ('q0.2'), as threshold.parse."""
  cut = ScoreCut('quality', parse(threshold, '--threshold'), 'below_threshold')
  quality = prompts.load(prompt, ('query', 'passage'), graded=True)
  job = ledger.Job(input_path, kept, kept, rejected, problem=lambda r: missing_text(r, FIELDS),
                   strict=strict, num_shards=num_shards, shard=shard, desc='filter', cut=cut)

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
      else:   # the merge applies the threshold
        res = ledger.result(row, kept=True, scores={'quality': score})
      out[i]['results'] = [res]
    return out, judge.tokens - before

  return job.run(work, window=judge.batch_size * 4)


def main(argv):
  del argv
  threshold = parse(FLAGS.threshold, '--threshold')   # a bad one fails before the model loads
  cli.run_tool(lambda judge, **shards: filter_file(
      judge, FLAGS.input, FLAGS.kept, FLAGS.rejected, threshold=threshold,
      prompt=FLAGS.prompt, strict=FLAGS.strict, max_passage_chars=FLAGS.max_passage_chars,
      **shards), FLAGS.input, f'{FLAGS.kept} + {FLAGS.rejected}')


if __name__ == '__main__':
  cli.define_flags()
  flags.DEFINE_string('input', None, 'Training rows (query, positive, ...).')
  flags.DEFINE_string('kept', None, 'Rows scoring >= --threshold.')
  flags.DEFINE_string('rejected', None, 'Every other row, with its reason.')
  flags.DEFINE_string('threshold', '3', 'Keep rows whose expected grade (1–5) is at least '
                      'this; qF (e.g. q0.2): reject the lowest fraction F of this run\'s '
                      'grades, all shards together.')
  flags.DEFINE_string('prompt', 'quality', 'A prompt file, or a name in curate/prompts/.')
  flags.mark_flags_as_required(['input', 'kept', 'rejected'])
  app.run(main)
