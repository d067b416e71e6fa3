"""gettext catalogs already on the machine (/usr/share/locale/LANG/LC_MESSAGES/DOMAIN.mo):
English UI messages ↔ their translations, ~190 languages.

The split unit is the catalog's domain (e.g. `coreutils`), across all its languages;
development pairs whose English text also occurs in training are dropped too.
The iso_* domains (country and language names) are left to the CLDR builder.
"""

from __future__ import annotations

import collections
import gettext
import glob
import os
import re

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
          per_catalog: int = 40, folder: str = LOCALE_DIR, dev_languages: int = 4) -> None:
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

  for language in sorted(dev_pairs):  # unseen English only; one translation per message
    seen, kept = set(), []
    for domain, english, translation in dev_pairs[language]:
      key = english.casefold()
      if key not in train_english and key not in seen:
        seen.add(key)
        kept.append((domain, english, translation))
    by_domain = collections.defaultdict(list)  # balance the domains
    for row in kept:
      by_domain[row[0]].append(row)
    share = max(1, max_dev * 4 // max(1, len(by_domain)))
    dev_pairs[language] = [row for domain in sorted(by_domain)
                           for row in capped(by_domain[domain], share, language, domain)]
  best = sorted(dev_pairs, key=lambda lang: (-len(dev_pairs[lang]), lang))[:dev_languages]
  for language in sorted(best):
    pairs = capped(dev_pairs[language], max_dev, 'gettext_dev', language)
    out.rows('bitext', f'gettext_en_{language}', [{'src': e, 'tgt': t} for _, e, t in pairs])
  if best:  # cross-lingual retrieval: English query → documents in the best-covered language
    language = best[0]
    pairs = capped(dev_pairs[language], max_dev * 4, 'gettext_xling', language)
    queries = capped(list(range(len(pairs))), max_dev, 'gettext_xling_queries')
    out.retrieval(f'gettext_xling_en_{language}', [(f'q{i}', pairs[i][1]) for i in queries],
                  [(f'd{i}', '', t) for i, (_, _, t) in enumerate(pairs)],
                  [(f'q{i}', f'd{i}') for i in queries])
