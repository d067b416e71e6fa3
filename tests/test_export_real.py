"""Export of demo-size runs on the two real LLMs (SmolLM2-135M, Gemma 3 270M; their first
4 layers, a 768-d head, the demo's 32/64-token limits): SentenceTransformer(OUT) offline
embeds real text as our encoder does, within 1e-5, queries and documents, full and MRL."""

import os
import shutil

import jax
import numpy as np
import pytest
from tokenizers import Tokenizer

from gemini_embed import sharding
from gemini_embed.encoding import load_run
from gemini_embed.eval.embeddings import mrl_view
from gemini_embed.export import export
from gemini_embed.models.gguf_import import GGUFCheckpoint, gguf_file, load_gguf_embedder
from tests.export_fixtures import save_run
from tests.models import real_cache
from tests.models.real_strings import docstrings

pytestmark = pytest.mark.slow
pytest.importorskip('torch')
st = pytest.importorskip('sentence_transformers')

MODELS = ('smollm2', 'gemma3-270m')
EMBED_DIM, MRL_DIMS = 768, (128, 256, 768)
DOCS = docstrings(12)
QUERIES = [' '.join(d.split()[:10]) for d in DOCS]  # within the 32-token query limit


@pytest.fixture(scope='module', params=MODELS)
def real_export(request, tmp_path_factory):
  name = request.param
  root = tmp_path_factory.mktemp(f'real-{name}')
  model_dir = real_cache.model_dir(name)
  cfg = GGUFCheckpoint(gguf_file(model_dir)).config.with_layers(4)
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  model, cfg = load_gguf_embedder(model_dir, EMBED_DIM, mesh, sharding.DEFAULT_RULES, cfg=cfg)
  workdir = save_run(str(root / 'run'), model, cfg,
                     Tokenizer.from_file(os.path.join(model_dir, 'tokenizer.json')),
                     init_from=model_dir, query_max_len=32, doc_max_len=64,
                     embed_dim=EMBED_DIM, mrl_dims=MRL_DIMS)
  out = str(root / 'export')
  export(workdir, out)
  encoder = load_run(workdir, mesh_sizes={'data': -1}).encoder(batch_size=16)
  yield name, out, encoder
  shutil.rmtree(root, ignore_errors=True)  # 1.3 GB for Gemma 3: not left for the session's end


def test_real_export_matches_our_encoder(real_export):
  name, out, encoder = real_export
  model = st.SentenceTransformer(out, trust_remote_code=True, local_files_only=True,
                                 device='cpu')
  ours_q = encoder(QUERIES, 'query', 'retrieval')
  ours_d = encoder(DOCS, 'document', 'retrieval')
  for dim in (None, MRL_DIMS[0]):
    model.truncate_dim = dim
    got_q = model.encode_query(QUERIES, normalize_embeddings=True)
    got_d = model.encode_document(DOCS, normalize_embeddings=True)
    for kind, got, want in (('query', got_q, ours_q), ('document', got_d, ours_d)):
      want = mrl_view(want, dim or EMBED_DIM)
      err = float(np.max(np.abs(got - want)))
      print(f'{name} {kind} dim={dim}: max |ST - ours| = {err:.1e}')
      assert err < 1e-5, (name, kind, dim, err)
