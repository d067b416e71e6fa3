"""`make demo-quick`'s pipeline end to end (real Gemma 3 270M — the default LLM —, real corpora, smoke-test size):
the layout other scripts depend on, a results table holding every system, and a rerun that
runs no stage again.

The corpora are built first with smaller caps than the demo's quick ones and passed with
--corpora: the same builder and the same task types, about half the dev-suite rows
(the evaluate stage took 255 s on the demo's quick suite, 145 s on these; 2 busy cores).
The peer here is BM25 alone: all-MiniLM-L6-v2 (256-token inputs) took 145 s to score the
quick corpora, against 243 s for the demo's five systems of then together (2 busy cores);
evaluate's MiniLM column is checked on a tiny suite in tests/test_tools.py."""

import json
import os
import subprocess
import sys

import pytest

from tests.train_fixtures import ROOT, train_env

pytestmark = pytest.mark.slow

RUNS = ('prefinetune', 'finetune-a', 'finetune-b', 'soup')
SYSTEMS = ('finetune-a', 'finetune-b', 'soup')  # scored by default (no --stage_rows)
# demo.py's quick caps are --max_dev=40 --max_rows=2000 --max_man_pages=40; a 4-step run
# reads under 300 rows of a set.
CORPORA_CAPS = ('--max_dev=8', '--max_rows=300', '--max_man_pages=8', '--gettext_per_catalog=2')


def _demo(workdir, corpora):
  return subprocess.run([sys.executable, '-m', 'gemini_embed.demo', '--quick',
                         f'--workdir={workdir}', f'--corpora={corpora}', '--peers=bm25'],
                        env=train_env(1), capture_output=True, text=True, timeout=1200, cwd=ROOT)


def test_demo_quick_writes_the_documented_layout(tmp_path):
  workdir, corpora = tmp_path / 'demo', tmp_path / 'corpora'
  built = subprocess.run([sys.executable, '-m', 'gemini_embed.data.build_corpora',
                          f'--out={corpora}', *CORPORA_CAPS], env=train_env(1),
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert built.returncode == 0, built.stderr[-4000:]
  out = _demo(workdir, corpora)
  assert out.returncode == 0, out.stderr[-4000:]
  assert not (workdir / 'init').exists()  # the untrained init only with --stage_rows
  for name in RUNS:
    assert os.path.exists(workdir / name / 'model.json'), name
    # one checkpoint kept per run (configs/demo.py: each holds the frozen token table)
    assert [d for d in os.listdir(workdir / name / 'checkpoints') if d.isdigit()] == [
        '0' if name == 'soup' else '4'], name
  for f in ('results.md', 'results.json', 'plots/score_vs_dim.png', 'plots/loss_curves.png'):
    assert (workdir / f).stat().st_size > 0, f
  results = json.loads((workdir / 'results.json').read_text())
  models = {s['model'] for s in results['systems'].values()}
  assert models == set(SYSTEMS) | {'BM25'}
  assert {(c['a'], c['b']) for c in results['comparisons']} == {
      ('finetune-b@768', 'finetune-a@768'), ('soup@768', 'finetune-a@768'),
      ('soup@768', 'finetune-b@768')}
  assert results['classification'] == dict(samples_per_label=8, n_experiments=2)  # smoke size
  assert 'Mean(Task)' in out.stdout and 'demo finished' in out.stdout

  # Rerunning resumes: nothing is retrained or re-scored, the table is printed again.
  again = _demo(workdir, corpora)
  assert again.returncode == 0, again.stderr[-4000:]
  assert '\n$ ' not in again.stdout, again.stdout  # no stage's command ran
  assert again.stdout.count(': done, skipped') == 5  # LLM, 3 trainings, soup
  assert 'step compiled' not in again.stderr
  assert 'already scores these checkpoints and peers' in again.stdout
  assert 'Mean(Task)' in again.stdout
