"""`make recipe`: configs/recipe.py for each stage, the driver's stage list (order,
init_from chaining, mixtures, what a rerun skips), and the curation pipeline's helpers
on tiny files. Nothing here trains or runs a tool: the tools have their own tests."""

import json
import os

import pytest

from gemini_embed import recipe, recipe_projection, run_status
from gemini_embed.configlib import check_config, load_config_file
from gemini_embed.curate import pipeline
from tests.train_fixtures import ROOT

CONFIG = os.path.join(ROOT, 'configs', 'recipe.py')


@pytest.mark.parametrize('arg', [
    'stage=prefinetune', 'stage=finetune,mixture=task,seed=1,init_from=/w/prefinetune',
    'stage=finetune,mixture=language,extra=synthetic_queries+synthetic_classification',
    'stage=prefinetune,tiny', 'stage=finetune,mixture=language,tiny',
    'stage=finetune,llm=gs://bucket/gemma-3-1b'])
def test_recipe_config_passes_the_checks(arg):
  config = check_config(load_config_file(CONFIG, arg), num_devices=8)
  assert config.truncate_layers == (2 if 'tiny' in arg else 0)  # 0: the LLM's full depth
  if 'tiny' not in arg:
    assert config.model.precision == 'params=float32,compute=bfloat16,output=float32'
    assert config.checkpoint.every == 1000
    assert config.data.query_max_len == 128 and config.data.doc_max_len == 256
  if 'stage=prefinetune' in arg:  # packing and gradient caching exclude each other
    assert not config.data.pack and 0 < config.grad_cache_chunk < config.batch_size
  else:
    assert config.data.pack and config.data.num_negatives == 1
  if 'gs://' in arg:
    assert config.init_from == 'gs://bucket/gemma-3-1b'
    assert (config.mesh.data, config.mesh.fsdp) == (1, -1)


def test_recipe_config_names_a_bad_mixture():
  with pytest.raises(ValueError, match=r"configs/recipe.py: mixture='web'"):
    load_config_file(CONFIG, 'stage=finetune,mixture=web')


@pytest.fixture(scope='module')
def plans(tmp_path_factory):
  w = str(tmp_path_factory.mktemp('recipe'))
  cwd = os.getcwd()
  os.chdir(ROOT)  # the driver names configs/recipe.py as the train commands do
  try:
    opts = recipe.Options(workdir=w, corpora=os.path.join(w, 'corpora'))
    yield w, recipe.plan(opts), recipe.plan(recipe.Options(
        workdir=w, corpora=os.path.join(w, 'corpora'), curate=False))
  finally:
    os.chdir(cwd)


def _find(stages, start):
  return next(i for i, s in enumerate(stages) if s.title.startswith(start))


def _config_arg(stage):
  flag = next(a for a in stage.cmd if a.startswith('--config='))
  return dict(kv.split('=', 1) for kv in flag.split(':', 1)[1].split(','))


def test_dry_run_stages_chain_in_order(plans):
  w, stages, _ = plans
  order = [_find(stages, t) for t in ('real corpora', 'offline LLM', 'pre-finetuning',
                                       'curation inputs', 'mine hard negatives', 'filter',
                                       'synthetic queries', 'synthetic classification',
                                       'curated corpora', 'fine-tuning finetune-a',
                                       'fine-tuning finetune-b', 'model soup', 'evaluate')]
  assert order == sorted(order)
  pre = _config_arg(stages[order[2]])
  assert pre['stage'] == 'prefinetune' and pre['corpora'] == f'{w}/corpora'
  mine = stages[order[4]].cmd
  assert f'--workdir={w}/prefinetune' in mine  # the pre-finetuned embedder mines
  a, b = _config_arg(stages[order[9]]), _config_arg(stages[order[10]])
  assert (a['mixture'], a['seed'], b['mixture'], b['seed']) == ('task', '1', 'language', '2')
  for ft in (a, b):
    assert ft['init_from'] == f'{w}/prefinetune' and ft['corpora'] == f'{w}/curated'
    assert ft['extra'] == 'synthetic_queries+synthetic_classification'
  assert f'--inputs={w}/finetune-a,{w}/finetune-b' in stages[order[11]].cmd
  evaluate = ' '.join(stages[order[12]].cmd)
  assert f'soup={w}/soup' in evaluate and '--half=report' in evaluate
  # every fine-tuning set is mined and then filtered
  mined = {s.title.split(': ')[1] for s in stages if s.title.startswith('mine')}
  assert mined == set(recipe.curated_rows(recipe.Options(workdir=w, corpora=f'{w}/corpora')))
  assert {'code_docstring', 'gettext_bitext', 'cldr_names'} <= mined


def test_without_curation_the_fine_tunes_read_the_corpora(plans):
  w, _, stages = plans
  assert not any(s.title.startswith(('mine', 'filter', 'curat')) for s in stages)
  a = _config_arg(stages[_find(stages, 'fine-tuning finetune-a')])
  assert a['corpora'] == f'{w}/corpora' and 'extra' not in a


def test_finished_stages_are_skipped(plans):
  w, stages, _ = plans
  pre, mine = stages[_find(stages, 'pre-finetuning')], stages[_find(stages, 'mine')]
  assert not pre.finished() and not mine.finished()
  os.makedirs(f'{w}/prefinetune')
  run_status.write_status(f'{w}/prefinetune', 'preempted', 3, 10, last_checkpoint=3)
  assert not pre.finished()
  run_status.write_status(f'{w}/prefinetune', 'finished', 10, 10, last_checkpoint=10)
  assert pre.finished()
  out = next(a for a in mine.cmd if a.startswith('--out=')).split('=', 1)[1]
  os.makedirs(os.path.dirname(out), exist_ok=True)
  open(out, 'w').close()
  assert mine.finished()


def test_print_plan_projects_each_training_stage(plans, capsys):
  _, stages, _ = plans
  recipe.print_plan(stages)
  out = capsys.readouterr().out
  assert out.count('$ ') == len(stages)
  table = out[out.index('projected wall time'):]
  for target in recipe_projection.TARGETS:
    assert target in table
  row = next(line for line in table.splitlines() if 'pre-finetuning' in line)
  assert '—' not in row  # measured, hence projected everywhere


def test_train_projection_scales_by_examples_and_flops():
  m = recipe_projection.CPU_STEPS['finetune']
  got = recipe_projection.train_seconds('finetune', steps=10, batch=2 * m.batch)
  assert got['cpu (2 cores)'] == pytest.approx(20 * m.seconds)
  assert got['h100/h200'] == pytest.approx(20 * m.flops / (989e12 * recipe_projection.TRAIN_MFU))


# ---- curate/pipeline.py on tiny files ------------------------------------------------------

def _rows(n):
  return [{'query': f'q{i}', 'positive': f'p{i % 3}', 'negative': f'n{i}'} for i in range(n)]


def _write(path, rows):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)


def _read(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def test_sample_rows_is_seeded_stable_and_in_order(tmp_path):
  _write(str(tmp_path / 'src.jsonl'), _rows(10))
  pipeline.sample_rows(str(tmp_path / 'src.jsonl'), str(tmp_path / 'a.jsonl'), 4, seed=0)
  pipeline.sample_rows(str(tmp_path / 'src.jsonl'), str(tmp_path / 'b.jsonl'), 4, seed=1)
  pipeline.sample_rows(str(tmp_path / 'src.jsonl'), str(tmp_path / 'all.jsonl'), 50, seed=0)
  # numpy's default_rng(seed).permutation(10)[:4], sorted: the rows every run draws
  assert [r['query'] for r in _read(tmp_path / 'a.jsonl')] == ['q2', 'q4', 'q6', 'q7']
  assert [r['query'] for r in _read(tmp_path / 'b.jsonl')] == ['q0', 'q4', 'q7', 'q8']
  assert _read(tmp_path / 'all.jsonl') == _rows(10)
  pipeline.sample_rows(str(tmp_path / 'src.jsonl'), str(tmp_path / 'a.jsonl'), 2, seed=5)
  assert len(_read(tmp_path / 'a.jsonl')) == 4  # an existing sample is kept: tools consumed it


def test_prepare_and_link_corpora(tmp_path):
  corpora, root = str(tmp_path / 'corpora'), str(tmp_path / 'curation')
  _write(f'{corpora}/train/gettext_bitext.jsonl', _rows(6))
  _write(f'{corpora}/train/man_pages.jsonl', _rows(5))  # pydoc_topics absent: skipped
  _write(f'{corpora}/train/{pipeline.LABEL_SET}.jsonl', _rows(7))
  cur = pipeline.Curation(root=root, corpora=corpora, embedder='E', llm='smollm2', k=3)
  cur.prepare({'gettext_bitext': 3}, queries=True, classification=True, max_passages=2)
  assert len(_read(cur.input('gettext_bitext'))) == 3
  assert [r['text'] for r in _read(cur.input('gettext_bitext.corpus'))] == \
      ['p0', 'p1', 'p2', 'p0', 'p1', 'p2']
  assert len(_read(cur.input('passages'))) == 2
  with open(f'{root}/inputs/labels.json') as f:
    assert json.load(f) == {'p0': 'p0', 'p1': 'p1', 'p2': 'p2'}
  step = cur.mine('gettext_bitext')
  assert step.output == f'{root}/curated/gettext_bitext.mined.jsonl'
  assert f'--input={cur.input("gettext_bitext")}' in step.cmd and '--k=3' in step.cmd
  assert f'--input={step.output}' in cur.filter('gettext_bitext').cmd

  filtered = cur.curated('gettext_bitext.filtered')
  _write(filtered, _rows(2))
  _write(cur.curated(pipeline.SYNTHETIC_QUERIES), _rows(1))
  variant = pipeline.link_corpora(str(tmp_path / 'variant'), {
      'gettext_bitext': filtered, pipeline.SYNTHETIC_QUERIES: cur.curated('synthetic_queries')})
  train = os.path.join(variant, 'train')
  assert sorted(os.listdir(train)) == ['gettext_bitext.jsonl', 'synthetic_queries.jsonl']
  assert os.path.realpath(f'{train}/gettext_bitext.jsonl') == os.path.realpath(filtered)
  assert _read(f'{train}/gettext_bitext.jsonl') == _rows(2)


def test_empty_curated_file_stops_with_its_name(tmp_path):
  empty = str(tmp_path / 'curated' / 'cldr_names.filtered.jsonl')
  _write(empty, [])
  with pytest.raises(SystemExit, match=r'cldr_names\.filtered\.jsonl.*--threshold'):
    recipe._link_curated(str(tmp_path / 'curated-corpora'), {'cldr_names': empty})
  assert not os.path.exists(tmp_path / 'curated-corpora' / 'train')
