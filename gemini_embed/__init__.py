"""gemini_embed: Gemini-Embedding-style text embedders in JAX/Flax (NNX)."""
