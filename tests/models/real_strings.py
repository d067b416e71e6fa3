"""A few hundred real strings for tokenizer checks, built from what every machine has.

English prose: Python stdlib docstrings. Code: stdlib function sources (with their
indentation). Other scripts: gettext catalogs under /usr/share/locale (GLib, GTK,
Linux-PAM, coreutils messages). Emoji: docstring sentences with emoji, skin tones,
ZWJ families and flags. Deterministic; nothing downloaded; never the sources that
shared/docs/environment.md reserves for independent evaluation.
"""

from __future__ import annotations

import gettext
import importlib
import inspect
import os
import unicodedata

_DOC_MODULES = ('json', 'textwrap', 'collections', 'functools', 'itertools', 'pathlib', 'argparse',
                'logging', 're', 'string', 'datetime', 'decimal', 'fractions', 'statistics',
                'heapq', 'bisect', 'shutil', 'csv', 'difflib', 'inspect', 'dataclasses', 'enum',
                'contextlib', 'queue', 'zipfile', 'gzip', 'random', 'calendar', 'pprint',
                'tokenize', 'ast', 'copy', 'glob', 'fnmatch', 'tempfile', 'uuid', 'base64')
_CODE_MODULES = ('textwrap', 'difflib', 'heapq', 'bisect', 'shutil', 'fnmatch', 'glob', 'calendar',
                 'fractions', 'statistics', 'json.encoder', 'json.decoder', 'pprint', 'colorsys')
# Scripts: CJK, Hangul, Cyrillic, Greek, Hebrew, Arabic, Devanagari, Bengali, Tamil,
# Thai, Georgian, Armenian, Ethiopic, Khmer, and Latin with diacritics.
LANGUAGES = ('ja', 'zh_CN', 'zh_TW', 'ko', 'ru', 'uk', 'el', 'he', 'ar', 'fa', 'hi', 'bn', 'ta',
             'th', 'ka', 'hy', 'am', 'km', 'vi', 'tr', 'pl', 'cs', 'de', 'fr', 'pt_BR')
_CATALOGS = ('glib20.mo', 'gtk20.mo', 'Linux-PAM.mo', 'coreutils.mo', 'gdk-pixbuf.mo')
_LOCALE_DIR = '/usr/share/locale'


def docstrings(limit: int = 110) -> list[str]:
  out = []
  for name in _DOC_MODULES:
    mod = importlib.import_module(name)
    docs = [mod.__doc__] + [getattr(obj, '__doc__', None)
                            for key, obj in sorted(vars(mod).items()) if not key.startswith('_')
                            and (inspect.isfunction(obj) or inspect.isclass(obj))
                            and getattr(obj, '__module__', '') == name]
    docs = [d.strip() for d in docs if d and len(d.strip()) > 60]
    out.extend(d[:500] for d in docs[:3])
  return out[:limit]


def code_snippets(limit: int = 70) -> list[str]:
  out = []
  for name in _CODE_MODULES:
    mod = importlib.import_module(name)
    for key, obj in sorted(vars(mod).items()):
      if inspect.isfunction(obj) and obj.__module__ == name:
        try:
          out.append(inspect.getsource(obj)[:700])
        except (OSError, TypeError):
          continue
        if sum(1 for s in out if s.startswith('def ')) >= limit:
          break
  return out[::max(1, len(out) // limit)][:limit]


def translations(per_language: int = 6) -> list[str]:
  out = []
  for lang in LANGUAGES:
    picked: list[str] = []
    for catalog in _CATALOGS:
      path = os.path.join(_LOCALE_DIR, lang, 'LC_MESSAGES', catalog)
      if not os.path.exists(path) or len(picked) >= per_language:
        continue
      with open(path, 'rb') as f:
        entries = gettext.GNUTranslations(f)._catalog  # msgid → msgstr
      texts = sorted(v for k, v in entries.items()
                     if isinstance(k, str) and k and isinstance(v, str) and len(v) >= 25)
      step = max(1, len(texts) // per_language)
      picked.extend(texts[::step][:per_language - len(picked)])
    out.extend(picked)
  return out


def emoji_strings(sentences: list[str], count: int = 40) -> list[str]:
  singles = [chr(c) for c in list(range(0x1F600, 0x1F640, 3)) + list(range(0x1F300, 0x1F5FF, 37))
             + list(range(0x1F900, 0x1F9FF, 29)) if unicodedata.name(chr(c), '')]
  tones = [chr(c) for c in range(0x1F3FB, 0x1F400)]
  zwj = '\u200d'
  family = zwj.join(['\U0001F468', '\U0001F469', '\U0001F467', '\U0001F466'])
  flags = [''.join(chr(0x1F1E6 + ord(ch) - ord('A')) for ch in cc)
           for cc in ('FR', 'JP', 'BR', 'IN', 'KE', 'DE')]
  out = []
  for i in range(count):
    words = sentences[i % len(sentences)].split()[:12]
    e = singles[i % len(singles)]
    extra = [e, '\U0001F44D' + tones[i % len(tones)], family, flags[i % len(flags)],
             '\u2764\ufe0f', e * (1 + i % 3)][i % 6]
    words.insert(min(len(words), 1 + i % 7), extra)
    out.append(' '.join(words) + ' ' + singles[(7 * i) % len(singles)])
  return out


def real_strings() -> dict[str, list[str]]:
  prose = docstrings()
  return {'english': prose, 'code': code_snippets(), 'translations': translations(),
          'emoji': emoji_strings(prose)}
