"""The curation tools on a tiny random LLM and a tiny embedder workdir: nothing lost by
filter, the expected grade against transformers, mine killed mid-run and rerun equal to
an uninterrupted run, two shards merged equal to one, the synthesizers' rows."""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from gemini_embed import encoding, sharding
from gemini_embed.curate import prompts
from gemini_embed.curate.filter import filter_file
from gemini_embed.curate.judge import Judge
from gemini_embed.curate.mine import mine_file
from gemini_embed.curate.synthesize_classification import (list_items, synthesize_classification,
                                                           tail_seeds)
from gemini_embed.curate.synthesize_queries import synthesize_queries
from gemini_embed.llm.model import load_llm
from gemini_embed.llm.sampling import Sampling
from tests.data.fixtures import load_jsonl, write_jsonl
from tests.export_fixtures import WORDS, write_workdir
from tests.llm.tiny_llm import save_tiny_llm

torch = pytest.importorskip('torch')
RULES = sharding.DEFAULT_RULES
BATCH = 8
# Short prompts: the tiny LLM's byte-level context is 256 tokens.
GRADE = '# options: 0 1 2 3\nQ: {query}\nP: {passage}\nG:'
LIKELIHOOD = 'P: {passage}\nQ:'
WRITER = '{task}{examples}\nP: {passage}\nQ:'
SEEDS = 'List for {label} ({description}):\n1.'
TEXT = '{label}: {description}; {seed}\nText:'


def _sentence(rng, n):
  return ' '.join(rng.choice(WORDS[:20], n))


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  root = tmp_path_factory.mktemp('curate')
  llm_dir = str(root / 'llm')
  ref = save_tiny_llm(llm_dir, 'llama', seed=3, context=256)
  mesh = sharding.make_mesh(sharding.parse_mesh('data:-1'), jax.local_devices())
  judge = Judge(load_llm(llm_dir, mesh, RULES), mesh, RULES, batch_size=BATCH)
  workdir = write_workdir(str(root / 'embedder'), 'llama')
  rng = np.random.default_rng(0)
  rows = [{'query': _sentence(rng, 4), 'positive': _sentence(rng, 7)} for _ in range(14)]
  rows[5]['query'] = rows[2]['query']   # two positives of one query text
  corpus = [{'text': r['positive']} for r in rows] + [{'text': _sentence(rng, 6)}
                                                      for _ in range(20)]
  files = {}
  for name, text in (('grade', GRADE), ('likelihood', LIKELIHOOD), ('writer', WRITER),
                     ('seeds', SEEDS), ('text', TEXT)):
    files[name] = str(root / f'{name}.txt')
    with open(files[name], 'w') as f:
      f.write(text)
  files['train'] = write_jsonl(root / 'train.jsonl', rows)
  files['corpus'] = write_jsonl(root / 'corpus.jsonl', corpus)
  return dict(llm_dir=llm_dir, ref=ref, judge=judge, workdir=workdir,
              run=encoding.load_run(workdir), rows=rows, **files)


def _mine_args(t, **kw):
  return dict(k=4, rrf_k=60, relevance=t['grade'], likelihood=t['likelihood'], **kw)


def test_filter_loses_nothing(tiny, tmp_path):
  rows = tiny['rows'][:9] + [{'query': 'no positive'}] + tiny['rows'][9:]
  src = write_jsonl(tmp_path / 'in.jsonl', rows + ['{"query": '])   # + a line that is not JSON
  kept, rejected = str(tmp_path / 'kept.jsonl'), str(tmp_path / 'rejected.jsonl')
  with pytest.raises(ValueError, match=r'in.jsonl:10: needs a "positive" field'):
    filter_file(tiny['judge'], src, kept, rejected, prompt=tiny['grade'])
  with pytest.raises(ValueError, match=r'in2.jsonl:15: not valid JSON'):
    filter_file(tiny['judge'], write_jsonl(tmp_path / 'in2.jsonl', tiny['rows'] + ['{"q": ']),
                kept, rejected, prompt=tiny['grade'])
  # The median grade as threshold: both files get rows.
  probe = tiny['judge'].graded(prompts.load(tiny['grade'], (), graded=True),
                               [{'query': r['query'], 'passage': r['positive']}
                                for r in tiny['rows']])
  threshold = float(np.median(probe))
  assert filter_file(tiny['judge'], src, kept, rejected, threshold=threshold,
                     prompt=tiny['grade'], strict=False)
  k, r = load_jsonl(kept), load_jsonl(rejected)
  assert k and r
  strip = lambda row: {f: row[f] for f in ('query', 'positive') if f in row}
  assert sorted(map(json.dumps, map(strip, k + r))) == sorted(map(json.dumps, rows))
  assert all(row['score_quality'] >= threshold for row in k)
  assert all(row['score_quality'] < threshold for row in r if 'score_quality' in row)
  bad = [row for row in r if row['reason'].startswith('bad_row')]
  assert len(bad) == 1 and bad[0]['input_line'] == 10
  summary = json.load(open(tmp_path / 'kept.summary.json'))
  assert summary['kept'] + summary['rejected'] == len(rows)
  assert summary['lines_not_json'] == [f'{src}:16: not valid JSON (Expecting value)']
  np.testing.assert_allclose(sorted(x['score_quality'] for x in k + r if 'score_quality' in x),
                             sorted(probe), atol=1e-9)


@pytest.mark.parametrize('options', ['0 1 2 3', '1 10 100'])   # one pass per fill; per option
def test_expected_grade_matches_transformers(tiny, tmp_path, options):
  path = tmp_path / 'grade.txt'
  path.write_text(GRADE.replace('0 1 2 3', options))
  prompt = prompts.load(str(path), ('query', 'passage'), graded=True)
  fills = [{'query': r['query'], 'passage': r['positive']} for r in tiny['rows'][:3]]
  got = tiny['judge'].graded(prompt, fills)
  tok = tiny['judge'].llm.tokenizer
  for fill, g in zip(fills, got):
    context = tok.encode(prompt.render(**fill)).ids
    sums = []
    for option in prompt.options:
      target = tok.encode(option, add_special_tokens=False).ids
      with torch.no_grad():
        logits = tiny['ref'](input_ids=torch.tensor([context + target])).logits[0].double()
      logp = torch.log_softmax(logits, -1)
      sums.append(float(sum(logp[len(context) - 1 + j, t] for j, t in enumerate(target))))
    p = np.exp(np.asarray(sums) - max(sums))
    want = float((p / p.sum()) @ np.asarray(prompt.grades, np.float64))
    assert abs(g - want) < 1e-4, (g, want)


@pytest.fixture(scope='module')
def mined(tiny, tmp_path_factory):
  """An uninterrupted one-shard run of mine: the reference of the next two tests."""
  one = tmp_path_factory.mktemp('mined') / 'one.jsonl'
  assert mine_file(tiny['judge'], tiny['run'], tiny['train'], tiny['corpus'], str(one),
                   **_mine_args(tiny))
  return one


def test_mine_two_shards_merge_to_one(tiny, mined, tmp_path):
  one = mined
  two = tmp_path / 'two.jsonl'
  assert not mine_file(tiny['judge'], tiny['run'], tiny['train'], tiny['corpus'], str(two),
                       num_shards=2, shard=1, **_mine_args(tiny))   # waits for shard 0
  assert not two.exists()
  assert mine_file(tiny['judge'], tiny['run'], tiny['train'], tiny['corpus'], str(two),
                   num_shards=2, shard=0, **_mine_args(tiny))
  assert two.read_bytes() == one.read_bytes()
  rows = load_jsonl(one)
  assert len(rows) == len(tiny['rows'])
  positives = {}
  for r in tiny['rows']:
    positives.setdefault(r['query'], set()).add(r['positive'])
  for r in rows:
    cands = [c['text'] for c in r['mining']['candidates']]
    assert len(cands) == 4 and not positives[r['query']] & set(cands)
    chosen = next(c for c in r['mining']['candidates'] if c['text'] == r['negative'])
    assert chosen['fused_rank'] == 4 == r['mining']['chosen_fused_rank']


@pytest.mark.slow
def test_mine_killed_and_rerun_equals_uninterrupted(tiny, mined, tmp_path):
  want = mined
  out = tmp_path / 'got.jsonl'
  cmd = [sys.executable, '-m', 'tests.curate.kill_after', 'mine', f'--llm={tiny["llm_dir"]}',
         f'--workdir={tiny["workdir"]}', f'--input={tiny["train"]}',
         f'--corpus={tiny["corpus"]}', f'--out={out}', '--k=4', f'--batch_size={BATCH}',
         f'--relevance_prompt={tiny["grade"]}', f'--likelihood_prompt={tiny["likelihood"]}']
  env = dict(os.environ, KILL_AFTER_FSYNCS='1')
  done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
  ledger = tmp_path / 'got.ledger.jsonl'
  assert len(ledger.read_text().splitlines()) == BATCH and not out.exists()
  env['KILL_AFTER_FSYNCS'] = '-1'   # never
  done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert out.read_bytes() == want.read_bytes()


def test_synthesizers(tiny, tmp_path):
  passages = write_jsonl(tmp_path / 'p.jsonl', [{'text': r['positive'], 'title': 't'}
                                               for r in tiny['rows'][:6]])
  out = tmp_path / 'pairs.jsonl'
  assert synthesize_queries(tiny['judge'], passages, str(out), per_passage=2,
                            writer=tiny['writer'], rater=tiny['grade'], min_rating=1.5,
                            max_new_tokens=8, params=Sampling(1.0, seed=1))
  kept, rejected = load_jsonl(out), load_jsonl(tmp_path / 'pairs.rejected.jsonl')
  assert len(kept) + len(rejected) == 12
  for r in kept:
    assert r['title'] == 't' and r['query'] and r['score_rating'] >= 1.5
  assert {r['reason'].split(':')[0] for r in rejected} <= {'low_rating', 'empty_query',
                                                           'duplicate'}
  labels = str(tmp_path / 'labels.json')
  with open(labels, 'w') as f:
    json.dump({'red': 'things that are red', 'blue': 'things that are blue',
               'grey': 'grey things'}, f)
  out = tmp_path / 'cls.jsonl'
  assert synthesize_classification(tiny['judge'], labels, str(out), per_label=3, tail=0.0,
                                   list_tokens=24, text_tokens=8, seed_prompt=tiny['seeds'],
                                   text_prompt=tiny['text'], params=Sampling(1.0, seed=2))
  kept, rejected = load_jsonl(out), load_jsonl(tmp_path / 'cls.rejected.jsonl')
  lists = load_jsonl(tmp_path / 'cls.work' / 'seeds-shard0.jsonl')
  assert len(kept) + len(rejected) == sum(3 if l['items'] else 1 for l in lists)
  assert {r['reason'].split(':')[0] for r in rejected} <= {'no_seeds', 'empty_text',
                                                           'duplicate'}
  for r in kept:
    assert r['positive'] != r['negative'] and r['query']
    assert r['positive'] == {'red': 'things that are red', 'blue': 'things that are blue',
                             'grey': 'grey things'}[r['label']]
  assert len({' '.join(r['query'].lower().split()) for r in kept}) == len(kept)


def test_seed_lists_and_their_tail():
  items = list_items('1. a chess match\n2. a regatta\n 3) curling\n\n4.')
  assert items == ['a chess match', 'a regatta', 'curling']
  seeds = tail_seeds(['head1', 'head2', 't1', 't2'], 6, 0.5, seed=0, label=1)
  assert len(seeds) == 6 and set(seeds) <= {'t1', 't2'}          # short tail: with replacement
  assert tail_seeds(['h', 't1', 't2', 't3'], 2, 0.25, 0, 0) == tail_seeds(
      ['h', 't1', 't2', 't3'], 2, 0.25, 0, 0)                     # seeded
  assert tail_seeds(['only'], 2, 0.5, 0, 0) == ['only', 'only'] and tail_seeds([], 2, 0.5, 0, 0) == []
