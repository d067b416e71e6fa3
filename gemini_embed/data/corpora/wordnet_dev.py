"""WordNet development tasks, all from the dev side of the synset split (wordnet.py).

    retrieval/wordnet_reverse_dictionary   gloss → the synset's lemmas
    retrieval/wordnet_examples             a usage example → the gloss of its sense
    reranking/wordnet_definitions          gloss → its lemmas among sister synsets' lemmas
    classification/wordnet_category        gloss → lexicographer category (45 labels)
    clustering/wordnet_{noun,verb}_category  glosses of the 10 largest categories
    pair_classification/wordnet_synonyms   two lemmas of one synset (1) or of sisters (0)
    pair_classification/wordnet_sense_examples  gloss + an example of that sense (1) or of
                                           another sense of the same word (0), as WiC
    sts/wordnet_taxonomy_wup               two glosses, scored Wu-Palmer × 5
    sts/wordnet_lemma_wup                  two words (word similarity), Wu-Palmer × 5
    sts/wordnet_example_wup                two usage examples, Wu-Palmer × 5 of their senses

Every row's source unit (its half, output.py) is the synset it is about (the first
synset of a pair). STS scores are taxonomy-derived, not human judgements.
"""

from __future__ import annotations

import collections

from gemini_embed.data.corpora.output import CorpusOutput, capped, is_dev
from gemini_embed.data.corpora.wordnet import LEXNAMES, category_rows, lemma_list, wu_palmer


CLUSTERS = 10  # categories per clustering task


def write_dev(out: CorpusOutput, group, sister, rng, synsets, *, max_dev: int) -> None:
  _retrieval(out, group, sister, rng, max_dev)
  _categories(out, group, max_dev)
  _pairs(out, group, sister, rng, max_dev)
  _sts(out, group, sister, rng, synsets, max_dev)


def _retrieval(out, group, sister, rng, max_dev):
  pool = capped(group, max_dev * 4, 'dev_pool')
  queries = capped(pool, max_dev, 'dev_queries')
  out.retrieval('wordnet_reverse_dictionary', [(s.key, s.definition) for s in queries],
                [(s.key, '', lemma_list(s)) for s in pool], [(s.key, s.key) for s in queries])
  with_examples = capped([s for s in group if s.examples], max_dev * 4, 'dev_example_pool')
  asked = capped(with_examples, max_dev, 'dev_example_queries')
  out.retrieval('wordnet_examples', [(s.key, s.examples[0]) for s in asked],
                [(s.key, '', s.definition) for s in with_examples],
                [(s.key, s.key) for s in asked])
  rerank, units = [], []
  for s in queries:
    negatives = sorted({lemma_list(o) for o in (sister(s.key, rng) for _ in range(5)) if o}
                       - {lemma_list(s)})
    if negatives:
      rerank.append({'query': s.definition, 'positive': [lemma_list(s)], 'negative': negatives})
      units.append(s.key)
  out.rows('reranking', 'wordnet_definitions', rerank, units)


def _categories(out, group, max_dev):
  labelled = [s for s in group if LEXNAMES[s.lexname][0] != 'noun.Tops']
  train_part = [s for s in labelled if is_dev('classification-train ' + s.key, 30)]
  test_part = [s for s in labelled if not is_dev('classification-train ' + s.key, 30)]
  text = lambda s: {'text': s.definition, 'label': LEXNAMES[s.lexname][0]}
  per_label_test = max(1, 4 * max_dev // len(LEXNAMES))
  train = [s for rows in category_rows(train_part, 32).values() for s in rows]
  test = [s for rows in category_rows(test_part, per_label_test).values() for s in rows]
  # A category with no training example in a half cannot be learned there (MTEB's few-shot
  # protocol); CorpusOutput.classification leaves such test rows out.
  out.classification('wordnet_category', [text(s) for s in train], [text(s) for s in test],
                     [s.key for s in train], [s.key for s in test])
  for pos, name in (('n', 'wordnet_noun_category'), ('v', 'wordnet_verb_category')):
    # The largest categories only: with ~25 small clusters a random encoder's V-measure
    # was 37 (chance level rises as the items per cluster fall).
    members = [s for s in test_part if s.pos == pos]
    sizes = collections.Counter(s.lexname for s in members)
    biggest = {lex for lex, _ in sorted(sizes.items(), key=lambda x: (-x[1], x[0]))[:CLUSTERS]}
    members = [s for s in members if s.lexname in biggest]
    per_label = max(2, 4 * max_dev // CLUSTERS)
    rows = [s for group_rows in category_rows(members, per_label).values() for s in group_rows]
    out.rows('clustering', name, [text(s) for s in rows], [s.key for s in rows])


def _pairs(out, group, sister, rng, max_dev):
  pairs, units = [], []
  for s in capped([s for s in group if len(s.lemmas) > 1], max_dev, 'dev_synonyms'):
    other = sister(s.key, rng)
    a, b = rng.sample(s.lemmas, 2)
    pairs.append({'text1': a, 'text2': b, 'label': 1})
    units.append(s.key)
    if other:
      pairs.append({'text1': a, 'text2': rng.choice(other.lemmas), 'label': 0})
      units.append(s.key)
  out.rows('pair_classification', 'wordnet_synonyms', pairs, units)

  senses = collections.defaultdict(list)  # word → its dev senses that have an example
  for s in group:
    if s.examples:
      for lemma in dict.fromkeys(x.casefold() for x in s.lemmas):
        senses[lemma].append(s)
  rows, units, used = [], [], set()
  for word in capped(sorted(w for w, ss in senses.items() if len(ss) > 1), max_dev,
                     'dev_sense_words'):
    a, b = rng.sample(senses[word], 2)
    if a.key in used or a.examples[0] == b.examples[0]:
      continue
    used.add(a.key)
    rows += [{'text1': a.definition, 'text2': a.examples[0], 'label': 1},
             {'text1': a.definition, 'text2': b.examples[0], 'label': 0}]
    units += [a.key, a.key]
  out.rows('pair_classification', 'wordnet_sense_examples', rows, units)


def _sts(out, group, sister, rng, synsets, max_dev):
  taxonomy = [s for s in group if s.pos in 'nv']
  with_examples = [s for s in taxonomy if s.examples]
  tasks = (('wordnet_taxonomy_wup', taxonomy, lambda s: s.definition),
           ('wordnet_lemma_wup', taxonomy, lambda s: s.lemmas[0]),
           ('wordnet_example_wup', with_examples, lambda s: s.examples[0]))
  for name, pool, text in tasks:
    rows, units, keys = [], [], {s.key for s in pool}
    for i, s in enumerate(capped(pool, 2 * max_dev, 'dev_sts', name)):
      other = sister(s.key, rng) if i % 2 == 0 else rng.choice(pool)
      if other is None or other.key not in keys or other.key == s.key or text(other) == text(s):
        continue
      score = wu_palmer(s.key, other.key, synsets)
      rows.append({'text1': text(s), 'text2': text(other), 'score': round(5 * score, 3)})
      units.append(s.key)
    out.rows('sts', name, rows, units)
