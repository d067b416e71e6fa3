"""Backbone transformer, attention masks, pooling + projection head, importers."""

from flax import nnx

# Parameters carry logical axis names only; `gemini_embed.sharding` resolves
# them against the mesh. Flax's eager sharding would demand a mesh context at
# construction time, which notebooks and importers do not have.
nnx.use_eager_sharding(False)
