"""`gemini_embed.export` → SentenceTransformer(OUT), offline, per model family: the same
embeddings as our encoder (encode's TextEncoder on the restored run) within 1e-5, for
queries with their prompt and documents, at full width and at an MRL truncate_dim.

The backbones are tiny random transformers models (tests/models/hf_fixtures.py); Gemma 3's
sliding window (6) is shorter than the texts, so its bidirectional window semantics are
exercised. Llama carries a learned temperature (exported without it).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from gemini_embed.encoding import load_run
from gemini_embed.eval.embeddings import mrl_view
from gemini_embed.export import export, parse_workdir
from gemini_embed.models.hf_import import load_hf_embedder
from tests.export_fixtures import DOCUMENTS, MRL_DIMS, QUERIES, read_json, write_workdir
from tests.models.hf_fixtures import FAMILIES

pytest.importorskip('torch')
st = pytest.importorskip('sentence_transformers')

TOL = 1e-5


@pytest.fixture(scope='module', params=FAMILIES)
def exported(request, tmp_path_factory):
  family = request.param
  path = str(tmp_path_factory.mktemp(f'export-{family}'))
  workdir = write_workdir(path, family, temperature=0.05 if family == 'llama' else None)
  out = os.path.join(path, 'out')
  summary = export(workdir, out)
  run = load_run(workdir, mesh_sizes={'data': -1})
  encoder = run.encoder(batch_size=8)
  ours = {('query', 'retrieval'): encoder(QUERIES, 'query', 'retrieval'),
          ('query', 'sts'): encoder(QUERIES, 'query', 'sts'),
          ('document', None): encoder(DOCUMENTS, 'document', 'retrieval')}
  return family, workdir, out, summary, ours


def _theirs(out, texts, kind, prompt_name=None, dim=None):
  model = st.SentenceTransformer(out, trust_remote_code=True, local_files_only=True,
                                 truncate_dim=dim, device='cpu')
  if kind == 'query':
    return model.encode_query(texts, prompt_name=prompt_name, normalize_embeddings=True)
  return model.encode_document(texts, normalize_embeddings=True)


@pytest.mark.parametrize('dim', [None, MRL_DIMS[0]])
def test_sentence_transformers_matches_our_encoder(exported, dim):
  family, _, out, summary, ours = exported
  assert summary['remote_code'] == (family != 'gemma3')
  for (kind, task), want in ours.items():
    texts = QUERIES if kind == 'query' else DOCUMENTS
    got = _theirs(out, texts, kind, prompt_name=task, dim=dim)
    want = mrl_view(want, dim or want.shape[1])
    err = float(np.max(np.abs(got - want)))
    print(f'{family} {kind} {task} dim={dim}: max |ST - ours| = {err:.1e}')
    assert got.shape == want.shape
    assert err < TOL, (family, kind, task, dim, err)


def test_prompts_matter(exported):
  """Guards the test above: without the prompt, the query embeddings differ."""
  _, _, out, _, ours = exported
  model = st.SentenceTransformer(out, trust_remote_code=True, local_files_only=True, device='cpu')
  bare = model.encode(QUERIES, normalize_embeddings=True)
  assert np.max(np.abs(bare - mrl_view(ours[('query', 'retrieval')], bare.shape[1]))) > 1e-2


@pytest.mark.parametrize('exported', ['gemma3'], indirect=True)
def test_gemma_window_is_exercised(exported, tmp_path):
  """Guards the parity test: the same export with Gemma 3's window widened past the texts
  embeds the long document differently, so the window semantics are under test."""
  import json
  import shutil
  _, _, out, _, ours = exported
  wide = str(tmp_path / 'wide')
  shutil.copytree(out, wide)
  config = read_json(os.path.join(wide, 'config.json'))
  assert config['use_bidirectional_attention'] and config['sliding_window'] == 6
  config['sliding_window'] = 128
  with open(os.path.join(wide, 'config.json'), 'w') as f:
    json.dump(config, f)
  got = _theirs(wide, DOCUMENTS, 'document')
  want = mrl_view(ours[('document', None)], got.shape[1])
  assert np.max(np.abs(got - want)) > 1e-3


def test_files_and_card(exported):
  family, workdir, out, summary, _ = exported
  assert read_json(os.path.join(out, 'modules.json'))[2]['path'] == '2_Dense'
  dense = read_json(os.path.join(out, '2_Dense', 'config.json'))
  assert dense['bias'] is False and dense['activation_function'].endswith('Identity')
  prompts = read_json(os.path.join(out, 'config_sentence_transformers.json'))['prompts']
  assert prompts['query'] == 'task: retrieval | query: '
  assert prompts['document'] == 'title: none | text: '
  card = open(os.path.join(out, 'README.md')).read()
  assert 'normalize_embeddings=True' in card and 'truncate_dim' in card
  assert ('trust_remote_code=True' in card) == (family != 'gemma3')
  model = st.SentenceTransformer(out, trust_remote_code=True, local_files_only=True, device='cpu')
  assert model.max_seq_length == summary['max_seq_length']


def test_exported_weights_reimport_bitwise(exported):
  """The export's safetensors read back by our HF importer: every backbone tensor equal."""
  import jax
  from flax import nnx
  from flax.traverse_util import flatten_dict

  from gemini_embed import sharding
  from gemini_embed.checkpoint import restore_embedder
  _, workdir, out, _, _ = exported
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  # An untied LM head is not exported (not part of the embedding): import without one.
  back, _ = load_hf_embedder(out, 8, mesh, sharding.DEFAULT_RULES, tie_embeddings=True)
  saved, _ = restore_embedder(workdir)
  a = flatten_dict(nnx.to_pure_dict(nnx.state(back.backbone)))
  b = flatten_dict(nnx.to_pure_dict(nnx.state(saved.backbone)))
  b.pop(('lm_head',), None)
  assert a.keys() == b.keys()
  for path, value in b.items():
    np.testing.assert_array_equal(np.asarray(a[path]), np.asarray(value), err_msg=str(path))


@pytest.mark.parametrize('exported', ['gemma3'], indirect=True)  # one family is enough
def test_the_command_line_at_a_step_in_bfloat16(exported, tmp_path):
  """`python -m gemini_embed.export --workdir=DIR:STEP --dtype=bfloat16`: bfloat16 tensors
  that load and embed like the float32 export up to bfloat16 rounding."""
  import json
  import struct

  from tests.train_fixtures import ROOT, train_env
  _, workdir, _, _, ours = exported
  out = str(tmp_path / 'bf16')
  run = subprocess.run([sys.executable, '-m', 'gemini_embed.export', f'--workdir={workdir}:3',
                        f'--output={out}', '--dtype=bfloat16'], env=train_env(1), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr[-3000:]
  assert '(step 3, gemma3, 32 dims)' in run.stdout
  with open(os.path.join(out, 'model.safetensors'), 'rb') as f:
    header = json.loads(f.read(struct.unpack('<Q', f.read(8))[0]))
  assert {v['dtype'] for k, v in header.items() if k != '__metadata__'} == {'BF16'}
  got = _theirs(out, DOCUMENTS, 'document')
  want = mrl_view(ours[('document', None)], got.shape[1])
  err = float(np.max(np.abs(got - want)))
  print(f'bfloat16 export: max |ST - ours (float32)| = {err:.1e}')
  assert 1e-5 < err < 0.05  # rounded, not broken
  bad = subprocess.run([sys.executable, '-m', 'gemini_embed.export', f'--workdir={workdir}:9',
                        f'--output={out}'], env=train_env(1), cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
  assert bad.returncode != 0 and 'no checkpoint at step 9; available: [3]' in bad.stderr


@pytest.mark.parametrize('exported', ['gemma3'], indirect=True)
def test_hf_format_with_transformers_alone(exported, tmp_path):
  """--format=hf: AutoModel + AutoTokenizer, mean pooling and the projection by hand
  (NumPy) give our document embeddings."""
  import torch
  import transformers
  from safetensors.numpy import load_file
  _, workdir, _, _, ours = exported
  out = str(tmp_path / 'hf')
  export(workdir, out, fmt='hf')
  assert not os.path.exists(os.path.join(out, 'modules.json'))
  tok = transformers.AutoTokenizer.from_pretrained(out)
  model = transformers.AutoModel.from_pretrained(out).eval()
  texts = ['title: none | text: ' + t for t in DOCUMENTS]
  batch = tok(texts, padding=True, truncation=True, return_tensors='pt')
  with torch.no_grad():
    hidden = model(**batch).last_hidden_state.numpy().astype(np.float64)
  mask = batch['attention_mask'].numpy()[..., None]
  pooled = (hidden * mask).sum(1) / mask.sum(1)
  emb = pooled @ load_file(os.path.join(out, 'projection.safetensors'))['projection']
  got = emb / np.linalg.norm(emb, axis=1, keepdims=True)
  want = mrl_view(ours[('document', None)], got.shape[1])
  assert float(np.max(np.abs(got - want))) < TOL


def test_parse_workdir():
  assert parse_workdir('runs/demo/soup') == ('runs/demo/soup', None)
  assert parse_workdir('runs/demo/soup:40') == ('runs/demo/soup', 40)
  assert parse_workdir('gs://b/run:7') == ('gs://b/run', 7)


def _write_local_suite(root) -> dict:
  """A retrieval task (query i ↔ document i) and an STS task in the suite layout."""
  from tests.data.fixtures import write_jsonl
  ret = os.path.join(root, 'retrieval', 'local')
  write_jsonl(os.path.join(ret, 'corpus.jsonl'),
              [{'_id': f'd{i}', 'title': '', 'text': t} for i, t in enumerate(DOCUMENTS)])
  write_jsonl(os.path.join(ret, 'queries.jsonl'),
              [{'_id': f'q{i}', 'text': t} for i, t in enumerate(QUERIES)])
  with open(os.path.join(ret, 'qrels.tsv'), 'w') as f:
    f.write('query-id\tcorpus-id\tscore\n' + ''.join(f'q{i}\td{i}\t1\n' for i in range(4)))
  # STS encodes both sides as queries: texts within query_max_len (a longer one is cut at
  # query_max_len here, at max_seq_length by sentence-transformers: the documented difference)
  short = [d for d in DOCUMENTS if len(d.split()) < 20]
  pairs = [(q, d, float(i + j) % 5) for i, q in enumerate(QUERIES) for j, d in enumerate(short)]
  write_jsonl(os.path.join(root, 'sts', 'local', 'test.jsonl'),
              [{'text1': a, 'text2': b, 'score': s} for a, b, s in pairs])
  return dict(pairs=pairs)


@pytest.mark.parametrize('exported', ['llama'], indirect=True)  # remote code and a learned τ
def test_mteb_on_the_export_reproduces_our_runners(exported, tmp_path):
  """mteb (its sentence-transformers wrapper, the exported prompts) on local tasks gives
  the scores our own runners give with the restored run (what `evaluate` computes)."""
  _, workdir, out, _, _ = exported
  mteb = pytest.importorskip('mteb')
  from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

  from gemini_embed.eval.suite import load_suite
  from gemini_embed.eval.task_runners import RUNNERS
  from tests.eval.mteb_tasks import local_tasks

  _write_local_suite(str(tmp_path))
  tasks = {t.type: t for t in load_suite(str(tmp_path))}
  encoder = load_run(workdir, mesh_sizes={'data': -1}).encoder(batch_size=8)
  ours = {kind: next(iter(RUNNERS[kind](task, encoder, None, kind).values())).metrics
          for kind, task in tasks.items()}
  local = local_tasks(tasks.values())

  model = SentenceTransformerEncoderWrapper(
      st.SentenceTransformer(out, trust_remote_code=True, local_files_only=True, device='cpu'))
  result = mteb.evaluate(model, [local['retrieval'], local['sts']], cache=None,
                         show_progress_bar=False)
  theirs = {r.task_name: r.scores['test'][0] for r in result.task_results}
  for metric in ('ndcg_at_10', 'map_at_100', 'mrr_at_10'):
    assert theirs['LocalRetrieval'][metric] == pytest.approx(ours['retrieval'][metric], abs=1e-5)
  for metric in ('cosine_spearman', 'cosine_pearson'):
    assert theirs['LocalSts'][metric] == pytest.approx(ours['sts'][metric], abs=1e-5)
  print('mteb on the export:', {t: {m: round(v, 4) for m, v in s.items()
                                    if m in ('ndcg_at_10', 'cosine_spearman')}
                                for t, s in theirs.items()})
