"""FreeDict bilingual dictionaries (`apt-get install dict-freedict-eng-fra
dict-freedict-deu-eng`): headword ↔ its first translation line, read straight from the
dictd files (/usr/share/dictd/NAME.index + NAME.dict.dz, gzip-compatible).

    index line:  headword<TAB>offset<TAB>length      (numbers in dictd's base64)
    entry:       'aspire /əspaiər/\\naspirer\\n'       (header, then translations)

The split unit is the headword (case-folded).
"""

from __future__ import annotations

import gzip
import os
import re

from gemini_embed.data.corpora.output import CorpusOutput, capped, is_dev, seeded_random

DICTD_DIR = '/usr/share/dictd'
DICTIONARIES = ('freedict-eng-fra', 'freedict-deu-eng')
_B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
_TAG = re.compile(r'<[^>]*>')
_NUMBERING = re.compile(r'^\d+\.\s*')


def dictd_number(text: str) -> int:
  value = 0
  for ch in text:
    value = value * 64 + _B64.index(ch)
  return value


def first_translation(entry: str) -> str:
  lines = [line.strip() for line in entry.splitlines()[1:]]
  for line in lines:
    if line and not line.startswith(('Note:', 'see:', 'Synonyms:', 'Syn:', 'Ant:')):
      return _NUMBERING.sub('', ' '.join(_TAG.sub('', line).split())).strip(' ,;')
  return ''


def headword(entry: str, fallback: str) -> str:
  """The entry's own spelling (the index is case-folded): its header up to the pronunciation."""
  header = _TAG.sub('', entry.split('\n', 1)[0]).split(' /')[0].strip()
  return header if header.casefold() == fallback.casefold() else fallback


def entries(name: str, folder: str = DICTD_DIR) -> list[tuple[str, str]]:
  """(headword, first translation), in index order, one per distinct headword."""
  with gzip.open(os.path.join(folder, f'{name}.dict.dz')) as f:
    data = f.read()
  out, seen = [], set()
  with open(os.path.join(folder, f'{name}.index'), encoding='utf-8') as f:
    for line in f:
      word, offset, length = line.rstrip('\n').split('\t')
      if word.startswith('00database') or word.casefold() in seen:
        continue
      start = dictd_number(offset)
      entry = data[start:start + dictd_number(length)].decode('utf-8', errors='replace')
      translation = first_translation(entry)
      if translation and translation.casefold() != word.casefold():
        seen.add(word.casefold())
        out.append((headword(entry, word.strip()), translation))
  return out


def build(out: CorpusOutput, *, dev_percent: float, max_rows: int, max_dev: int,
          folder: str = DICTD_DIR) -> list[str]:
  """Returns the dictionaries found (none: nothing is written)."""
  found = [n for n in DICTIONARIES if os.path.exists(os.path.join(folder, f'{n}.index'))]
  rows = []
  for name in found:
    pairs = entries(name, folder)
    train = [p for p in pairs if not is_dev(p[0].casefold(), dev_percent)]
    dev = [p for p in pairs if is_dev(p[0].casefold(), dev_percent)]
    rng = seeded_random('freedict', name)
    for i, (word, translation) in enumerate(train):
      other = train[(i + rng.randrange(5, 50)) % len(train)][1] if len(train) > 50 else ''
      rows.append({'query': word, 'positive': translation} |
                  ({'negative': other} if other and other != translation else {}))
    dev = capped(dev, max_dev, 'freedict_dev', name)
    out.rows('bitext', name.replace('-', '_'), [{'src': w, 'tgt': t} for w, t in dev],
             [w.casefold() for w, _ in dev])
  if rows:
    out.train('freedict_bitext', capped(rows, max_rows, 'freedict'))
  return found
