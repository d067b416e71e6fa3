r"""Builds training data and a development evaluation suite from real local text.

    python -m gemini_embed.data.build_corpora --out=runs/corpora [--max_rows=20000]

Writes OUT/train/NAME.jsonl (the training format; names in
corpora/training_sets.py, which the configs read) and the development suite in two
disjoint halves, OUT/dev/select/TYPE/NAME/ (every choice a tool makes) and
OUT/dev/report/TYPE/NAME/ (the numbers in tables), each in the suite layout of
design.md, with OUT/dev/halves.json (the split rule, its seed, each half's tasks and
sizes; corpora/output.py). Sources, all installable offline (environment.md):
Python's stdlib, WordNet 3.0, gettext catalogs, man pages, CLDR names (babel),
FreeDict. It installs what is missing (`apt-get install -y wordnet-base
dict-freedict-eng-fra dict-freedict-deu-eng`, `pip install babel==2.18.0`) unless
--noinstall, and the output is deterministic: splits are by source unit (module,
synset, catalog, entity, headword, page) and every sample is seeded.
Never used: the sources that shared/docs/environment.md reserves for independent
evaluation.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time

from absl import app, flags, logging

from gemini_embed.data.corpora import (cldr_names, freedict, gettext_catalogs, man_pages,
                                       python_stdlib, wordnet, wordnet_dev)
from gemini_embed.data.corpora.output import CorpusOutput

SOURCES = ('stdlib', 'wordnet', 'gettext', 'man', 'cldr', 'freedict')
APT_PACKAGES = {'wordnet': ['wordnet-base'],
                'freedict': ['dict-freedict-eng-fra', 'dict-freedict-deu-eng']}
BABEL_PIN = 'babel==2.18.0'
_OLD_LAYOUT = ('retrieval', 'reranking', 'classification', 'clustering', 'pair_classification',
               'sts', 'bitext')  # OUT/dev/TYPE/ (eval/suite.py's TASK_TYPES) before the halves
HALF_RULE = ("a dev row's source unit (synset, function, English message, man page, headword, "
             "entity) goes to select when crc32('half:<seed>:<unit>') is even, else report")

_OUT = flags.DEFINE_string('out', None, 'output directory (bulk data: keep it out of the repo)')
_SOURCES = flags.DEFINE_list('sources', list(SOURCES), f'which of {SOURCES} to build')
_DEV_PERCENT = flags.DEFINE_float('dev_percent', 10.0, 'percent of source units held out as dev')
_MAX_ROWS = flags.DEFINE_integer('max_rows', 20_000, 'cap per training set (0: no cap)')
_MAX_DEV = flags.DEFINE_integer('max_dev', 500, 'cap per evaluation set (queries / test rows)')
_MAX_MAN_PAGES = flags.DEFINE_integer('max_man_pages', 300, 'man pages rendered (~40 ms each)')
_GETTEXT_PER_CATALOG = flags.DEFINE_integer('gettext_per_catalog', 40,
                                            'training pairs per (domain, language) catalog')
_SPLIT_SEED = flags.DEFINE_integer('split_seed', 0, 'seed of the select/report split of dev units')
_INSTALL = flags.DEFINE_bool('install', True, 'apt-get / pip install missing sources')


def _apt_install(packages: list[str]) -> None:
  if not shutil.which('apt-get') or os.geteuid() != 0:
    raise RuntimeError('missing Debian packages; run: sudo apt-get install -y '
                       + ' '.join(packages))
  logging.info('apt-get install %s', packages)
  quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
  env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
  if subprocess.run(['apt-get', 'install', '-y', '-qq', *packages], env=env, **quiet).returncode:
    subprocess.run(['apt-get', 'update', '-qq'], env=env, check=True, **quiet)
    subprocess.run(['apt-get', 'install', '-y', '-qq', *packages], env=env, check=True, **quiet)


def ensure_sources(sources: list[str], install: bool) -> None:
  """Installs (or says how to install) what the chosen sources read."""
  missing_apt = []
  if 'wordnet' in sources and not os.path.exists(os.path.join(wordnet.WORDNET_DIR, 'data.noun')):
    missing_apt += APT_PACKAGES['wordnet']
  dictionaries = [os.path.join(freedict.DICTD_DIR, f'{n}.index') for n in freedict.DICTIONARIES]
  if 'freedict' in sources and not all(map(os.path.exists, dictionaries)):
    missing_apt += APT_PACKAGES['freedict']
  if missing_apt:
    if not install:
      raise RuntimeError(f'missing sources; run: apt-get install -y {" ".join(missing_apt)}')
    _apt_install(missing_apt)
  if 'cldr' in sources:
    try:
      importlib.import_module('babel')
    except ImportError:
      if not install:
        raise RuntimeError(f'missing babel; run: {sys.executable} -m pip install {BABEL_PIN}')
      subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', BABEL_PIN], check=True)
      importlib.invalidate_caches()


def build(out_dir: str, sources=SOURCES, *, dev_percent: float = 10.0, max_rows: int = 20_000,
          max_dev: int = 500, max_man_pages: int = 300, gettext_per_catalog: int = 40,
          install: bool = True, split_seed: int = 0) -> CorpusOutput:
  unknown = set(sources) - set(SOURCES)
  if unknown:
    raise ValueError(f'--sources: unknown {sorted(unknown)}; choose from {SOURCES}')
  ensure_sources(list(sources), install)
  for task_type in _OLD_LAYOUT:  # a suite of the older, unsplit layout: replaced by the halves
    stale = os.path.join(out_dir, 'dev', task_type)
    if os.path.isdir(stale):
      logging.warning('removing %s (the older dev layout; dev/select and dev/report replace it)',
                      stale)
      shutil.rmtree(stale)
  out = CorpusOutput(out_dir, split_seed)
  caps = dict(dev_percent=dev_percent, max_rows=max_rows, max_dev=max_dev)
  timings = {}
  for source in sources:
    start = time.time()
    if source == 'stdlib':
      python_stdlib.build(out, **caps)
    elif source == 'wordnet':
      wordnet.build(out, write_dev=wordnet_dev.write_dev, **caps)
    elif source == 'gettext':
      gettext_catalogs.build(out, per_catalog=gettext_per_catalog, **caps)
    elif source == 'man':
      if not man_pages.build(out, max_pages=max_man_pages, **caps):
        logging.warning('no man pages here (apt-get install -y man-db manpages); '
                        'configs/prefinetune.py reads train/man_pages.jsonl')
    elif source == 'cldr':
      cldr_names.build(out, **caps)
    elif source == 'freedict':
      freedict.build(out, **caps)
    timings[source] = time.time() - start
  out.write_halves(HALF_RULE)
  with open(os.path.join(out_dir, 'README.txt'), 'w', encoding='utf-8') as f:
    f.write(f'Built by `python -m gemini_embed.data.build_corpora` (sources {list(sources)}, '
            f'dev_percent={dev_percent}, max_rows={max_rows}, max_dev={max_dev}).\n'
            f'dev/select and dev/report: disjoint halves ({HALF_RULE}; seed {split_seed}).\n'
            'dev/*/sts/wordnet_*_wup scores are WordNet Wu-Palmer similarity x 5 of the two '
            'texts\' synsets: taxonomy-derived, not human judgements.\n\n'
            + out.summary() + '\n')
  out.timings = timings
  return out


def _folder_bytes(folder: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def main(argv):
  del argv
  if not _OUT.value:
    raise app.UsageError('--out=DIR is required (e.g. runs/corpora)')
  start = time.time()
  out = build(_OUT.value, _SOURCES.value, dev_percent=_DEV_PERCENT.value,
              max_rows=_MAX_ROWS.value, max_dev=_MAX_DEV.value,
              max_man_pages=_MAX_MAN_PAGES.value, gettext_per_catalog=_GETTEXT_PER_CATALOG.value,
              install=_INSTALL.value, split_seed=_SPLIT_SEED.value)
  print(f'corpora in {_OUT.value} ({_folder_bytes(_OUT.value) / 2**20:.1f} MiB, '
        f'{time.time() - start:.0f} s: ' +
        ', '.join(f'{k} {v:.1f} s' for k, v in out.timings.items()) + ')')
  print(out.summary())


if __name__ == '__main__':
  app.run(main)
