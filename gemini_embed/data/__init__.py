"""Training data: sources, prompts, tokenisation, task-homogeneous batches (grain).

    spec.py           the `config.data` section, dataset entries, their checks
    sources.py        JSONL / ArrayRecord / seqio rows → validated Examples, bad rows counted
    jsonl.py          JSON Lines reader (also the dev suite's and encode's): path:line errors
    prompts.py        task template on queries, title template on documents, task dropout
    tokenization.py   BucketTokenizer: BOS/EOS per family, truncation, length buckets
    collate.py        one process's slice of a batch → `Batch` (batch.py), duplicate ids
    mixture.py        which dataset each global batch comes from (seeded, random access)
    pipeline.py       all of it as a grain pipeline: `train_iterator(config, tokenizer, ...)`
    build_corpora.py  real local corpora → training JSONL + the dev suite in select / report
                      halves (corpora/: one builder per source, *_dev.py their dev tasks)
    seqio_reader.py   seqio Tasks/Mixtures → rows and dataset entries, seqio vocabularies
    seqio_export.py   our datasets → seqio Tasks + Mixture (both: the `seqio` extra)
"""
