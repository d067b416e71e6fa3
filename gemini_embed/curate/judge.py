"""The LLM as the curation tools use it, on the runtime's scorer and generator:

    graded(prompt, fills)         expected grade Σ g·p(g), p = option_probabilities over
                                  the prompt's `# options:` (llm/scoring.py)
    likelihood(prompt, fills, q)  length-normalised log p(" " + q | prompt): mean per token
    generate(prompt, fills, ...)  one completion per fill (llm/decode.py), cut at `stop`

A fill whose prompt does not fit the model's context gets None (the tools reject that
row with the reason), never a truncated prompt.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gemini_embed.curate import fusion
from gemini_embed.curate.prompts import Prompt
from gemini_embed.llm.chat import prompt_ids
from gemini_embed.llm.decode import Generator
from gemini_embed.llm.model import LLM
from gemini_embed.llm.sampling import Sampling
from gemini_embed.llm.scoring import Scorer, probabilities


def single_token_split(options: Sequence[Sequence[int]]) -> list[int] | None:
  """The options' distinct last tokens when they share everything before it, else None."""
  if len({len(o) for o in options}) != 1 or not options[0]:
    return None
  if len({tuple(o[:-1]) for o in options}) != 1 or len({o[-1] for o in options}) != len(options):
    return None
  return [o[-1] for o in options]


class Judge:

  def __init__(self, llm: LLM, mesh, rules, *, batch_size: int = 8, chat: bool = False,
               scorer: Scorer | None = None, generator: Generator | None = None):
    self.llm, self.mesh, self.rules, self.chat = llm, mesh, rules, chat
    self.batch_size = batch_size
    self._scorer, self._generator = scorer, generator
    self.tokens = 0   # tokens scored or generated, for throughput

  @property
  def scorer(self) -> Scorer:
    if self._scorer is None:
      self._scorer = Scorer(self.llm, self.mesh, self.rules, batch_size=self.batch_size)
    return self._scorer

  @property
  def generator(self) -> Generator:
    if self._generator is None:
      self._generator = Generator(self.llm, self.mesh, self.rules, batch_size=self.batch_size)
    return self._generator

  def _ids(self, text: str) -> list[int]:
    return self.llm.tokenizer.encode(text, add_special_tokens=False).ids

  def _fits(self, context, target) -> bool:
    try:
      self.scorer.check(context, target)
      return True
    except ValueError:
      return False

  def _logprobs(self, pairs: list[tuple[list[int], list[int]]]) -> list[np.ndarray]:
    self.tokens += sum(len(c) + len(t) for c, t in pairs)
    return self.scorer.token_logprobs(pairs) if pairs else []

  def graded(self, prompt: Prompt, fills: Sequence[dict[str, str]]) -> list[float | None]:
    options = [self._ids(o) for o in prompt.options]
    contexts = [prompt_ids(self.llm, prompt.render(**fill), self.chat) for fill in fills]
    owners = [i for i, c in enumerate(contexts) if all(self._fits(c, o) for o in options)]
    out: list[float | None] = [None] * len(fills)
    if not owners:
      return out
    last = single_token_split(options)
    if last is not None:
      # Options = a shared prefix + one distinct token each: the prefix's log p is the same
      # for every option and cancels in the softmax; one pass per fill scores them all.
      prefix = options[0][:-1]
      ctx = [contexts[i] + prefix for i in owners]
      self.tokens += sum(len(c) + 1 for c in ctx)
      logps = self.scorer.next_token_logprobs(ctx, last)
      per_fill = [[row[j:j + 1] for j in range(len(last))] for row in logps]
    else:
      pairs = [(contexts[i], o) for i in owners for o in options]
      flat = self._logprobs(pairs)
      per_fill = [flat[j * len(options):(j + 1) * len(options)] for j in range(len(owners))]
    for i, lps in zip(owners, per_fill):
      out[i] = fusion.expected_grade(probabilities(lps), prompt.grades)
    return out

  def likelihood(self, prompt: Prompt, fills: Sequence[dict[str, str]],
                 continuations: Sequence[str]) -> list[float | None]:
    pairs, owners = [], []
    for i, (fill, cont) in enumerate(zip(fills, continuations)):
      context = prompt_ids(self.llm, prompt.render(**fill), self.chat)
      target = self._ids(' ' + cont.strip())
      if self._fits(context, target):
        pairs.append((context, target))
        owners.append(i)
    out: list[float | None] = [None] * len(fills)
    for i, lp in zip(owners, self._logprobs(pairs)):
      out[i] = float(lp.mean())
    return out

  def generate(self, prompt: Prompt, fills: Sequence[dict[str, str]], keys: Sequence[int], *,
               max_new_tokens: int, params: Sampling, stop: Sequence[str] = ('\n',)
               ) -> list[str | None]:
    """One completion per fill (cut before any of `stop`, stripped); keys: each fill's
    sampling row (fold_in(seed, key)), so a completion does not depend on its batch or a
    resume. None where the prompt does not fit the context."""
    return [c and c[0] for c in self.complete(prompt, fills, keys, max_new_tokens=max_new_tokens,
                                              params=params, stop=stop)]

  def complete(self, prompt: Prompt, fills: Sequence[dict[str, str]], keys: Sequence[int], *,
               max_new_tokens: int, params: Sampling, stop: Sequence[str] = ('\n',)
               ) -> list[tuple[str, str] | None]:
    """generate's (text, finish_reason: 'stop' | 'length') per fill."""
    ids = [prompt_ids(self.llm, prompt.render(**f), self.chat) for f in fills]
    fits = [i for i, p in enumerate(ids) if p and len(p) + max_new_tokens <=
            self.llm.context_length]
    fits.sort(key=lambda i: len(ids[i]))
    done = self.generator.generate([ids[i] for i in fits], [keys[i] for i in fits],
                                   max_new_tokens=max_new_tokens, params=params, stop=tuple(stop))
    out: list[tuple[str, str] | None] = [None] * len(fills)
    for i, c in zip(fits, done):
      out[i] = (c.text.strip(), c.finish_reason)
      self.tokens += len(ids[i]) + len(c.tokens)
    return out
