"""Chat templates: a prompt as one user turn, rendered as the model's own template says.

The template is the Jinja string of the model's metadata (GGUF `tokenizer.chat_template`,
HF `tokenizer_config.json` / `chat_template.jinja`; SmolLM2's is ChatML), rendered as
transformers' `apply_chat_template` renders it (sandboxed Jinja, trim_blocks,
lstrip_blocks, `messages`, `add_generation_prompt`, `bos_token`, `eos_token`,
`raise_exception`). The rendered text holds its special tokens as text
(`<|im_start|>`); it is tokenised without adding any more (`add_special_tokens=False`).
The offline Gemma 3 270M is a base model: prompt it few-shot, without --chat.
"""

from __future__ import annotations

import functools

from gemini_embed.llm.model import LLM


def render(llm: LLM, prompt: str) -> str:
  """`prompt` as a user message followed by the assistant's turn marker."""
  if not llm.chat_template:
    raise ValueError(f'--chat: {llm.source} has no chat template in its metadata (a base '
                     'model? prompt it without --chat)')
  return _compiled(llm.chat_template).render(
      messages=[{'role': 'user', 'content': prompt}], add_generation_prompt=True,
      bos_token=llm.bos or '', eos_token=llm.eos or '')


def prompt_ids(llm: LLM, prompt: str, chat: bool) -> list[int]:
  """A prompt's token ids: the chat-rendered text without added specials, or the plain
  text with the tokenizer's own (e.g. Gemma's BOS)."""
  if chat:
    return llm.tokenizer.encode(render(llm, prompt), add_special_tokens=False).ids
  return llm.tokenizer.encode(prompt).ids


@functools.lru_cache(maxsize=8)
def _compiled(template: str):
  from jinja2.exceptions import TemplateError
  from jinja2.sandbox import ImmutableSandboxedEnvironment

  def raise_exception(message):
    raise TemplateError(message)

  env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                      extensions=['jinja2.ext.loopcontrols'])
  env.globals['raise_exception'] = raise_exception
  return env.from_string(template)
