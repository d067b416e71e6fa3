"""The LLM runtime: the project's transformer, causal, as a batched generator and scorer.

    model.py     --llm=SRC → weights (models/pretrained.load_backbone), tokenizer,
                 EOS ids, chat template, context length
    decode.py    prefill + KV-cache decode (models/kv_cache.py), jitted per length bucket
    sampling.py  greedy / temperature / top-k / top-p, per-row keys fold_in(seed, row)
    chat.py      the model's chat template (Jinja from its metadata)
    scoring.py   log-likelihoods of continuations, option probabilities
    jobs.py      JSONL in → JSONL out: checked rows, shards, resume, progress
    generate.py, score.py   the command-line tools
"""
