r"""Synthetic queries for passages, few-shot, then an LLM auto-rater drops unrealistic ones.

    python -m gemini_embed.curate.synthesize_queries --llm=SRC --passages=CORPUS.jsonl \
        --out=PAIRS.jsonl [--per_passage=1] [--fewshot=EXAMPLES.jsonl] [--task="a search query"] \
        [--min_rating=3 | --min_rating=q0.2] [--passage_field=text] [--temperature=0.7] \
        [--nostrict] [--num_shards=N --shard=K]

Per passage (a row's --passage_field; its `title` is carried): --per_passage queries
sampled from prompts/query_writer.txt (row r's j-th query samples with fold_in(seed,
r·per_passage + j): independent of batches and resumes), each rated by
prompts/query_rater.txt (expected grade 1–5). PAIRS rows are training rows
{"query", "positive": passage, "title"?, "score_rating"}; the rejects
(PAIRS.rejected.jsonl) hold the others with their reason: low_rating, empty_query,
duplicate (the same query for the same passage), too_long, bad_row. --fewshot rows
{"query", "passage"} are added to the prompt's examples. --min_rating=q0.2 rejects the
lowest 20% of the run's ratings instead of a fixed grade (curate/threshold.py).
Resumable, sharded, merged and summarised as curate/ledger.py describes.
"""

from __future__ import annotations

from absl import app, flags

from gemini_embed.curate import cli, ledger, prompts
from gemini_embed.curate.judge import Judge
from gemini_embed.curate.threshold import ScoreCut, Threshold, parse
from gemini_embed.curate.training_rows import missing_text
from gemini_embed.data.jsonl import read_jsonl
from gemini_embed.llm.sampling import Sampling

FLAGS = flags.FLAGS


def fewshot_block(path: str | None) -> str:
  """--fewshot rows as the prompt's examples ("Passage: ...\\nQuery: ...\\n\\n" each)."""
  if not path:
    return ''
  out = []
  for line, row in read_jsonl(path):
    if (why := missing_text(row, ('query', 'passage'))):
      raise ValueError(f'{path}:{line}: {why} (a --fewshot row is {{"query", "passage"}})')
    out.append(f'Passage: {row["passage"]}\nQuery: {row["query"]}\n\n')
  return ''.join(out)


def synthesize_queries(judge: Judge, passages: str, out: str, *, rejected: str | None = None,
                       per_passage: int = 1, fewshot: str | None = None,
                       task: str = 'the search query', min_rating: float | str | Threshold = 3.0,
                       passage_field: str = 'text', params: Sampling = Sampling(0.7, seed=0),
                       max_new_tokens: int = 32, writer: str = 'query_writer',
                       rater: str = 'query_rater', strict: bool = True,
                       max_passage_chars: int = 1000, num_shards: int = 1,
                       shard: int = 0) -> bool:
  """The tool's work; True once every shard is done and PAIRS is written.
  min_rating: a grade (3) or a quantile of the run's ratings ('q0.2'), as threshold.parse."""
  cut = ScoreCut('rating', parse(min_rating, '--min_rating'), 'low_rating')
  if per_passage < 1:
    raise ValueError(f'--per_passage={per_passage}: must be >= 1')
  write_prompt = prompts.load(writer, ('passage',))
  rate_prompt = prompts.load(rater, ('query', 'passage'), graded=True)
  examples = fewshot_block(fewshot)
  job = ledger.Job(passages, out, out, rejected or ledger.stem(out) + '.rejected.jsonl',
                   problem=lambda r: missing_text(r, (passage_field,)), strict=strict,
                   num_shards=num_shards, shard=shard, desc='synthesize_queries',
                   dedupe=lambda r: (r['query'].strip().lower(), r['positive']), cut=cut)

  def work(window):
    out_rows, todo = [], []
    for i, (index, row) in enumerate(window):
      bad = job.bad_row(row)
      out_rows.append({'index': index, 'results': [bad] if bad else []})
      todo += [] if bad else [(i, j) for j in range(per_passage)]
    before = judge.tokens
    shown = {i: cli.cut(window[i][1][passage_field], max_passage_chars) for i, _ in todo}
    queries = judge.generate(
        write_prompt, [{'passage': shown[i], 'task': task, 'examples': examples}
                       for i, _ in todo],
        [window[i][0] * per_passage + j for i, j in todo], max_new_tokens=max_new_tokens,
        params=params)
    rate = [n for n, q in enumerate(queries) if q]
    ratings = dict(zip(rate, judge.graded(rate_prompt, [
        {'query': queries[n], 'passage': shown[todo[n][0]]} for n in rate])))
    for n, (i, _) in enumerate(todo):
      row = window[i][1]
      pair = {'query': queries[n] or '', 'positive': row[passage_field]}
      if isinstance(row.get('title'), str):
        pair['title'] = row['title']
      rating = ratings.get(n)
      if queries[n] is None:
        res = ledger.result(pair, kept=False, reason='too_long: the prompt exceeds the context')
      elif not queries[n]:
        res = ledger.result(pair, kept=False, reason='empty_query')
      elif rating is None:
        res = ledger.result(pair, kept=False, reason='too_long: the rater prompt exceeds the '
                            'context')
      else:   # the merge applies --min_rating
        res = ledger.result(pair, kept=True, scores={'rating': rating})
      out_rows[i]['results'].append(res)
    return out_rows, judge.tokens - before

  return job.run(work, window=judge.batch_size * 2)


def main(argv):
  del argv
  min_rating = parse(FLAGS.min_rating, '--min_rating')   # a bad one fails before the model loads
  cli.run_tool(lambda judge, **shards: synthesize_queries(
      judge, FLAGS.passages, FLAGS.out, rejected=FLAGS.rejected, per_passage=FLAGS.per_passage,
      fewshot=FLAGS.fewshot, task=FLAGS.task, min_rating=min_rating,
      passage_field=FLAGS.passage_field,
      params=cli.sampling(),
      max_new_tokens=FLAGS.max_new_tokens, writer=FLAGS.writer_prompt,
      rater=FLAGS.rater_prompt, strict=FLAGS.strict, max_passage_chars=FLAGS.max_passage_chars,
      **shards), FLAGS.passages, FLAGS.out)


if __name__ == '__main__':
  cli.define_flags()
  flags.DEFINE_string('passages', None, 'Passages (JSONL).')
  flags.DEFINE_string('passage_field', 'text', 'The passage field of --passages rows.')
  flags.DEFINE_string('out', None, 'Training pairs that passed the rater.')
  flags.DEFINE_string('rejected', None, 'The others (default OUT.rejected.jsonl).')
  flags.DEFINE_integer('per_passage', 1, 'Queries per passage.')
  flags.DEFINE_string('fewshot', None, 'Extra examples, rows {"query", "passage"}.')
  flags.DEFINE_string('task', 'the search query', 'What to write, as the prompt says it.')
  flags.DEFINE_string('min_rating', '3', 'Keep queries the rater grades at least this (1–5); '
                      "qF (e.g. q0.2): reject the lowest fraction F of this run's ratings, "
                      'all shards together.')
  cli.define_sampling_flags(temperature=0.7)
  flags.DEFINE_integer('max_new_tokens', 32, 'Query length cap in tokens.')
  flags.DEFINE_string('writer_prompt', 'query_writer', 'Query-writing prompt file.')
  flags.DEFINE_string('rater_prompt', 'query_rater', 'Auto-rater prompt file.')
  flags.mark_flags_as_required(['passages', 'out'])
  app.run(main)
