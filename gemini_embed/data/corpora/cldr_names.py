"""CLDR display names through babel (`pip install babel==2.18.0`): the English name of a
language or territory ↔ its name in another locale ('Germany' ↔ 'Deutschland').

The split unit is the named entity (the code `DE` or `de`): a development entity is
never named in training, in any locale. Names equal to the English one are skipped.
"""

from __future__ import annotations

import zlib

from gemini_embed.data.corpora.output import CorpusOutput, capped, is_dev, seeded_random

# One development bitext task: each dev entity named in one of these locales (fixed by
# the entity). ja/zh/hi names, alone, scored ~0 for every model of the first suite.
DEV_LOCALES = ('de', 'es', 'fr', 'ru')


def name_pairs() -> list[tuple[str, str, str, str]]:
  """(entity, locale, English name, localised name) over base-language locales, sorted."""
  # babel: build_corpora.ensure_sources installs it on demand, after this module is imported.
  from babel import Locale, localedata  # noqa: PLC0415
  english = Locale('en')
  entities = {**{f'language:{c}': n for c, n in english.languages.items()},
              **{f'territory:{c}': n for c, n in english.territories.items()}}
  out = []
  for locale_id in sorted(i for i in localedata.locale_identifiers() if '_' not in i):
    if locale_id == 'en':
      continue
    locale = Locale.parse(locale_id)
    local = {**{f'language:{c}': n for c, n in locale.languages.items()},
             **{f'territory:{c}': n for c, n in locale.territories.items()}}
    for entity, name in local.items():
      if entity in entities and name and name != entities[entity]:
        out.append((entity, locale_id, entities[entity], name))
  return sorted(out)


def build(out: CorpusOutput, *, dev_percent: float, max_rows: int, max_dev: int) -> None:
  pairs = name_pairs()
  train = [p for p in pairs if not is_dev(p[0], dev_percent)]
  by_locale: dict[str, list] = {}
  for p in train:
    by_locale.setdefault(p[1], []).append(p)
  rows = []
  for locale_id, group in sorted(by_locale.items()):
    rng = seeded_random('cldr', locale_id)
    for entity, _, english, name in group:
      row = {'query': english, 'positive': name}
      other = rng.choice(group)
      if other[0] != entity and other[3] != name:
        row['negative'] = other[3]
      rows.append(row)
  out.train('cldr_names', capped(rows, max_rows, 'cldr'))
  names = {(entity, loc): (english, name) for entity, loc, english, name in pairs
           if loc in DEV_LOCALES and is_dev(entity, dev_percent)}
  dev = []
  for entity in sorted({e for e, _ in names}):
    have = [loc for loc in DEV_LOCALES if (entity, loc) in names]
    english, name = names[entity, have[zlib.crc32(entity.encode('utf-8')) % len(have)]]
    dev.append((entity, english, name))
  dev = capped(dev, max_dev, 'cldr_dev')
  if dev:
    out.rows('bitext', 'cldr_names', [{'src': english, 'tgt': name} for _, english, name in dev],
             [entity for entity, _, _ in dev])
