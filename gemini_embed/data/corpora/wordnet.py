"""WordNet 3.0 (`apt-get install wordnet-base`): lemmas, glosses, categories, taxonomy.

Parses /usr/share/wordnet/data.{noun,verb,adj,adv} (the documented wndb(5) format):

    offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [ptr offset pos src/tgt]... | gloss

The split unit is the synset; hard negatives and evaluation candidates come from
"sister" synsets (same hypernym; same head for adjective satellites), always
from the same side of the split. The development tasks are in wordnet_dev.py.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re

from gemini_embed.data.corpora.output import CorpusOutput, capped, is_dev, seeded_random

WORDNET_DIR = '/usr/share/wordnet'
POS_FILES = {'noun': 'n', 'verb': 'v', 'adj': 'a', 'adv': 'r'}
# Lexicographer files (lexnames(5WN)): number → (name, description used as a label text).
LEXNAMES = {
    0: ('adj.all', 'all adjective clusters'), 1: ('adj.pert', 'relational adjectives (pertainyms)'),
    2: ('adv.all', 'all adverbs'), 3: ('noun.Tops', 'unique beginner for nouns'),
    4: ('noun.act', 'nouns denoting acts or actions'),
    5: ('noun.animal', 'nouns denoting animals'),
    6: ('noun.artifact', 'nouns denoting man-made objects'),
    7: ('noun.attribute', 'nouns denoting attributes of people and objects'),
    8: ('noun.body', 'nouns denoting body parts'),
    9: ('noun.cognition', 'nouns denoting cognitive processes and contents'),
    10: ('noun.communication', 'nouns denoting communicative processes and contents'),
    11: ('noun.event', 'nouns denoting natural events'),
    12: ('noun.feeling', 'nouns denoting feelings and emotions'),
    13: ('noun.food', 'nouns denoting foods and drinks'),
    14: ('noun.group', 'nouns denoting groupings of people or objects'),
    15: ('noun.location', 'nouns denoting spatial position'),
    16: ('noun.motive', 'nouns denoting goals'),
    17: ('noun.object', 'nouns denoting natural objects (not man-made)'),
    18: ('noun.person', 'nouns denoting people'),
    19: ('noun.phenomenon', 'nouns denoting natural phenomena'),
    20: ('noun.plant', 'nouns denoting plants'),
    21: ('noun.possession', 'nouns denoting possession and transfer of possession'),
    22: ('noun.process', 'nouns denoting natural processes'),
    23: ('noun.quantity', 'nouns denoting quantities and units of measure'),
    24: ('noun.relation', 'nouns denoting relations between people or things or ideas'),
    25: ('noun.shape', 'nouns denoting two and three dimensional shapes'),
    26: ('noun.state', 'nouns denoting stable states of affairs'),
    27: ('noun.substance', 'nouns denoting substances'),
    28: ('noun.time', 'nouns denoting time and temporal relations'),
    29: ('verb.body', 'verbs of grooming, dressing and bodily care'),
    30: ('verb.change', 'verbs of size, temperature change, intensifying, etc.'),
    31: ('verb.cognition', 'verbs of thinking, judging, analyzing, doubting'),
    32: ('verb.communication', 'verbs of telling, asking, ordering, singing'),
    33: ('verb.competition', 'verbs of fighting, athletic activities'),
    34: ('verb.consumption', 'verbs of eating and drinking'),
    35: ('verb.contact', 'verbs of touching, hitting, tying, digging'),
    36: ('verb.creation', 'verbs of sewing, baking, painting, performing'),
    37: ('verb.emotion', 'verbs of feeling'),
    38: ('verb.motion', 'verbs of walking, flying, swimming'),
    39: ('verb.perception', 'verbs of seeing, hearing, feeling'),
    40: ('verb.possession', 'verbs of buying, selling, owning'),
    41: ('verb.social', 'verbs of political and social activities and events'),
    42: ('verb.stative', 'verbs of being, having, spatial relations'),
    43: ('verb.weather', 'verbs of raining, snowing, thawing, thundering'),
    44: ('adj.ppl', 'participial adjectives'),
}
_ADJ_MARKER = re.compile(r'\((a|p|ip)\)$')


@dataclasses.dataclass
class Synset:
  key: str                 # 'n02084071'
  lexname: int
  lemmas: list[str]
  definition: str
  examples: list[str]
  hypernyms: list[str]     # keys ('@', '@i'; for satellites the '&' head)

  @property
  def pos(self) -> str:
    return self.key[0]


def parse_line(line: str, pos: str) -> Synset | None:
  if line.startswith(' '):  # the license header
    return None
  head, _, gloss = line.partition(' | ')
  fields = head.split()
  offset, lexname, ss_type, w_cnt = fields[0], int(fields[1]), fields[2], int(fields[3], 16)
  words = fields[4:4 + 2 * w_cnt:2]
  rest = fields[4 + 2 * w_cnt:]
  p_cnt = int(rest[0])
  hypernyms = []
  for i in range(p_cnt):
    symbol, target, target_pos = rest[1 + 4 * i:4 + 4 * i]
    if symbol in ('@', '@i') or (ss_type == 's' and symbol == '&'):
      hypernyms.append(('a' if target_pos == 's' else target_pos) + target)
  lemmas = [_ADJ_MARKER.sub('', w).replace('_', ' ') for w in words]
  definition, *quoted = gloss.strip().split('"')
  examples = [q.strip() for q in quoted[::2] if q.strip()]
  definition = definition.strip().rstrip(';').strip()
  return Synset(pos + offset, lexname, lemmas, definition, examples, hypernyms)


def read_synsets(folder: str = WORDNET_DIR) -> dict[str, Synset]:
  synsets = {}
  for name, pos in POS_FILES.items():
    with open(os.path.join(folder, f'data.{name}'), encoding='utf-8', errors='replace') as f:
      for line in f:
        s = parse_line(line, pos)
        if s is not None and s.definition:
          synsets[s.key] = s
  return synsets


def hyponyms(synsets: dict[str, Synset]) -> dict[str, list[str]]:
  """hypernym (or adjective head) key → its children, sorted."""
  children = collections.defaultdict(list)
  for s in synsets.values():
    for h in s.hypernyms:
      children[h].append(s.key)
  return {h: sorted(c) for h, c in children.items()}


def wu_palmer(a: str, b: str, synsets: dict[str, Synset]) -> float:
  """2·depth(lcs) / (depth(a) + depth(b)) over hypernym paths (a virtual root joins roots)."""
  def distances(key):
    out, frontier, d = {key: 0}, [key], 0
    while frontier:
      d += 1
      frontier = [h for k in frontier for h in synsets[k].hypernyms
                  if h in synsets and h not in out]
      for h in frontier:
        out.setdefault(h, d)
    return out

  def depth(key):  # nodes from the virtual root to `key`
    da = distances(key)
    return 1 + max(da.values(), default=0) if da else 1

  da, db = distances(a), distances(b)
  best = 0.0
  for c in set(da) & set(db):
    dc = depth(c)
    best = max(best, 2 * dc / (da[c] + db[c] + 2 * dc))
  return best if best else 2 / (depth(a) + depth(b))


def build(out: CorpusOutput, *, write_dev, dev_percent: float, max_rows: int, max_dev: int,
          folder: str = WORDNET_DIR) -> None:
  """Training sets from one side of the synset split; `write_dev(out, synsets_of_the_dev_side,
  sister, rng, all_synsets, max_dev=)` (wordnet_dev.write_dev, which builds on this module's
  readers) writes the development tasks from the other."""
  synsets = read_synsets(folder)
  children = hyponyms(synsets)
  split = {k: is_dev(k, dev_percent) for k in synsets}
  for side in (False, True):
    keys = sorted(k for k in synsets if split[k] == side)
    by_lexname = collections.defaultdict(list)
    for k in keys:
      by_lexname[synsets[k].lexname].append(k)

    def sister(key, rng, side=side, by_lexname=by_lexname):
      """A sister synset (same hypernym) on the same side of the split, else a synset of
      the same category; None when neither exists."""
      for pool in [children.get(h, ()) for h in synsets[key].hypernyms] + \
                  [by_lexname[synsets[key].lexname]]:
        for _ in range(8 if pool else 0):
          k = rng.choice(pool)
          if k != key and split[k] == side:
            return synsets[k]
      return None

    rng = seeded_random('wordnet', side)
    group = [synsets[k] for k in keys]
    if side:
      write_dev(out, group, sister, rng, synsets, max_dev=max_dev)
    else:
      _write_train(out, group, sister, rng, max_rows=max_rows)


def lemma_list(s: Synset) -> str:
  return ', '.join(s.lemmas)


def category_rows(group, per_label):
  by_label = collections.defaultdict(list)
  for s in group:
    by_label[s.lexname].append(s)
  return {lex: capped(rows, per_label, 'category', lex) for lex, rows in sorted(by_label.items())}


def _write_train(out, group, sister, rng, *, max_rows):
  out.train('wordnet_glosses', capped([{'query': s.lemmas[0], 'positive': s.definition}
                                       for s in group], max_rows, 'glosses'))
  rows = []
  for s in group:
    other = sister(s.key, rng)
    rows.append({'query': s.definition, 'positive': lemma_list(s)} |
                ({'negative': lemma_list(other)} if other else {}))
  out.train('wordnet_reverse_dictionary', capped(rows, max_rows, 'reverse'))
  rows = []
  per_label = max(1, max_rows // len(LEXNAMES)) if max_rows > 0 else 0  # 0: no cap
  for lex, members in category_rows(group, per_label).items():
    same_pos = [n for n, (name, _) in LEXNAMES.items()
                if name.split('.')[0] == LEXNAMES[lex][0].split('.')[0] and n != lex]
    for s in members:
      row = {'query': s.definition, 'positive': LEXNAMES[lex][1]}
      if same_pos:
        row['negative'] = LEXNAMES[rng.choice(same_pos)][1]
      rows.append(row)
  out.train('wordnet_category', rows)
  rows = []
  for s in group:
    other = sister(s.key, rng)
    if len(s.lemmas) > 1:
      a, b = rng.sample(s.lemmas, 2)
      rows.append({'query': a, 'positive': b} |
                  ({'negative': rng.choice(other.lemmas)} if other else {}))
  out.train('wordnet_synonyms', capped(rows, max_rows, 'synonyms'))
