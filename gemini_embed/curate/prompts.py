"""Prompt files: gemini_embed/curate/prompts/NAME.txt, or any file a flag names.

A prompt file is plain text with `{name}` placeholders (only the names a tool fills are
replaced, so code and JSON braces in few-shot examples are safe). Lines starting with
`#` before the text are comments; one of them may be `# options: 1 2 3 4 5`: the
grades the LLM chooses from (scored as " 1", " 2", ... after the prompt; the expected
grade is Σ grade · p). Edit the files, or copy one and pass its path by flag.
"""

from __future__ import annotations

import dataclasses
import os
import re

PROMPT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'prompts')


@dataclasses.dataclass(frozen=True)
class Prompt:
  path: str
  text: str
  grades: tuple[float, ...] = ()      # from `# options:`; empty for generation prompts
  labels: tuple[str, ...] = ()        # the grades as written

  @property
  def options(self) -> list[str]:
    """The continuations scored for a graded prompt."""
    return [' ' + g for g in self.labels]

  def render(self, **fills: str) -> str:
    """The text with each `{name}` of `fills` replaced, in one pass (a passage that holds
    "{query}" stays as written)."""
    if not fills:
      return self.text
    pattern = '|'.join(re.escape('{' + name + '}') for name in fills)
    return re.sub(pattern, lambda m: fills[m.group(0)[1:-1]], self.text)


def load(path_or_name: str, needs: tuple[str, ...], graded: bool = False) -> Prompt:
  """A prompt file by path or by its name in PROMPT_DIR; checks its placeholders (and
  its `# options:` line when `graded`), naming the file and what to fix."""
  path = path_or_name
  if not os.path.exists(path):
    path = os.path.join(PROMPT_DIR, path_or_name + '.txt')
  if not os.path.exists(path):
    raise FileNotFoundError(f'prompt {path_or_name!r}: no such file (nor {path})')
  with open(path, encoding='utf-8') as f:
    lines = f.read().split('\n')
  labels: tuple[str, ...] = ()
  body = 0
  while body < len(lines) and lines[body].startswith('#'):
    m = re.match(r'#\s*options:\s*(.*)$', lines[body])
    if m:
      labels = tuple(m.group(1).split())
    body += 1
  text = '\n'.join(lines[body:]).rstrip('\n')
  for name in needs:
    if '{' + name + '}' not in text:
      raise ValueError(f'{path}: the prompt lacks the placeholder {{{name}}}; the tool fills '
                       f'{", ".join("{" + n + "}" for n in needs)}')
  if graded:
    try:
      grades = tuple(float(g) for g in labels)
    except ValueError:
      raise ValueError(f'{path}: "# options: {" ".join(labels)}": the options must be '
                       'numbers (the grades)') from None
    if len(grades) < 2:
      raise ValueError(f'{path}: a graded prompt needs a line "# options: G1 G2 ..." (at '
                       'least two numeric grades) among its leading # lines')
    return Prompt(path, text, grades, labels)
  return Prompt(path, text)
