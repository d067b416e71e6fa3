"""The generate / score tools on a tiny random model: rows in input order, per-row
errors for prompts too long for the context, bad rows named by line, shards, resume
after a torn output equal to an uninterrupted run, log p against transformers, and the
two commands themselves."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from gemini_embed import sharding
from gemini_embed.llm.decode import Generator
from gemini_embed.llm.generate import generate_file
from gemini_embed.llm.model import load_llm
from gemini_embed.llm.sampling import Sampling
from gemini_embed.llm.score import score_file
from gemini_embed.llm.scoring import Scorer
from tests.data.fixtures import load_jsonl, write_jsonl
from tests.llm.tiny_llm import save_tiny_llm

torch = pytest.importorskip('torch')
RULES = sharding.DEFAULT_RULES
CONTEXT = 64
WORDS = ('alpha', 'beta gamma', 'delta epsilon zeta', 'eta', 'theta iota', 'kappa lambda mu nu',
         'xi', 'omicron pi rho', 'sigma', 'tau upsilon')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp('tiny'))
  ref = save_tiny_llm(directory, 'llama', seed=2, context=CONTEXT)
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  llm = load_llm(directory, mesh, RULES)
  return directory, ref, llm, mesh, Generator(llm, mesh, RULES, batch_size=2, chunk=4)


SAMPLED = Sampling(temperature=1.0, top_k=50, seed=4)


def test_generate_rows_in_order_with_per_row_errors(tiny, tmp_path):
  _, _, llm, mesh, gen = tiny
  rows = [{'prompt': w, 'id': i} for i, w in enumerate(WORDS)]
  rows[3]['prompt'] = 'x' * (CONTEXT - 4)   # + 8 new tokens > the context of 64
  src = write_jsonl(tmp_path / 'in.jsonl', rows)
  out = load_jsonl(generate_file(llm, mesh, RULES, src, str(tmp_path / 'out.jsonl'),
                                 max_new_tokens=8, params=SAMPLED, generator=gen))
  assert [r['id'] for r in out] == list(range(len(WORDS)))
  assert 'exceeds the context of 64 tokens' in out[3]['error'] and 'completion' not in out[3]
  for r in out[:3] + out[4:]:
    assert r['finish_reason'] in ('stop', 'length') and isinstance(r['completion'], str)


def test_resume_after_a_torn_output_equals_an_uninterrupted_run(tiny, tmp_path):
  _, _, llm, mesh, gen = tiny
  src = write_jsonl(tmp_path / 'in.jsonl', [{'prompt': w} for w in WORDS])
  full = generate_file(llm, mesh, RULES, src, str(tmp_path / 'full.jsonl'), max_new_tokens=8,
                       params=SAMPLED, generator=gen)
  with open(full, 'rb') as f:
    data = f.read()
  lines = data.split(b'\n')
  torn = tmp_path / 'torn.jsonl'
  torn.write_bytes(b'\n'.join(lines[:3]) + b'\n' + lines[3][:7])   # killed mid-write
  generate_file(llm, mesh, RULES, src, str(torn), max_new_tokens=8, params=SAMPLED,
                generator=gen)
  assert torn.read_bytes() == data
  # A finished output: a rerun changes nothing.
  generate_file(llm, mesh, RULES, src, str(torn), max_new_tokens=8, params=SAMPLED,
                generator=gen)
  assert torn.read_bytes() == data


def test_shards_concatenate_to_the_whole(tiny, tmp_path):
  _, _, llm, mesh, gen = tiny
  src = write_jsonl(tmp_path / 'in.jsonl', [{'prompt': w} for w in WORDS])
  whole = load_jsonl(generate_file(llm, mesh, RULES, src, str(tmp_path / 'all.jsonl'),
                                   max_new_tokens=6, params=SAMPLED, generator=gen))
  parts = []
  for k in range(3):
    path = generate_file(llm, mesh, RULES, src, str(tmp_path / 'out.jsonl'), max_new_tokens=6,
                         params=SAMPLED, generator=gen, num_shards=3, shard=k)
    assert path.endswith(f'out-0000{k}-of-00003.jsonl')
    parts += load_jsonl(path)
  assert parts == whole


def test_bad_rows_are_named_by_line(tiny, tmp_path):
  _, _, llm, mesh, gen = tiny
  src = write_jsonl(tmp_path / 'in.jsonl', [{'prompt': 'a'}, '', {'text': 'no prompt'}])
  with pytest.raises(ValueError, match=r'in.jsonl:3: needs a "prompt" string field'):
    generate_file(llm, mesh, RULES, src, str(tmp_path / 'o.jsonl'), generator=gen)
  src = write_jsonl(tmp_path / 'in2.jsonl', [{'prompt': 'a'}, '{"prompt": '])
  with pytest.raises(ValueError, match=r'in2.jsonl:2: not valid JSON'):
    generate_file(llm, mesh, RULES, src, str(tmp_path / 'o.jsonl'), generator=gen)
  src = write_jsonl(tmp_path / 'in3.jsonl',
                    [{'prompt': 'a', 'continuation': 'b', 'options': ['c']}])
  with pytest.raises(ValueError, match=r'in3.jsonl:1: needs exactly one of'):
    score_file(llm, mesh, RULES, src, str(tmp_path / 'o.jsonl'))


def test_scores_match_transformers(tiny, tmp_path):
  _, ref, llm, mesh, _ = tiny
  rows = [{'prompt': w, 'continuation': ' ' + v} for w, v in zip(WORDS, WORDS[::-1])]
  rows.append({'prompt': 'grade:', 'options': ['0', '1', '2', '3']})
  rows.append({'prompt': 'p' * 40, 'continuation': 'q' * 30})   # > the context
  src = write_jsonl(tmp_path / 'in.jsonl', rows)
  scorer = Scorer(llm, mesh, RULES, batch_size=4)
  out = load_jsonl(score_file(llm, mesh, RULES, src, str(tmp_path / 'out.jsonl'), scorer=scorer))
  enc = lambda s, special=True: llm.tokenizer.encode(s, add_special_tokens=special).ids
  worst = 0.0
  for row, got in zip(rows[:-2], out):
    context, target = enc(row['prompt']), enc(row['continuation'], False)
    want = _torch_logprob(ref, context, target)
    assert got['num_tokens'] == len(target)
    worst = max(worst, abs(got['logprob'] - want) / len(target))
  sums = [_torch_logprob(ref, enc('grade:'), enc(o, False)) for o in '0123']
  want = np.exp(np.asarray(sums) - max(sums))
  np.testing.assert_allclose(out[-2]['probs'], want / want.sum(), atol=1e-4)
  assert abs(sum(out[-2]['probs']) - 1) < 1e-9
  assert 'exceed the context of 64 tokens' in out[-1]['error']
  print(f'\nworst |log p - transformers| per token: {worst:.2e}')
  assert worst < 1e-4


def _torch_logprob(model, context, target):
  ids = torch.tensor([context + target])
  with torch.no_grad():
    logits = model(input_ids=ids).logits[0].double()
  logp = torch.log_softmax(logits, -1)
  return float(sum(logp[len(context) - 1 + j, t] for j, t in enumerate(target)))


def test_the_commands(tiny, tmp_path):
  directory = tiny[0]
  prompts = write_jsonl(tmp_path / 'p.jsonl', [{'prompt': w} for w in WORDS[:3]])
  scores = write_jsonl(tmp_path / 's.jsonl', [{'prompt': 'a', 'options': ['yes', 'no']}])
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1')
  for tool, src, extra in (('generate', prompts, ['--max_new_tokens=4', '--temperature=0.7',
                                                  '--top_p=0.9', '--batch_size=2']),
                           ('score', scores, [])):
    out = tmp_path / f'{tool}.jsonl'
    done = subprocess.run([sys.executable, '-m', f'gemini_embed.llm.{tool}', f'--llm={directory}',
                           f'--input={src}', f'--output={out}', *extra], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = load_jsonl(out)
    assert len(rows) == (3 if tool == 'generate' else 1)
    assert 'completion' in rows[0] or abs(sum(rows[0]['probs']) - 1) < 1e-9
  bad = write_jsonl(tmp_path / 'bad.jsonl', [{'prompt': 'a'}, {'prompt': 3}])
  done = subprocess.run([sys.executable, '-m', 'gemini_embed.llm.generate', f'--llm={directory}',
                         f'--input={bad}', f'--output={tmp_path / "x.jsonl"}'], env=env,
                        capture_output=True, text=True, timeout=300)
  assert done.returncode != 0 and 'bad.jsonl:2: needs a "prompt" string field' in done.stderr
