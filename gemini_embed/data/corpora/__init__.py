"""Real local corpora (stdlib, WordNet, gettext, man pages, CLDR, FreeDict) → training
JSONL and a development evaluation suite; `python -m gemini_embed.data.build_corpora`."""
