"""Python's own standard library: docstring ↔ code, name ↔ docstring, reference topics.

Walks the running interpreter's stdlib with `ast` (no import, no execution); the
unit of the train/dev split is the top-level package (`email.mime.text` → `email`).
`pydoc_data.topics` (the language reference, by topic) is pre-finetuning text only.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import os
import sysconfig
import textwrap

from pydoc_data.topics import topics

from gemini_embed.data.corpora.output import CorpusOutput, capped, is_dev, seeded_random

_SKIP_PARTS = {'test', 'tests', 'idlelib', 'turtledemo', 'site-packages', 'dist-packages',
               '__pycache__', 'lib2to3', 'ensurepip', 'venv', 'config-3'}


@dataclasses.dataclass(frozen=True)
class Function:
  module: str
  qualname: str
  docstring: str
  code: str  # source without the docstring, dedented

  @property
  def package(self) -> str:
    return self.module.split('.')[0]

  @property
  def summary(self) -> str:
    return ' '.join(self.docstring.split('\n\n')[0].split())


def stdlib_files(stdlib: str | None = None) -> list[tuple[str, str]]:
  """(module name, path) of the public pure-Python stdlib modules, sorted."""
  stdlib = stdlib or sysconfig.get_paths()['stdlib']
  out = []
  for folder, dirs, files in os.walk(stdlib):
    rel = os.path.relpath(folder, stdlib)
    parts = [] if rel == '.' else rel.split(os.sep)
    if any(p in _SKIP_PARTS or p.startswith(('_', 'config-')) for p in parts):
      dirs[:] = []
      continue
    for name in files:
      if not name.endswith('.py') or (name.startswith('_') and name != '__init__.py'):
        continue
      module = parts + ([] if name == '__init__.py' else [name[:-3]])
      if module:
        out.append(('.'.join(module), os.path.join(folder, name)))
  return sorted(out)


def _code_without_docstring(lines: list[str], node: ast.AST) -> str:
  doc = node.body[0]
  kept = lines[node.lineno - 1:doc.lineno - 1] + lines[doc.end_lineno:node.end_lineno]
  return textwrap.dedent('\n'.join(kept)).strip('\n')


def module_functions(module: str, source: str, max_chars: int = 4000) -> list[Function]:
  """Documented functions and methods (not nested in functions) with a real body."""
  try:
    tree = ast.parse(source)
  except SyntaxError:
    return []
  lines = source.splitlines()
  out = []

  def visit(body, prefix):
    for node in body:
      if isinstance(node, ast.ClassDef):
        visit(node.body, f'{prefix}{node.name}.')
      elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        doc = ast.get_docstring(node)
        dunder = node.name.startswith('__') and node.name != '__init__'
        if not doc or len(doc.split()) < 4 or dunder:
          continue
        code = _code_without_docstring(lines, node)
        if code.count('\n') < 2 or len(code) > max_chars:
          continue
        out.append(Function(module, f'{module}.{prefix}{node.name}', doc[:max_chars], code))

  visit(tree.body, '')
  return out


def topic_pairs(max_per_topic: int = 6) -> list[dict]:
  """(reference topic title, one paragraph) pairs from pydoc_data.topics."""
  rows = []
  for key, text in sorted(topics.items()):
    title = key.replace('-', ' ')
    paragraphs = [' '.join(p.split()) for p in text.split('\n\n')]
    paragraphs = [p for p in paragraphs if len(p) >= 120][:max_per_topic]
    rows.extend({'query': title, 'positive': p} for p in paragraphs)
  return rows


def build(out: CorpusOutput, *, dev_percent: float, max_rows: int, max_dev: int,
          stdlib: str | None = None) -> None:
  functions = []
  for module, path in stdlib_files(stdlib):
    with open(path, encoding='utf-8', errors='replace') as f:
      functions.extend(module_functions(module, f.read()))
  train = [f for f in functions if not is_dev(f.package, dev_percent)]
  dev = [f for f in functions if is_dev(f.package, dev_percent)]

  out.train('pydoc_topics', capped(topic_pairs(), max_rows, 'pydoc'))
  out.train('stdlib_docs', capped([{'query': f.qualname, 'positive': f.docstring}
                                   for f in train], max_rows, 'stdlib_docs'))
  out.train('code_docstring', capped(_code_triples(train), max_rows, 'code_docstring'))

  _write_dev(out, dev, max_dev)


def _write_dev(out: CorpusOutput, dev: list[Function], max_dev: int) -> None:
  """Code retrieval both ways, code reranking, package classification and clustering;
  every row's source unit (its half) is the function's qualified name."""
  pool = capped(dev, max_dev * 2, 'dev_code')  # code is long: a smaller pool than text tasks
  queries = capped(pool, max_dev, 'dev_code_queries')
  out.retrieval('stdlib_code', [(f.qualname, f.summary) for f in queries],
                [(f.qualname, '', f.code) for f in pool],
                [(f.qualname, f.qualname) for f in queries])
  code_queries = capped(pool, max_dev, 'dev_doc_queries')
  out.retrieval('stdlib_code_to_doc', [(f.qualname, f.code) for f in code_queries],
                [(f.qualname, '', f.summary) for f in pool],
                [(f.qualname, f.qualname) for f in code_queries])
  by_module = collections.defaultdict(list)
  for f in pool:
    by_module[f.module].append(f)
  rerank, units = [], []
  for f in capped(queries, max_dev // 2, 'dev_rerank_queries'):
    others = [g.code for g in by_module[f.module] if g.qualname != f.qualname][:7]
    if others:
      rerank.append({'query': f.summary, 'positive': [f.code], 'negative': others})
      units.append(f.qualname)
  out.rows('reranking', 'stdlib_code', rerank, units)
  packages = collections.Counter(f.package for f in dev)
  big = sorted(p for p, n in packages.items() if n >= 20)
  labelled = [f for f in dev if f.package in big]
  clusters = capped(labelled, max_dev * 2, 'dev_clusters')
  out.rows('clustering', 'stdlib_packages',
           [{'text': f.summary, 'label': f.package} for f in clusters],
           [f.qualname for f in clusters])
  train = [f for f in labelled if is_dev('classification-train ' + f.qualname, 30)]
  test = [f for f in labelled if not is_dev('classification-train ' + f.qualname, 30)]
  train = [f for p in big for f in capped([f for f in train if f.package == p], 32,
                                          'dev_package_train', p)]
  test = capped(test, max_dev * 2, 'dev_package_test')
  row = lambda f: {'text': f.summary, 'label': f.package}
  out.classification('stdlib_packages', [row(f) for f in train], [row(f) for f in test],
                     [f.qualname for f in train], [f.qualname for f in test])


def _code_triples(functions: list[Function]) -> list[dict]:
  """docstring summary → code; negative: another function of the same module."""
  by_module = collections.defaultdict(list)
  for f in functions:
    by_module[f.module].append(f)
  rows = []
  for module, group in sorted(by_module.items()):
    rng = seeded_random('code_negatives', module)
    for i, f in enumerate(group):
      row = {'query': f.summary, 'positive': f.code}
      if len(group) > 1:
        row['negative'] = group[(i + rng.randrange(1, len(group))) % len(group)].code
      rows.append(row)
  return rows
