"""encode / evaluate / soup through their command lines, on a real tiny two-stage run
(pre-finetune → fine-tune); soups checked against NumPy float64 averages."""

import json
import os
import re
import shutil
import subprocess
import sys
import types

import jax
import numpy as np
import pytest
from absl import app
from absl.testing import flagsaver
from jax.sharding import PartitionSpec as P

from gemini_embed import checkpoint
from gemini_embed.encoding import TextEncoder, load_run
from gemini_embed.soup import main as soup_main, read_params, write_soup
from tests.eval.synthetic_suite import write_halved_suite
from tests.train_fixtures import (ROOT, final_params, load_config, train_command, train_env,
                                  write_training_data)


def _tool(name, *args, check=True):
  out = subprocess.run([sys.executable, '-m', f'gemini_embed.{name}', *args], env=train_env(8),
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
  if check and out.returncode:
    raise AssertionError(f'{name} failed:\n{out.stderr[-3000:]}')
  return out


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """A tiny pre-finetune run (checkpoints at steps 2 and 4) and a fine-tune from it."""
  base = tmp_path_factory.mktemp('runs')
  data = str(base / 'data')
  write_training_data(data, load_config('prefinetune'))
  write_training_data(data, load_config('finetune'))
  pre, ft = str(base / 'prefinetune'), str(base / 'finetune')
  for cmd in (train_command(pre, data),
              train_command(ft, data, config='finetune', arg=f'tiny,init_from={pre}')):
    out = subprocess.run(cmd, env=train_env(8), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
  suite = base / 'suite'
  write_halved_suite(suite)  # build_corpora's layout: select and report halves
  return dict(pre=pre, ft=ft, suite=str(suite), base=base)


def test_encode_keeps_input_order_normalises_and_truncates(runs, tmp_path):
  texts = ['the amber lantern', 'a copper kettle in the attic', 'x', 'granite bench ' * 20]
  fwd, rev = tmp_path / 'fwd.jsonl', tmp_path / 'rev.jsonl'
  fwd.write_text(''.join(json.dumps({'text': t}) + '\n' for t in texts))
  rev.write_text(''.join(json.dumps({'text': t}) + '\n' for t in texts[::-1]))
  for rows, out in ((fwd, 'a.npy'), (rev, 'b.npy')):
    _tool('encode', f'--workdir={runs["ft"]}', f'--input={rows}', f'--output={tmp_path / out}',
          '--kind=query', '--task=retrieval', '--dim=32')
  a, b = np.load(tmp_path / 'a.npy'), np.load(tmp_path / 'b.npy')
  assert a.shape == (4, 32) and a.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
  np.testing.assert_allclose(a, b[::-1], atol=1e-5)
  assert np.linalg.matrix_rank(a, tol=1e-3) > 1  # different texts, different rows


def test_a_run_encodes_sharded_on_its_training_mesh(runs, tmp_path):
  """A run trained on a (data 2, fsdp 2, tensor 2) mesh is restored onto that mesh (its
  config.json), its parameters really split, and embeds as on a data-only mesh."""
  pod = str(tmp_path / 'pod_run')
  shutil.copytree(runs['ft'], pod)
  with open(os.path.join(pod, 'config.json')) as f:
    config = json.load(f)
  config['mesh'] = dict(data=2, fsdp=2, tensor=2)
  with open(os.path.join(pod, 'config.json'), 'w') as f:
    json.dump(config, f)
  sharded, replicated = load_run(pod), load_run(runs['ft'], mesh_sizes={'data': -1})
  assert dict(sharded.mesh.shape) == dict(data=2, fsdp=2, tensor=2)
  assert sharded.model.backbone.embedding[...].sharding.spec == P('tensor', 'fsdp')
  assert sharded.model.backbone.blocks.mlp.gate[...].sharding.spec == P(None, 'fsdp', 'tensor')
  assert replicated.model.backbone.embedding[...].sharding.is_fully_replicated  # fsdp = tensor = 1
  # Batches are rounded up to the batch axes' size: data × fsdp = 4 here, 8 data-only.
  assert sharded.encoder(batch_size=6).batch_size == 8
  assert sharded.encoder(batch_size=4).batch_size == 4
  assert replicated.encoder(batch_size=4).batch_size == 8
  texts = ['the amber lantern', 'a copper kettle in the attic', 'x', 'granite bench ' * 20]
  for kind in ('query', 'document'):
    want = replicated.encoder()(texts, kind, 'retrieval')
    np.testing.assert_allclose(sharded.encoder()(texts, kind, 'retrieval'), want,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sharded.encoder(pack=True)(texts, kind, 'retrieval'), want,
                               rtol=1e-5, atol=1e-5)


def test_packed_encoding_equals_one_text_per_row(runs):
  """The packed encoder (config.data.pack: texts share rows, data/packing.py) gives each
  text the embedding it gets alone in a padded row, in input order, over several calls
  and row counts."""
  run = load_run(runs['ft'], mesh_sizes={'data': -1})
  rng = np.random.default_rng(0)
  words = 'amber lantern copper kettle attic granite bench river stone'.split()
  texts = [' '.join(rng.choice(words, size=rng.integers(1, 30))) for _ in range(70)] + ['']
  encoder = run.encoder(batch_size=8, pack=True)
  assert encoder.pack and not run.encoder(pack=False).pack
  for kind in ('query', 'document'):
    want = run.encoder(pack=False)(texts, kind, 'retrieval')
    ids = (encoder.query_side if kind == 'query' else encoder.doc_side).token_lists(
        encoder.prompts(texts, kind, 'retrieval'))
    max_len = encoder.query_side.max_len if kind == 'query' else encoder.doc_side.max_len
    assert sum(map(len, ids)) > 2 * 8 * max_len  # more than two calls of 8 rows
    np.testing.assert_allclose(encoder(texts, kind, 'retrieval'), want, rtol=1e-5, atol=1e-5)


def test_encode_mesh_flag_overrides_the_runs_mesh(runs, tmp_path):
  rows = tmp_path / 'rows.jsonl'
  rows.write_text(''.join(json.dumps({'text': t}) + '\n' for t in ('amber', 'a copper kettle')))
  for mesh, out in (('data:-1', 'a.npy'), ('data:2,fsdp:2,tensor:2', 'b.npy')):
    _tool('encode', f'--workdir={runs["ft"]}', f'--input={rows}', f'--output={tmp_path / out}',
          f'--mesh={mesh}')
  np.testing.assert_allclose(np.load(tmp_path / 'b.npy'), np.load(tmp_path / 'a.npy'), atol=1e-5)
  out = _tool('encode', f'--workdir={runs["ft"]}', f'--input={rows}',
              f'--output={tmp_path / "c.npy"}', '--mesh=data:3', check=False)
  assert out.returncode != 0 and '--mesh' in out.stderr


def test_encode_names_the_bad_line(runs, tmp_path):
  rows = tmp_path / 'bad.jsonl'
  rows.write_text('{"text": "fine"}\n{"txt": "no text field"}\n')
  out = _tool('encode', f'--workdir={runs["ft"]}', f'--input={rows}',
              f'--output={tmp_path / "x.npy"}', check=False)
  assert out.returncode != 0 and 'bad.jsonl:2' in out.stderr


def test_evaluate_writes_json_markdown_and_plot_beside_bm25_and_minilm(runs, tmp_path):
  """Both peers on the command line (the demo's test asks for BM25 alone: MiniLM's encode
  of its corpora took minutes on 2 cores)."""
  output = tmp_path / 'eval' / 'results.json'
  out = _tool('evaluate', f'--workdir=pre={runs["pre"]},ft={runs["ft"]}',
              f'--suite={runs["suite"]}', f'--output={output}', '--peers=bm25,minilm',
              '--compare=ft@96,pre@96')
  results = json.loads(output.read_text())
  assert results['half'] == 'report' and '(half: report)' in out.stdout  # tables: report
  assert 'ft@96 vs pre@96' in out.stdout and 'P(A>B)' in out.stdout
  assert 0 <= results['comparisons'][0]['mean_task']['p_a_greater'] <= 1
  lo, hi = results['aggregates']['ft@96']['intervals']['mean_task']
  assert lo <= results['aggregates']['ft@96']['mean_task'] <= hi
  systems = set(results['systems'])
  assert {'pre@32', 'pre@96', 'ft@64', 'BM25'} <= systems
  assert 'all-MiniLM-L6-v2' in {s['model'] for s in results['systems'].values()}
  header = (tmp_path / 'eval' / 'results.md').read_text().split('| task |')[1].splitlines()[0]
  assert 'ft@96' in header and 'BM25' in header and 'all-MiniLM-L6-v2' in header
  assert (tmp_path / 'eval' / 'plots' / 'score_vs_dim.png').stat().st_size > 1000
  assert results['aggregates']['ft@96']['borda_rank'] >= 1


def test_uniform_soup_is_the_arithmetic_mean(runs, tmp_path):
  soup = str(tmp_path / 'soup')
  _tool('soup', f'--inputs={runs["pre"]}:2,{runs["pre"]}:4,{runs["ft"]}', f'--output={soup}')
  parts = [final_params(runs['pre'])[0], final_params(runs['ft'])[0]]
  step2, _ = final_params(runs['pre'], step=2)
  got, _ = final_params(soup)
  for a, b, c, s in zip(*(jax.tree.leaves(t) for t in (step2, *parts, got))):
    want = (a.astype(np.float64) + b.astype(np.float64) + c.astype(np.float64)) / 3
    np.testing.assert_allclose(s, want, rtol=1e-6, atol=1e-7)
  assert not np.allclose(jax.tree.leaves(got)[0], jax.tree.leaves(parts[1])[0])
  record = json.loads(open(os.path.join(soup, 'soup.json')).read())
  assert [e['step'] for e in record['inputs']] == [2, 4, final_params(runs['ft'])[1]]


def test_weighted_soup(runs, tmp_path):
  soup = str(tmp_path / 'soup')
  _tool('soup', f'--inputs={runs["pre"]},{runs["ft"]}', '--method=weighted',
        '--weights=3,1', f'--output={soup}')
  a, b = final_params(runs['pre'])[0], final_params(runs['ft'])[0]
  for x, y, s in zip(*(jax.tree.leaves(t) for t in (a, b, final_params(soup)[0]))):
    np.testing.assert_allclose(s, 0.75 * x.astype(np.float64) + 0.25 * y, rtol=1e-6, atol=1e-7)


def test_greedy_soup_never_ends_below_its_best_ingredient(runs, tmp_path):
  soup = str(tmp_path / 'greedy')
  _tool('soup', f'--inputs={runs["pre"]}:2,{runs["pre"]}:4,{runs["ft"]}', '--method=greedy',
        f'--suite={runs["suite"]}', f'--output={soup}')
  record = json.loads(open(os.path.join(soup, 'soup.json')).read())
  assert record['selected_on']['half'] == 'select'  # choices: the select half
  best_alone = max(e['alone'] for e in record['greedy'])
  out = tmp_path / 'eval.json'
  (tmp_path / 'results.json').write_text('{"kept": true}')  # other results beside FILE
  _tool('evaluate', f'--workdir=soup={soup}', f'--suite={runs["suite"]}', f'--output={out}',
        '--peers=none', '--dims=96', '--half=select')
  assert (tmp_path / 'results.json').read_text() == '{"kept": true}'
  assert (tmp_path / 'plots' / 'eval_score_vs_dim.png').exists()
  assert 'soup@96' in (tmp_path / 'eval.md').read_text()
  final = json.loads(out.read_text())['aggregates']['soup@96']['mean_task']
  assert final >= best_alone - 1e-9


def test_soup_refuses_mismatched_trees(runs, tmp_path):
  params, _ = read_params(runs['ft'])
  params['projection'] = params['projection'][:, :64]
  other = str(tmp_path / 'narrow')
  write_soup(other, params, runs['ft'], {})
  info = json.loads(open(os.path.join(other, 'model.json')).read())
  info.update(embed_dim=64, mrl_dims=[32, 64])
  open(os.path.join(other, 'model.json'), 'w').write(json.dumps(info))
  out = _tool('soup', f'--inputs={runs["ft"]},{other}', f'--output={tmp_path / "s"}', check=False)
  assert out.returncode != 0
  assert "'projection'" in out.stderr and '(64, 96)' in out.stderr and '(64, 64)' in out.stderr



def _listing(directory) -> list[str]:
  return sorted(str(p.relative_to(directory)) for p in directory.rglob('*'))


def test_soup_never_replaces_a_training_run_or_an_input(runs, tmp_path):
  run = tmp_path / 'run'
  shutil.copytree(runs['pre'], run)
  before = _listing(run)
  for extra in ([], ['--overwrite']):
    out = _tool('soup', f'--inputs={runs["ft"]}', f'--output={run}', *extra, check=False)
    assert out.returncode != 0 and f'--output={run} holds a training run' in out.stderr
    assert _listing(run) == before
  out = _tool('soup', f'--inputs={runs["ft"]},{run}', f'--output={run}/', '--overwrite',
              check=False)
  assert out.returncode != 0 and 'is one of --inputs' in out.stderr
  assert _listing(run) == before and sorted(os.listdir(tmp_path)) == ['run']
  final_params(str(run))  # still restorable


def test_soup_overwrite_replaces_only_a_previous_soup(runs, tmp_path):
  soup = tmp_path / 'soup'
  _tool('soup', f'--inputs={runs["pre"]},{runs["ft"]}', f'--output={soup}')
  out = _tool('soup', f'--inputs={runs["pre"]}', f'--output={soup}', check=False)
  assert out.returncode != 0 and '--overwrite' in out.stderr
  assert len(json.loads((soup / 'soup.json').read_text())['inputs']) == 2
  _tool('soup', f'--inputs={runs["pre"]}', f'--output={soup}', '--overwrite')
  assert len(json.loads((soup / 'soup.json').read_text())['inputs']) == 1
  for a, b in zip(*(jax.tree.leaves(final_params(d)[0]) for d in (runs['pre'], str(soup)))):
    np.testing.assert_array_equal(a, b)
  assert sorted(os.listdir(tmp_path)) == ['soup']  # nothing left beside it


def test_a_crash_while_writing_a_soup_keeps_the_previous_one(runs, tmp_path, monkeypatch):
  params, _ = read_params(runs['ft'])
  soup = tmp_path / 'soup'
  write_soup(str(soup), params, runs['ft'], {'first': True})

  def crash(*args, **kwargs):
    raise OSError('disk full')
  monkeypatch.setattr(checkpoint, 'save_params_only', crash)
  with pytest.raises(OSError, match='disk full'):
    write_soup(str(soup), params, runs['ft'], {'second': True})
  assert json.loads((soup / 'soup.json').read_text()) == {'first': True}
  final_params(str(soup))  # the previous soup is whole
  assert sorted(os.listdir(tmp_path)) == ['soup']


def test_soup_weights_must_be_finite_non_negative_numbers(runs, tmp_path):
  """NaN or infinite weights made an all-NaN soup with exit 0; each bad --weights is refused
  before any checkpoint is read. The first on the command line; the others through the same
  main() in this process (a process start each would cost seconds and check nothing more)."""
  out = _tool('soup', f'--inputs={runs["pre"]},{runs["ft"]}', '--method=weighted',
              '--weights=nan,1', f'--output={tmp_path / "s"}', check=False)
  assert out.returncode != 0 and '--weights=nan,1' in out.stderr, out.stderr
  assert not (tmp_path / 's').exists()
  for weights, method in (('1,inf', 'weighted'), ('-1,2', 'weighted'), ('0,0', 'weighted'),
                          ('1,x', 'weighted'), ('1', 'weighted'), ('3,1', 'uniform')):
    with flagsaver.flagsaver(inputs=[runs['pre'], runs['ft']], method=method,
                             weights=weights.split(','), output=str(tmp_path / 's')):
      with pytest.raises(app.UsageError, match=re.escape(f'--weights={weights}')):
        soup_main([])
    assert not (tmp_path / 's').exists(), weights


def test_encode_an_empty_file_writes_an_empty_array(runs, tmp_path):
  rows = tmp_path / 'empty.jsonl'
  rows.write_text('\n')
  for dim, width in (([], 96), (['--dim=32'], 32)):
    _tool('encode', f'--workdir={runs["ft"]}', f'--input={rows}', f'--output={tmp_path / "e.npy"}',
          *dim)
    emb = np.load(tmp_path / 'e.npy')
    assert emb.shape == (0, width) and emb.dtype == np.float32


def test_encode_checks_dim_against_the_model_first(runs, tmp_path):
  """Above the model's width: refused before the input is read. Not a trained MRL prefix:
  allowed (truncate and re-normalise, like sentence-transformers' truncate_dim), warned."""
  rows = tmp_path / 'rows.jsonl'
  rows.write_text('{"text": "amber"}\n{"txt": "no text field"}\n')
  out = _tool('encode', f'--workdir={runs["ft"]}', f'--input={rows}',
              f'--output={tmp_path / "x.npy"}', '--dim=500', check=False)
  assert out.returncode != 0 and '--dim=500' in out.stderr and '96' in out.stderr
  assert 'rows.jsonl:2' not in out.stderr and not (tmp_path / 'x.npy').exists()
  rows.write_text('{"text": "amber"}\n{"text": "a copper kettle"}\n')
  out = _tool('encode', f'--workdir={runs["ft"]}', f'--input={rows}',
              f'--output={tmp_path / "x.npy"}', '--dim=50')
  emb = np.load(tmp_path / 'x.npy')
  assert emb.shape == (2, 50)
  np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
  assert '--dim=50 is not one of the MRL prefixes (32, 64, 96)' in out.stderr


def test_evaluate_refuses_dims_the_runs_do_not_have(runs, tmp_path):
  out = _tool('evaluate', f'--workdir={runs["ft"]}', f'--suite={runs["suite"]}', '--peers=none',
              '--dims=32,500', f'--output={tmp_path / "r.json"}', check=False)
  assert out.returncode != 0 and '--dims' in out.stderr and '500' in out.stderr
  assert '96' in out.stderr and not (tmp_path / 'r.json').exists()


def test_packed_calls_round_their_last_batch_to_eighths_of_batch_size():
  """A call's last batch holds the smallest multiple of batch_size/8 rows (and of the
  data-parallel size) that fits its rest, never more than batch_size: at most 8 shapes."""
  counts = lambda bs, shards, n: TextEncoder._row_counts(
      types.SimpleNamespace(batch_size=bs, _shards=shards), n)
  assert counts(64, 1, 130) == [64, 64, 8]
  assert counts(64, 1, 70) == [64, 8] and counts(64, 1, 9) == [16] and counts(64, 1, 57) == [64]
  assert counts(64, 1, 40) == [40]  # a power of two would be 64 rows
  assert counts(64, 4, 3) == [8] and counts(16, 4, 5) == [8]  # multiples of the shards
  assert {counts(64, 1, n)[-1] for n in range(1, 64)} == set(range(8, 65, 8))
