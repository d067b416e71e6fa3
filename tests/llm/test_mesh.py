"""Generation on a 2×2×2 mesh (8 simulated devices: batch over data×fsdp, KV heads and
the vocabulary over tensor; the cache sharded the same way) gives the tokens of one
device, and both give transformers' greedy tokens."""

import jax
import pytest

from gemini_embed import sharding
from gemini_embed.llm.decode import Generator
from gemini_embed.llm.model import load_llm
from gemini_embed.llm.sampling import Sampling
from tests.llm.tiny_llm import compare_greedy, save_tiny_llm, transformers_greedy

pytest.importorskip('torch')
RULES = sharding.DEFAULT_RULES


def test_2x2x2_mesh_generates_the_tokens_of_one_device(tmp_path):
  directory = str(tmp_path)
  ref = save_tiny_llm(directory, 'gemma3', seed=5)
  prompts = [[(7 * i + j) % 256 for j in range(3 + 2 * i)] for i in range(8)]
  out = {}
  for name, mesh in (('1 device', sharding.make_mesh({'data': 1}, jax.devices()[:1])),
                     ('2x2x2', sharding.make_mesh(dict(data=2, fsdp=2, tensor=2)))):
    llm = load_llm(directory, mesh, RULES)
    if name == '2x2x2':
      assert len(llm.model.embedding[...].sharding.device_set) == 8
    gen = Generator(llm, mesh, RULES, batch_size=8, chunk=4)
    greedy = [c.tokens for c in gen.generate(prompts, range(8), max_new_tokens=8)]
    sampled = [c.tokens for c in gen.generate(prompts, range(8), max_new_tokens=8,
                                              params=Sampling(temperature=1.0, seed=1))]
    out[name] = greedy, sampled
  assert out['2x2x2'] == out['1 device']
  tokens, logits = transformers_greedy(ref, prompts, 8)
  accepted, failures = compare_greedy(out['1 device'][0], tokens, logits)
  assert not failures, failures
