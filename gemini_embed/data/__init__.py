"""Training data: sources, prompts, tokenisation, task-homogeneous batches (grain)."""
