"""Corpora builders: parsers on hand-made inputs in each source's format, splits that keep
dev units out of training, and a capped real build whose files pass strict loading."""

import glob
import gzip
import json
import os
import struct


from gemini_embed.data import build_corpora, sources
from gemini_embed.data.corpora import (freedict, gettext_catalogs, man_pages, python_stdlib, wordnet,
                                       wordnet_dev)
from gemini_embed.data.corpora.output import HALVES, CorpusOutput, half_of, is_dev
from gemini_embed.data.corpora.training_sets import TRAINING_SETS
from gemini_embed.data.spec import dataset_entry
from gemini_embed.eval.suite import load_suite
from tests.data.fixtures import load_jsonl

DOG = ('02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 002 @ 02083346 n 0000 '
       '@ 01317541 n 0000 | a member of the genus Canis; "the dog barked all night"  ')


def _both(root, relative):
  """{half: rows} of one dev file in each half that has it."""
  return {h: load_jsonl(root / 'dev' / h / relative) for h in HALVES
          if (root / 'dev' / h / relative).exists()}


def test_wordnet_line_parses_lemmas_gloss_examples_and_hypernyms():
  s = wordnet.parse_line(DOG, 'n')
  assert s.key == 'n02084071' and wordnet.LEXNAMES[s.lexname][0] == 'noun.animal'
  assert s.lemmas == ['dog', 'domestic dog', 'Canis familiaris']
  assert s.definition == 'a member of the genus Canis'
  assert s.examples == ['the dog barked all night'] and s.hypernyms == ['n02083346', 'n01317541']
  assert wordnet.parse_line('  1 This software and database', 'n') is None


def _mini_wordnet(folder, n=120):
  lines = ['  1 license header\n', '00000001 03 n 01 entity 0 000 | that which exists\n']
  for h in range(4):
    lines.append(f'0000010{h} 05 n 01 group_{h} 0 001 @ 00000001 n 0000 | group {h} things\n')
  for i in range(n):
    lines.append(f'{1000 + i:08d} {5 + i % 3:02d} n 02 word_{i} 0 alias_{i} 0 001 '
                 f'@ 0000010{i % 4} n 0000 | definition number {i}; "example {i}"\n')
  os.makedirs(folder)
  for name in wordnet.POS_FILES:
    with open(os.path.join(folder, f'data.{name}'), 'w') as f:
      f.writelines(lines if name == 'noun' else [])


def test_wordnet_build_keeps_dev_synsets_out_of_training(tmp_path):
  _mini_wordnet(tmp_path / 'wn')
  out = CorpusOutput(str(tmp_path / 'out'))
  wordnet.build(out, write_dev=wordnet_dev.write_dev, dev_percent=30, max_rows=0, max_dev=20, folder=str(tmp_path / 'wn'))
  keys = (['n00000001'] + [f'n0000010{h}' for h in range(4)] +
          [f'n{1000 + i:08d}' for i in range(120)])
  dev_keys = {k for k in keys if is_dev(k, 30)}
  assert 10 < len(dev_keys) < 70
  dev_words = {f'word {int(k[1:]) - 1000}' for k in dev_keys if int(k[1:]) >= 1000}
  train = load_jsonl(tmp_path / 'out/train/wordnet_reverse_dictionary.jsonl')
  train_texts = {r['positive'].split(',')[0] for r in train} | \
      {r.get('negative', ',').split(',')[0] for r in train}
  assert train_texts and not train_texts & dev_words
  halves = _both(tmp_path / 'out', 'retrieval/wordnet_reverse_dictionary/queries.jsonl')
  assert set(halves) == set(HALVES)
  for half, queries in halves.items():
    assert {q['_id'] for q in queries} <= dev_keys
    assert all(half_of(q['_id']) == half for q in queries)  # the synset decides the half
  category = load_jsonl(tmp_path / 'out/train/wordnet_category.jsonl')
  assert {r['positive'] for r in category} <= {d for _, d in wordnet.LEXNAMES.values()}
  assert all(r['negative'] != r['positive'] for r in category)
  assert len(category) == len(train)  # max_rows=0: every training synset, not one per category
  synonyms = load_jsonl(tmp_path / 'out/train/wordnet_synonyms.jsonl')
  assert all({r['query'], r['positive']} == {f'word {r["query"].split()[1]}',
                                             f'alias {r["query"].split()[1]}'} for r in synonyms)


def _write_mo(path, messages):
  """A GNU .mo file (the documented layout: header, two offset tables, strings)."""
  messages = dict(sorted({'': 'Content-Type: text/plain; charset=UTF-8\n', **messages}.items()))
  ids = [k.encode() for k in messages]
  strs = [v.encode() for v in messages.values()]
  start = 28 + 16 * len(ids)
  table, data = [], b''
  for s in ids + strs:
    table.append((len(s), start + len(data)))
    data += s + b'\0'
  header = struct.pack('<7I', 0x950412de, 0, len(ids), 28, 28 + 8 * len(ids), 0, 0)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(header + b''.join(struct.pack('<2I', *t) for t in table) + data)


def test_gettext_pairs_split_by_domain(tmp_path):
  domains = [f'app{i}' for i in range(12)]
  for d in domains + ['iso_3166']:
    for lang in ('de', 'ru'):
      _write_mo(str(tmp_path / f'locale/{lang}/LC_MESSAGES/{d}.mo'),
                {f'Open the {d} file number {k}': f'{lang} {d[::-1]} n{k}' for k in range(6)} |
                {'%s%s%s': 'x', 'OK': 'Gut', 'menu\x04Save the file now': f'{lang} save'})
  pairs = gettext_catalogs.read_catalog(str(tmp_path / 'locale/de/LC_MESSAGES/app1.mo'))
  assert ('Save the file now', 'de save') in pairs and len(pairs) == 7
  out = CorpusOutput(str(tmp_path / 'out'))
  gettext_catalogs.build(out, dev_percent=30, max_rows=0, max_dev=50,
                         folder=str(tmp_path / 'locale'))
  dev = {d for d in domains if is_dev(d, 30)}
  assert dev and dev != set(domains)
  train = load_jsonl(tmp_path / 'out/train/gettext_bitext.jsonl')
  train_domains = {r['positive'].split()[1][::-1] for r in train
                   if not r['positive'].endswith('save')}
  assert train_domains == set(domains) - dev
  rows = [r for h in _both(tmp_path / 'out', 'bitext/gettext_en_ru/test.jsonl').values() for r in h]
  assert rows and {r['tgt'].split()[1][::-1] for r in rows} <= dev
  for lang in ('de', 'ru'):  # a message in LANG → its English original
    halves = _both(tmp_path / 'out', f'retrieval/gettext_xling_{lang}_en/corpus.jsonl')
    english = {h: {r['text'] for r in docs} for h, docs in halves.items()}
    assert english and all(t.split()[2] in dev | {'now'} for ts in english.values() for t in ts)
    assert not english.get('select', set()) & english.get('report', set())
    for half, texts in english.items():  # the English message decides the half
      assert all(half_of(t.casefold()) == half for t in texts)


def test_freedict_reads_dictd_files(tmp_path):
  entries = [('apple', 'apple /ˈæpl/ <n>\n1. pomme <f>\n'), ('Berg', 'Berg /bɛrk/\nmountain\n'),
             ('cat', 'cat\n   Note: no translation\n')]
  data, index = b'', []
  b64 = lambda n: ''.join(freedict._B64[(n >> s) & 63] for s in (18, 12, 6, 0)).lstrip('A') or 'A'
  for word, entry in entries:
    raw = entry.encode()
    index.append(f'{word.lower()}\t{b64(len(data))}\t{b64(len(raw))}\n')
    data += raw
  with gzip.open(tmp_path / 'freedict-eng-fra.dict.dz', 'wb') as f:
    f.write(data)
  (tmp_path / 'freedict-eng-fra.index').write_text(''.join(index))
  assert freedict.entries('freedict-eng-fra', str(tmp_path)) == [('apple', 'pomme'),
                                                                 ('Berg', 'mountain')]


def test_stdlib_functions_drop_the_docstring_from_the_code():
  source = ('def outer(x):\n  """Return x doubled, or more."""\n  # why\n  y = x * 2\n'
            '  def inner():\n    """Nested helpers are not separate examples."""\n    return 1\n'
            '  return y\n\nclass K:\n  def m(self):\n    """Short doc."""\n    return 1\n'
            '  def n(self, a):\n    """Add a to the total of the object."""\n    self.t += a\n'
            '    return self.t\n')
  functions = python_stdlib.module_functions('mod', source)
  assert [f.qualname for f in functions] == ['mod.outer', 'mod.K.n']
  assert functions[0].code.startswith('def outer(x):\n  # why') and '"""Return' not in \
      functions[0].code
  assert functions[1].summary == 'Add a to the total of the object.'


def test_man_page_sections():
  text = ('LS(1)   User Commands   LS(1)\n\nNAME\n       ls - list directory contents\n\n'
          'DESCRIPTION\n       List information about the FILEs (the current directory by '
          'default).\n       Sort entries alphabetically if none of the options is given.\n\n'
          '       -a, --all\n              do not ignore entries starting with .\n')
  name, paragraphs = man_pages.page_pairs(text)
  assert name == 'ls - list directory contents'
  assert paragraphs == ['List information about the FILEs (the current directory by default). '
                        'Sort entries alphabetically if none of the options is given.']


def test_a_capped_real_build_passes_strict_loading(tmp_path):
  available = ['stdlib', 'man']
  if os.path.exists(os.path.join(wordnet.WORDNET_DIR, 'data.noun')):
    available.append('wordnet')
  if glob.glob('/usr/share/locale/*/LC_MESSAGES/*.mo'):
    available.append('gettext')
  if os.path.exists(os.path.join(freedict.DICTD_DIR, 'freedict-eng-fra.index')):
    available.append('freedict')
  try:
    import babel  # noqa: F401
    available.append('cldr')
  except ImportError:
    pass
  out = build_corpora.build(str(tmp_path), available, max_rows=300, max_dev=40,
                            max_man_pages=8, gettext_per_catalog=2, install=False)
  report = sources.InputReport()
  built = sorted(os.path.basename(p)[:-6] for p in glob.glob(str(tmp_path / 'train/*.jsonl')))
  assert {'code_docstring', 'stdlib_docs', 'pydoc_topics'} <= set(built) <= set(TRAINING_SETS)
  for name in built:
    rows = sources.load_examples(name, dataset_entry(f'train/{name}.jsonl', 't'),
                                 root=str(tmp_path), strict=True, max_chars=20_000, report=report)
    assert 0 < len(rows) <= 300
  dev_packages = set()
  for half in HALVES:
    folder = tmp_path / 'dev' / half / 'retrieval/stdlib_code'
    qrels = (folder / 'qrels.tsv').read_text().splitlines()
    assert qrels[0] == 'query-id\tcorpus-id\tscore'
    corpus = {r['_id'] for r in load_jsonl(folder / 'corpus.jsonl')}
    assert {line.split('\t')[1] for line in qrels[1:]} <= corpus
    dev_packages |= {q['_id'].split('.')[0] for q in load_jsonl(folder / 'queries.jsonl')}
    for task in load_suite(tmp_path / 'dev' / half):  # each half a complete, loadable suite
      assert task.name
  train_packages = {r['query'].split('.')[0] for r in load_jsonl(tmp_path / 'train/stdlib_docs.jsonl')}
  assert dev_packages and not dev_packages & train_packages
  assert 'train/code_docstring' in out.summary()
  _check_no_unit_in_training_and_halves_apart(tmp_path, available)
  halves = json.loads((tmp_path / 'dev/halves.json').read_text())
  assert halves['halves'] == list(HALVES) and halves['seed'] == 0
  assert halves['tasks']['report']['retrieval/stdlib_code'] > 0


def _units_of_dev(root, half, source):
  """The source units (as the builders name them) that one half's tasks of `source` hold."""
  d = root / 'dev' / half
  rows = lambda rel: load_jsonl(d / rel) if (d / rel).exists() else []
  if source == 'stdlib':
    return ({q['_id'] for q in rows('retrieval/stdlib_code/queries.jsonl')} |
            {q['_id'] for q in rows('retrieval/stdlib_code_to_doc/queries.jsonl')})
  if source == 'wordnet':
    return ({q['_id'] for q in rows('retrieval/wordnet_reverse_dictionary/queries.jsonl')} |
            {q['_id'] for q in rows('retrieval/wordnet_examples/queries.jsonl')})
  if source == 'gettext':
    english = {r['src'].casefold() for p in d.glob('bitext/gettext_en_*') for r in
               load_jsonl(p / 'test.jsonl')}
    for p in d.glob('retrieval/gettext_xling_*_en'):
      english |= {r['text'].casefold() for r in load_jsonl(p / 'corpus.jsonl')}
    return english | {r['query'].casefold() for r in rows('reranking/gettext_translations/test.jsonl')}
  if source == 'freedict':
    return {r['src'].casefold() for p in d.glob('bitext/freedict_*') for r in load_jsonl(p / 'test.jsonl')}
  if source == 'cldr':
    return {r['src'] for r in rows('bitext/cldr_names/test.jsonl')}
  return set()


TRAIN_QUERIES = {'stdlib': 'code_docstring', 'gettext': 'gettext_bitext',
                 'freedict': 'freedict_bitext', 'cldr': 'cldr_names'}


def _check_no_unit_in_training_and_halves_apart(root, available):
  for source in available:
    select, report = (_units_of_dev(root, h, source) for h in HALVES)
    assert not select & report, (source, sorted(select & report)[:5])
    if source in TRAIN_QUERIES and (root / f'train/{TRAIN_QUERIES[source]}.jsonl').exists():
      train = {r['query'].casefold() for r in load_jsonl(root / f'train/{TRAIN_QUERIES[source]}.jsonl')}
      if source == 'stdlib':  # the unit is the package: no dev function's package is trained on
        train = {r['query'] for r in load_jsonl(root / 'train/stdlib_docs.jsonl')}
        assert not {u.split('.')[0] for u in select | report} & {q.split('.')[0] for q in train}
      else:
        assert not {u.casefold() for u in select | report} & train, source


def test_corpus_output_splits_rows_queries_and_their_documents_by_unit(tmp_path):
  out = CorpusOutput(str(tmp_path))
  units = [f'unit{i}' for i in range(40)]
  out.retrieval('r', [(f'q{i}', f'query {i}') for i in range(40)],
                [(f'd{i}', '', f'doc {i}') for i in range(40)] + [('extra', '', 'unjudged')],
                [(f'q{i}', f'd{i}') for i in range(40)], unit=lambda i: units[int(i[1:])]
                if i != 'extra' else 'unit-extra')
  for half in HALVES:
    queries = load_jsonl(tmp_path / 'dev' / half / 'retrieval/r/queries.jsonl')
    docs = {r['_id'] for r in load_jsonl(tmp_path / 'dev' / half / 'retrieval/r/corpus.jsonl')}
    assert queries and all(half_of(units[int(q['_id'][1:])]) == half for q in queries)
    assert {f'd{q["_id"][1:]}' for q in queries} <= docs  # a query's document is beside it
  assert ('extra' in docs) == (half_of('unit-extra') == 'report')
  out.classification('c', [{'text': f't{i}', 'label': 'ab'[i % 2]} for i in range(20)],
                     [{'text': f's{i}', 'label': 'abc'[i % 3]} for i in range(30)],
                     units[:20], units[:30])
  for half in HALVES:
    train_labels = {r['label'] for r in load_jsonl(tmp_path / 'dev' / half / 'classification/c/train.jsonl')}
    test = load_jsonl(tmp_path / 'dev' / half / 'classification/c/test.jsonl')
    assert {r['label'] for r in test} == train_labels == {'a', 'b'}  # 'c' was never trained
  try:
    out.rows('sts', 's', [{'text1': 'a', 'text2': 'b', 'score': 1}], [])
  except ValueError as e:
    assert '1 rows but 0 units' in str(e)
  else:
    raise AssertionError('rows without units must be refused')
