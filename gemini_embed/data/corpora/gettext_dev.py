"""gettext development tasks: the messages of the dev catalog domains (gettext_catalogs.py)
whose English text never occurs in training, in six languages of four scripts.

    retrieval/gettext_xling_LANG_en    a message in LANG → the English original (as
                                       XTREME-UP: the query in the other language)
    retrieval/gettext_xling_en_fr      English → French
    bitext/gettext_en_LANG             English ↔ LANG (es, ru)
    reranking/gettext_translations     English → its translation among translations of
                                       other messages of the same domain (mixed languages)
    classification/gettext_domain      English message → its catalog domain
    classification/gettext_domain_xling_LANG  the same classifier trained on English
                                       messages, tested on messages in LANG
    clustering/gettext_domains_multilingual  messages, each in one of the languages, by domain
    pair_classification/gettext_translation_pairs  (English, its translation) 1, (English,
                                       the translation of a same-domain message) 0

Every row's source unit (its half, output.py) is the English message (case-folded), so a
message and all its translations are in one half. A translation that repeats a token of
its English (`copies_english`: identifiers, option names, format directives, numbers)
is left out: string overlap would match it without any knowledge of the language. A language without messages is
skipped (its tasks are not written).
"""

from __future__ import annotations

import collections
import dataclasses
import re
import zlib

from gemini_embed.data.corpora.output import CorpusOutput, capped, is_dev

XLING_TO_ENGLISH = ('de', 'ru', 'ja', 'zh_CN')
XLING_FROM_ENGLISH = ('fr',)
BITEXT = ('es', 'ru')
CLASSIFICATION_XLING = ('de', 'ru', 'zh_CN')
LANGUAGES = ('de', 'es', 'fr', 'ja', 'ru', 'zh_CN')
_TOKEN = re.compile(r'[\w%$.:/-]*[A-Za-z0-9][\w%$.:/-]*', re.ASCII)
MIN_DOMAIN_MESSAGES = 40  # a domain is a class (or cluster) only with this many messages


@dataclasses.dataclass
class Message:
  unit: str                  # the English text, case-folded
  english: str
  domain: str
  translations: dict[str, str]

  def pick(self, choices) -> str | None:
    """One of `choices` this message is translated into, fixed by the message."""
    have = [c for c in choices if c in self.translations]
    return have[zlib.crc32(self.unit.encode('utf-8')) % len(have)] if have else None


def _tokens(text: str) -> set[str]:
  return {t.casefold() for t in _TOKEN.findall(text) if len(t) >= 3}


def copies_english(english: str, translation: str) -> bool:
  """Does the translation repeat a token of the English (an option name, an identifier, a
  format directive such as %pB, a number, a cognate spelled the same)? Such pairs are
  matched by string overlap alone: a character n-gram baseline found 47–86 nDCG@10 in
  cross-lingual retrieval before they were left out."""
  return bool(_tokens(english) & _tokens(translation))


def messages(dev_pairs: dict[str, list[tuple[str, str, str]]],
             train_english: set[str]) -> list[Message]:
  """One Message per unseen English text, with its translations in LANGUAGES, sorted."""
  by_unit: dict[str, Message] = {}
  for language in sorted(dev_pairs):
    if language not in LANGUAGES:
      continue
    for domain, english, translation in sorted(dev_pairs[language]):
      unit = english.casefold()
      if unit in train_english:
        continue
      m = by_unit.setdefault(unit, Message(unit, english, domain, {}))
      if not copies_english(english, translation):
        m.translations.setdefault(language, translation)
  return [by_unit[u] for u in sorted(by_unit)]


def _balanced(rows: list[Message], limit: int, *key) -> list[Message]:
  """At most `limit` messages, no domain taking more than an equal share (big catalogs
  would otherwise fill every task)."""
  by_domain = collections.defaultdict(list)
  for m in rows:
    by_domain[m.domain].append(m)
  share = max(1, limit // max(1, len(by_domain)))
  kept = [m for d in sorted(by_domain) for m in capped(by_domain[d], share, *key, d)]
  return capped(kept, limit, *key)


def write_dev(out: CorpusOutput, dev_pairs, train_english, *, max_dev: int) -> None:
  msgs = messages(dev_pairs, train_english)
  if not msgs:
    return
  _retrieval_and_bitext(out, msgs, max_dev)
  _translation_tasks(out, msgs, max_dev)
  _domain_tasks(out, msgs, max_dev)


def _retrieval(out, name, pool, queries, query_text, doc_text):
  index = {m.unit: i for i, m in enumerate(pool)}
  out.retrieval(name, [(f'q{index[m.unit]}', query_text(m)) for m in queries],
                [(f'd{i}', '', doc_text(m)) for i, m in enumerate(pool)],
                [(f'q{index[m.unit]}', f'd{index[m.unit]}') for m in queries],
                unit=lambda i: pool[int(i[1:])].unit)


def _retrieval_and_bitext(out, msgs, max_dev):
  for language in XLING_TO_ENGLISH + XLING_FROM_ENGLISH:
    have = [m for m in msgs if language in m.translations]
    if not have:
      continue
    pool = _balanced(have, max_dev * 4, 'gettext_xling', language)
    queries = capped(pool, max_dev, 'gettext_xling_queries', language)
    translated = lambda m, language=language: m.translations[language]
    english = lambda m: m.english
    if language in XLING_TO_ENGLISH:
      _retrieval(out, f'gettext_xling_{language}_en', pool, queries, translated, english)
    else:
      _retrieval(out, f'gettext_xling_en_{language}', pool, queries, english, translated)
  for language in BITEXT:
    pairs = _balanced([m for m in msgs if language in m.translations], max_dev,
                      'gettext_bitext', language)
    if pairs:
      out.rows('bitext', f'gettext_en_{language}',
               [{'src': m.english, 'tgt': m.translations[language]} for m in pairs],
               [m.unit for m in pairs])


def _translation_tasks(out, msgs, max_dev):
  by_domain = collections.defaultdict(list)
  for m in msgs:
    by_domain[m.domain].append(m)
  rerank, rerank_units, pairs, pair_units = [], [], [], []
  for m in _balanced([m for m in msgs if m.pick(LANGUAGES)], max_dev, 'gettext_translations'):
    language = m.pick(LANGUAGES)
    target = m.translations[language]
    others = sorted({o.translations[language] for o in by_domain[m.domain]
                     if o.unit != m.unit and language in o.translations} - {target})
    others = capped(others, 4, 'gettext_rerank', m.unit)
    if not others:
      continue
    rerank.append({'query': m.english, 'positive': [target], 'negative': others})
    rerank_units.append(m.unit)
    pairs += [{'text1': m.english, 'text2': target, 'label': 1},
              {'text1': m.english, 'text2': others[0], 'label': 0}]
    pair_units += [m.unit, m.unit]
  if rerank:
    out.rows('reranking', 'gettext_translations', rerank, rerank_units)
    out.rows('pair_classification', 'gettext_translation_pairs', pairs, pair_units)


def _domain_tasks(out, msgs, max_dev):
  counts = collections.Counter(m.domain for m in msgs)
  big = {d for d, n in counts.items() if n >= MIN_DOMAIN_MESSAGES}
  if len(big) < 2:
    return
  labelled = [m for m in msgs if m.domain in big]
  train_part = [m for m in labelled if is_dev('classification-train ' + m.unit, 30)]
  test_part = [m for m in labelled if not is_dev('classification-train ' + m.unit, 30)]
  train = [m for d in sorted(big)
           for m in capped([m for m in train_part if m.domain == d], 32, 'gettext_train', d)]
  train_rows = [{'text': m.english, 'label': m.domain} for m in train]
  train_units = [m.unit for m in train]
  test = _balanced(test_part, max_dev * 2, 'gettext_domain_test')
  out.classification('gettext_domain', train_rows,
                     [{'text': m.english, 'label': m.domain} for m in test],
                     train_units, [m.unit for m in test])
  for language in CLASSIFICATION_XLING:
    test = _balanced([m for m in test_part if language in m.translations], max_dev * 2,
                     'gettext_domain_test', language)
    if test:
      out.classification(f'gettext_domain_xling_{language}', train_rows,
                         [{'text': m.translations[language], 'label': m.domain} for m in test],
                         train_units, [m.unit for m in test])
  shown = _balanced(test_part, max_dev * 4, 'gettext_clusters')
  rows = []
  for m in shown:
    options = ['en'] + [x for x in LANGUAGES if x in m.translations]
    language = options[zlib.crc32(m.unit.encode('utf-8')) % len(options)]
    rows.append({'text': m.english if language == 'en' else m.translations[language],
                 'label': m.domain})
  out.rows('clustering', 'gettext_domains_multilingual', rows, [m.unit for m in shown])
