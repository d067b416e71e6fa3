r"""Hard negatives mined by an embedder's neighbours, scored by an LLM, fused with RRF.

    python -m gemini_embed.curate.mine --workdir=EMBEDDER --llm=SRC --input=TRAIN.jsonl \
        --corpus=CORPUS.jsonl --out=MINED.jsonl [--k=20] [--rrf_k=60] [--rank=K] \
        [--corpus_field=text] [--task=retrieval] [--approx] [--num_shards=N --shard=K]

The paper's five steps:
  (a) EMBEDDER: any workdir or soup (one trained without hard negatives, e.g. the
      demo's pre-finetune run);
  (b) each query's top-k corpus neighbours by cosine, excluding every positive of the
      same query text anywhere in TRAIN and exact duplicates of them (the corpus is
      deduplicated by exact text first); exact search with the corpus sharded on the
      mesh, or --approx for jax.lax.approx_max_k (curate/search.py);
  (c) each neighbour scored by the LLM twice: graded classification (expected grade of
      prompts/relevance.txt) and query likelihood (mean log p of the query's tokens
      after prompts/query_likelihood.txt);
  (d) the two rankings fused by Reciprocal Rank Fusion: Σ 1 / (rrf_k + rank);
  (e) the hard negative = the --rank-th candidate in fused order (default k: the last,
      as the paper does; the last one when fewer candidates remain).
Output rows are the input rows with `negative` replaced (the old one kept as
`replaced_negative`) and `mining`: every candidate's cosine, grade, query log-likelihood,
RRF score and fused rank, and the rank chosen. A row with no candidate left goes to the
rejects (MINED.rejected.jsonl) with its reason. Resumable, sharded, merged and
summarised as curate/ledger.py describes.
"""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np
from absl import app, flags, logging

from gemini_embed.curate import cli, fusion, ledger, prompts
from gemini_embed.curate.judge import Judge
from gemini_embed.curate.search import CorpusIndex
from gemini_embed.curate.training_rows import missing_text
from gemini_embed.data.jsonl import read_jsonl

FLAGS = flags.FLAGS
FIELDS = ('query', 'positive')


def choose_negative(cosines: Sequence[float], grades: Sequence[float | None],
                    logliks: Sequence[float | None], *, rrf_k: float, rank: int
                    ) -> tuple[int, list[dict]]:
  """Steps (d)–(e) for one query's candidates (in the embedder's order): (index of the
  hard negative, each candidate's audit). A score the LLM could not give (None: the
  prompt did not fit) ranks last on its list."""
  worst = lambda xs: [-np.inf if x is None else x for x in xs]
  order, fused = fusion.fused_order([worst(grades), worst(logliks)], rrf_k)
  chosen, used = fusion.pick(order, rank)
  fused_rank = np.empty(len(order), np.int64)
  fused_rank[order] = np.arange(1, len(order) + 1)
  audit = [{'cosine': float(c), 'grade': g, 'query_loglik': q, 'rrf': float(f),
            'fused_rank': int(r)}
           for c, g, q, f, r in zip(cosines, grades, logliks, fused, fused_rank)]
  return chosen, audit


def read_corpus(path: str, field: str) -> list[str]:
  """The corpus texts, exact duplicates dropped (the first kept), bad rows named."""
  texts, seen = [], set()
  for line, row in read_jsonl(path):
    text = row.get(field)
    if not isinstance(text, str) or not text.strip():
      raise ValueError(f'{path}:{line}: needs a non-empty "{field}" string (--corpus_field '
                       'names the passage field)')
    if text not in seen:
      seen.add(text)
      texts.append(text)
  return texts


def mine_file(judge: Judge, run, input_path: str, corpus_path: str, out: str, *,
              rejected: str | None = None, k: int = 20, rrf_k: float = 60.0,
              rank: int | None = None, task: str = 'retrieval', corpus_field: str = 'text',
              approx: bool = False, relevance: str = 'relevance',
              likelihood: str = 'query_likelihood', strict: bool = True,
              max_passage_chars: int = 1000, encode_batch: int = 64, num_shards: int = 1,
              shard: int = 0) -> bool:
  """The tool's work (run: encoding.load_run of the embedder); True once merged."""
  if k < 1:
    raise ValueError(f'--k={k}: must be >= 1')
  rank = k if rank is None else rank
  fusion.pick([0], rank)   # a bad --rank fails before any work
  grade_prompt = prompts.load(relevance, ('query', 'passage'), graded=True)
  ql_prompt = prompts.load(likelihood, ('passage',))
  job = ledger.Job(input_path, out, out, rejected or ledger.stem(out) + '.rejected.jsonl',
                   problem=lambda r: missing_text(r, FIELDS), strict=strict,
                   num_shards=num_shards, shard=shard, desc='mine')
  rows = [row for _, row in job.rows()]
  corpus = read_corpus(corpus_path, corpus_field)
  neighbours = Neighbours(run, rows, corpus, task=task, approx=approx,
                          encode_batch=encode_batch)
  logging.info('mine: %d rows, corpus of %d distinct passages, k=%d, rank=%d', len(rows),
               len(corpus), k, rank)
  miner = Miner(job, judge, neighbours, grade_prompt, ql_prompt, k=k, rrf_k=rrf_k, rank=rank,
                max_passage_chars=max_passage_chars)
  return job.run(miner.work, window=judge.batch_size)


class Neighbours:
  """Step (b): every query's nearest corpus passages by cosine, without its positives.

  Every query is encoded up front, in one call whatever the shard or resume point, so a
  row's neighbours never depend on which rows shared its batch."""

  def __init__(self, run, rows: Sequence[dict], corpus: list[str], *, task: str,
               approx: bool, encode_batch: int):
    ok = [missing_text(r, FIELDS) is None for r in rows]
    self.corpus = corpus
    self.excluded = _positive_ids(rows, ok, corpus)
    encoder = run.encoder(batch_size=encode_batch, progress=True)
    queries = [r['query'] for r, fine in zip(rows, ok) if fine]
    self._query_emb = _normalise(encoder(queries, 'query', task))
    self._at = np.cumsum(ok) - 1   # input row → its row of the query embeddings
    self._index = CorpusIndex(_normalise(encoder(corpus, 'document', task)), run.mesh,
                              run.rules, approx=approx)

  def candidates(self, window: Sequence[tuple[int, dict]], k: int
                 ) -> list[list[tuple[int, float]]]:
    """Per (index, row): up to k (corpus id, cosine), best first, its positives left out."""
    extra = max(len(self.excluded[row['query']]) for _, row in window)
    scores, ids = self._index.search(self._query_emb[[self._at[i] for i, _ in window]],
                                     k + extra)
    out = []
    for j, (_, row) in enumerate(window):
      drop = set(self.excluded[row['query']])
      keep = [(int(c), float(s)) for c, s in zip(ids[j], scores[j]) if int(c) not in drop]
      out.append(keep[:k])
    return out


def _positive_ids(rows: Sequence[dict], ok: Sequence[bool], corpus: list[str]
                  ) -> dict[str, list[int]]:
  """Each query text → the corpus ids of every positive it has anywhere in the rows."""
  positives = collections.defaultdict(set)
  for row, fine in zip(rows, ok):
    if fine:
      positives[row['query']].add(row['positive'])
  where = {t: i for i, t in enumerate(corpus)}
  return {q: sorted(where[p] for p in ps if p in where) for q, ps in positives.items()}


class Miner:
  """Steps (c)–(e) over one window of input rows: the ledger's `work`."""

  def __init__(self, job: ledger.Job, judge: Judge, neighbours: Neighbours,
               grade_prompt: prompts.Prompt, ql_prompt: prompts.Prompt, *, k: int,
               rrf_k: float, rank: int, max_passage_chars: int):
    self.job, self.judge, self.neighbours = job, judge, neighbours
    self.grade_prompt, self.ql_prompt = grade_prompt, ql_prompt
    self.k, self.rrf_k, self.rank, self.max_passage_chars = k, rrf_k, rank, max_passage_chars

  def work(self, window: Sequence[tuple[int, dict]]) -> tuple[list[dict], int]:
    out_rows, todo = [], []
    for i, (idx, row) in enumerate(window):
      bad = self.job.bad_row(row)
      out_rows.append({'index': idx, 'results': [bad] if bad else None})
      if not bad:
        todo.append(i)
    if not todo:
      return out_rows, 0
    cands = self.neighbours.candidates([window[i] for i in todo], self.k)
    before = self.judge.tokens
    grades, logliks = self._llm_scores([window[i][1]['query'] for i in todo], cands)
    start = 0
    for i, cs in zip(todo, cands):
      g, q = grades[start:start + len(cs)], logliks[start:start + len(cs)]
      start += len(cs)
      out_rows[i]['results'] = [self._result(window[i][1], cs, g, q)]
    return out_rows, self.judge.tokens - before

  def _llm_scores(self, queries: Sequence[str], cands: Sequence[list[tuple[int, float]]]
                  ) -> tuple[list[float | None], list[float | None]]:
    """Step (c): each candidate's graded relevance and query log-likelihood, flat."""
    corpus = self.neighbours.corpus
    fills = [{'query': q, 'passage': cli.cut(corpus[c], self.max_passage_chars)}
             for q, cs in zip(queries, cands) for c, _ in cs]
    grades = self.judge.graded(self.grade_prompt, fills)
    logliks = self.judge.likelihood(self.ql_prompt, [{'passage': f['passage']} for f in fills],
                                    [f['query'] for f in fills])
    return grades, logliks

  def _result(self, row: dict, cs: list[tuple[int, float]], g: list[float | None],
              q: list[float | None]) -> ledger.Result:
    """Steps (d)–(e) for one row: the row with its mined negative and audit, or a reject."""
    if not cs:
      return ledger.result(row, kept=False, reason='no_candidates: the corpus holds nothing '
                           'but its positives')
    corpus = self.neighbours.corpus
    chosen, audit = choose_negative([s for _, s in cs], g, q, rrf_k=self.rrf_k, rank=self.rank)
    for a, (c, _) in zip(audit, cs):
      a['text'] = corpus[c]
    mined = dict(row, negative=corpus[cs[chosen][0]])
    if 'negative' in row:
      mined['replaced_negative'] = row['negative']
    mined['mining'] = {'rank': self.rank, 'chosen_fused_rank': audit[chosen]['fused_rank'],
                       'candidates': audit}
    known = lambda xs: [x for x in xs if x is not None]
    return ledger.result(mined, kept=True, scores={
        'grade': known(g), 'query_loglik': known(q), 'cosine': [s for _, s in cs],
        'negative_grade': g[chosen]})


def _normalise(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x, np.float32)
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def main(argv):
  del argv
  from gemini_embed import encoding   # the embedder's restore pulls in orbax: command only
  cli.run_tool(lambda judge, **shards: mine_file(
      judge, encoding.load_run(FLAGS.workdir), FLAGS.input, FLAGS.corpus, FLAGS.out,
      rejected=FLAGS.rejected, k=FLAGS.k, rrf_k=FLAGS.rrf_k, rank=FLAGS.rank, task=FLAGS.task,
      corpus_field=FLAGS.corpus_field, approx=FLAGS.approx,
      relevance=FLAGS.relevance_prompt, likelihood=FLAGS.likelihood_prompt,
      strict=FLAGS.strict, max_passage_chars=FLAGS.max_passage_chars, **shards),
      FLAGS.input, FLAGS.out)


if __name__ == '__main__':
  cli.define_flags()
  flags.DEFINE_string('workdir', None, 'The embedder (a training workdir or soup).')
  flags.DEFINE_string('input', None, 'Training rows (query, positive, ...).')
  flags.DEFINE_string('corpus', None, 'Passages to mine from (JSONL).')
  flags.DEFINE_string('corpus_field', 'text', 'The passage field of --corpus rows (BEIR: text; '
                      'a training file: positive).')
  flags.DEFINE_string('out', None, 'Rows with the mined negative and the audit.')
  flags.DEFINE_string('rejected', None, 'Rows without a negative (default OUT.rejected.jsonl).')
  flags.DEFINE_integer('k', 20, 'Neighbours per query.')
  flags.DEFINE_float('rrf_k', 60.0, 'The RRF constant: Σ 1/(rrf_k + rank).')
  flags.DEFINE_integer('rank', None, 'The fused rank taken as the negative (default k).')
  flags.DEFINE_string('task', 'retrieval', "The embedder's task prompt for the queries.")
  flags.DEFINE_bool('approx', False, 'jax.lax.approx_max_k instead of exact top-k.')
  flags.DEFINE_string('relevance_prompt', 'relevance', 'Graded-classification prompt file.')
  flags.DEFINE_string('likelihood_prompt', 'query_likelihood', 'Query-likelihood prompt file.')
  flags.mark_flags_as_required(['workdir', 'input', 'corpus', 'out'])
  app.run(main)
