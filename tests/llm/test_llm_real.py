"""The two offline LLMs against transformers' reading of the same GGUF file
(tests/models/gguf_reference.py): greedy generation token id for token id on 12 real
prompts, with and without the chat template (SmolLM2's ChatML; the Gemma 3 270M base
model has none to use), a Gemma 3 batch running past its 512-token local window, and
log-likelihoods per token. Run with -s to see the measured numbers."""

import dataclasses

import jax
import numpy as np
import pytest

from gemini_embed import sharding
from gemini_embed.llm import chat
from gemini_embed.llm.decode import Generator
from gemini_embed.llm.model import load_llm
from gemini_embed.llm.scoring import Scorer, option_probabilities
from tests.llm.tiny_llm import compare_greedy, transformers_greedy
from tests.models import real_cache
from tests.models.real_strings import docstrings

pytestmark = pytest.mark.slow
torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

RULES = sharding.DEFAULT_RULES
NEW = 8


def _sentences(n: int) -> list[str]:
  """First sentences of stdlib docstrings (real English, 40-160 characters)."""
  out = []
  for doc in docstrings():
    first = ' '.join(doc.split()).split('. ')[0].rstrip('.')
    if 40 <= len(first) <= 160 and first not in out:
      out.append(first)
  assert len(out) >= n
  return out[:n]


PROMPTS = _sentences(12)


@pytest.fixture(scope='module', params=['smollm2', 'gemma3-270m'])
def real(request):
  directory = real_cache.model_dir(request.param)
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  llm = load_llm(directory, mesh, RULES)
  return llm, real_cache.reference_model(request.param), mesh, request.param


def _greedy_parity(real, prompt_ids, new, label):
  llm, ref, mesh, _ = real
  never_stop = dataclasses.replace(llm, eos_ids=())   # as the reference: all `new` tokens
  gen = Generator(never_stop, mesh, RULES, batch_size=len(prompt_ids))
  ours = [c.tokens for c in gen.generate(prompt_ids, range(len(prompt_ids)),
                                         max_new_tokens=new)]
  tokens, logits = transformers_greedy(ref, prompt_ids, new, pad=llm.pad_id)
  accepted, failures = compare_greedy(ours, tokens, logits)
  print(f'\n{llm.cfg.family} {label}: {len(ours) - accepted - len(failures)}/{len(ours)} rows '
        f'equal token for token over {new} tokens; {accepted} diverged at a near tie '
        f'(top-2 gap < 1e-4)')
  assert not failures, failures


@pytest.mark.parametrize('use_chat', [False, True])
def test_greedy_generation_matches_transformers(real, use_chat):
  llm = real[0]
  if use_chat and llm.cfg.family == 'gemma3':
    pytest.skip('the Gemma 3 270M base model is prompted without a chat template')
  ids = [chat.prompt_ids(llm, p, use_chat) for p in PROMPTS]
  _greedy_parity(real, ids, NEW, 'chat' if use_chat else 'plain')


def test_gemma_generation_past_its_local_window(real):
  llm = real[0]
  if llm.cfg.family != 'gemma3':
    pytest.skip('only Gemma 3 has local layers')
  long_ids = llm.tokenizer.encode(' '.join(docstrings())).ids
  assert len(long_ids) > 506
  # 506 + 12 tokens cross the 512-token window; the shorter row is left-padded beside it.
  _greedy_parity(real, [long_ids[:506], long_ids[:300]], 12, 'past the 512-token window')


def test_chat_template_renders_as_transformers(real):
  llm, _, _, name = real
  if not llm.chat_template:
    pytest.skip(f'{name} has no chat template')
  ref_tok = real_cache.reference_tokenizer(name)
  for prompt in PROMPTS[:4]:
    want = ref_tok.apply_chat_template([{'role': 'user', 'content': prompt}], tokenize=False,
                                       add_generation_prompt=True)
    assert chat.render(llm, prompt) == want


def _reference_logprobs(ref, context, target) -> np.ndarray:
  with torch.no_grad():
    logits = ref(input_ids=torch.tensor([list(context) + list(target)])).logits[0].double()
  logp = torch.log_softmax(logits, -1).numpy()
  return np.asarray([logp[len(context) - 1 + j, t] for j, t in enumerate(target)])


def test_log_likelihoods_match_transformers(real):
  llm, ref, mesh, _ = real
  enc = lambda s, special=True: llm.tokenizer.encode(s, add_special_tokens=special).ids
  pairs = []
  for sentence in PROMPTS[:6]:
    words = sentence.split(' ')
    half = len(words) // 2
    pairs.append((enc(' '.join(words[:half])), enc(' ' + ' '.join(words[half:]), False)))
  scorer = Scorer(llm, mesh, RULES, batch_size=6)
  ours = scorer.token_logprobs(pairs)
  worst = max(float(np.abs(o - _reference_logprobs(ref, c, t)).max())
              for o, (c, t) in zip(ours, pairs))
  print(f'\n{llm.cfg.family}: worst |log p - transformers| per token = {worst:.2e} over '
        f'{sum(len(t) for _, t in pairs)} tokens')
  assert worst < 1e-3
  context = enc('Question: Is Paris the capital of France? Answer:')
  options = [enc(' yes', False), enc(' no', False), enc(' maybe', False)]
  probs = option_probabilities(scorer, context, options)
  sums = np.asarray([_reference_logprobs(ref, context, o).sum() for o in options])
  want = np.exp(sums - sums.max()) / np.exp(sums - sums.max()).sum()
  print(f'{llm.cfg.family}: P(yes/no/maybe) = {np.round(probs, 4)} (transformers '
        f'{np.round(want, 4)})')
  assert abs(probs.sum() - 1) < 1e-12
  np.testing.assert_allclose(probs, want, atol=1e-3)
