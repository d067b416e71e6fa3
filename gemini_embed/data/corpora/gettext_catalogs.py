"""gettext catalogs already on the machine (/usr/share/locale/LANG/LC_MESSAGES/DOMAIN.mo):
English UI messages ↔ their translations, ~190 languages.

The split unit is the catalog's domain (e.g. `coreutils`), across all its languages;
development pairs whose English text also occurs in training are dropped too. The
development tasks are in gettext_dev.py.
The iso_* domains (country and language names) are left to the CLDR builder.
"""

from __future__ import annotations

import collections
import gettext
import glob
import os
import re

from gemini_embed.data.corpora import gettext_dev
from gemini_embed.data.corpora.output import CorpusOutput, capped, is_dev, seeded_random

LOCALE_DIR = '/usr/share/locale'
_LETTERS = re.compile(r'[^\W\d_]{2,}')


def _clean(text: str) -> str:
  return ' '.join(text.split())


def usable(english: str, translation: str) -> bool:
  """Prose-like messages: two words or more, 12–400 characters, at most two format
  directives, really translated."""
  return (12 <= len(english) <= 400 and len(_LETTERS.findall(english)) >= 2 and
          english.count('%') <= 2 and
          0 < len(translation) <= 600 and translation != english)


def read_catalog(path: str) -> list[tuple[str, str]]:
  """(English, translation) pairs of one .mo file; [] when it cannot be read."""
  try:
    with open(path, 'rb') as f:
      catalog = gettext.GNUTranslations(f)._catalog  # noqa: SLF001 (the parsed table)
  except (OSError, UnicodeDecodeError, IndexError, ValueError):
    return []
  pairs = []
  for key, value in catalog.items():
    english = key[0] if isinstance(key, tuple) else key
    if isinstance(key, tuple) and key[1] != 0:
      continue  # other plural forms repeat the same message
    english = _clean(english.split('\x04')[-1])  # drop a msgctxt prefix
    value = _clean(value)
    if english and usable(english, value):
      pairs.append((english, value))
  return sorted(set(pairs))


def catalogs(folder: str = LOCALE_DIR) -> list[tuple[str, str, str]]:
  """(domain, language, path) of every catalog except the iso_* name lists, sorted."""
  out = []
  for path in glob.glob(os.path.join(folder, '*', 'LC_MESSAGES', '*.mo')):
    language = path.split(os.sep)[-3]
    domain = os.path.basename(path)[:-3]
    if not domain.startswith('iso_') and language not in ('en', 'en_US', 'C'):
      out.append((domain, language, path))
  return sorted(out)


def build(out: CorpusOutput, *, dev_percent: float, max_rows: int, max_dev: int,
          per_catalog: int = 40, folder: str = LOCALE_DIR) -> None:
  train_rows, train_english = [], set()
  dev_pairs = collections.defaultdict(list)  # language → (domain, English, translation)
  for domain, language, path in catalogs(folder):
    pairs = read_catalog(path)
    if not pairs:
      continue
    if is_dev(domain, dev_percent):
      dev_pairs[language].extend((domain, e, t) for e, t in pairs)
      continue
    rng = seeded_random('gettext', domain, language)
    chosen = capped(pairs, per_catalog, domain, language)
    for english, translation in chosen:
      train_english.add(english.casefold())
      row = {'query': english, 'positive': translation}
      if len(pairs) > 1:
        other = rng.choice(pairs)
        if other[1] != translation:
          row['negative'] = other[1]
      train_rows.append(row)
  out.train('gettext_bitext', capped(train_rows, max_rows, 'gettext'))

  gettext_dev.write_dev(out, dev_pairs, train_english, max_dev=max_dev)
