"""The training sets `build_corpora` writes (DIR/train/NAME.jsonl) and their config entries.

Configs take their dataset entries from here so the names, task strings and types
stay in step with the builder. Task strings follow design.md's list.
"""

from __future__ import annotations

import os

import ml_collections

from gemini_embed.data.spec import dataset_entry

# name → (stage, type, task string, what a row is)
TRAINING_SETS = {
    # Stage 1: (title, passage) pairs.
    'pydoc_topics': ('prefinetune', 'retrieval', 'retrieval',
                     'Python reference topic title → one paragraph of it'),
    'stdlib_docs': ('prefinetune', 'retrieval', 'retrieval',
                    'qualified name of a stdlib module/class/function → its docstring'),
    'wordnet_glosses': ('prefinetune', 'retrieval', 'retrieval',
                        'WordNet lemma → the gloss of one of its senses'),
    'man_pages': ('prefinetune', 'retrieval', 'retrieval',
                  'man page name and one-line summary → a paragraph of the page'),
    # Stage 2: task-specific triples with a hard negative.
    'code_docstring': ('finetune', 'code_retrieval', 'code retrieval',
                       'docstring → function source; negative: a function of the same module'),
    'wordnet_reverse_dictionary': ('finetune', 'retrieval', 'retrieval',
                                   'gloss → synset lemmas; negative: a sister synset'),
    'wordnet_category': ('finetune', 'classification', 'classification',
                         'gloss → lexicographer category description; negative: another'),
    'wordnet_synonyms': ('finetune', 'pair_classification', 'pair_classification',
                         'lemma → a synonym; negative: a lemma of a sister synset'),
    'gettext_bitext': ('finetune', 'bitext', 'bitext',
                       'English UI message → translation; negative: another of the catalog'),
    'cldr_names': ('finetune', 'bitext', 'bitext',
                   'English language/territory name → localised name; negative: another'),
    'freedict_bitext': ('finetune', 'bitext', 'bitext',
                        'headword → dictionary translation; negative: a neighbouring entry'),
    # Written by the curation tools (gemini_embed/curate/), not by build_corpora.
    'synthetic_queries': ('finetune', 'retrieval', 'retrieval',
                          'LLM-written query → a man-page / pydoc passage (synthesize_queries)'),
    'synthetic_classification': ('finetune', 'classification', 'classification',
                                 'LLM-written text → its label description; negative: another '
                                 '(synthesize_classification)'),
}

# The paper's three fine-tuning mixtures, here over what the local corpora offer.
FINETUNE_MIXTURES = {
    'task': dict(code_docstring=1, wordnet_reverse_dictionary=1, wordnet_category=1,
                 wordnet_synonyms=1, gettext_bitext=1, cldr_names=0.5, freedict_bitext=0.5),
    'language': dict(gettext_bitext=3, cldr_names=1, freedict_bitext=2,
                     wordnet_reverse_dictionary=1, wordnet_category=0.5),
    'code': dict(code_docstring=4, wordnet_reverse_dictionary=1, gettext_bitext=0.5),
}
PREFINETUNE_RATES = dict(pydoc_topics=0.5, stdlib_docs=2, wordnet_glosses=3, man_pages=1)


def corpus_entries(rates: dict[str, float]) -> ml_collections.ConfigDict:
  """`config.data.datasets` for the given names and mixture rates."""
  out = ml_collections.ConfigDict()
  for name, rate in rates.items():
    stage, kind, task, _ = TRAINING_SETS[name]
    out[name] = dataset_entry(f'train/{name}.jsonl', task, stage=stage, rate=rate, type=kind)
  return out


def built_sets(rates: dict[str, float], corpora: str) -> dict[str, float]:
  """The sets of `rates` present in CORPORA/train (a machine without man pages builds no
  man_pages set); before CORPORA/train exists, all of them."""
  train = os.path.join(corpora, 'train')
  if not os.path.isdir(train):
    return rates
  return {k: v for k, v in rates.items() if os.path.exists(os.path.join(train, f'{k}.jsonl'))}
