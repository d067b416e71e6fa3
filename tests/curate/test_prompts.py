"""The shipped prompt files load with the placeholders their tools fill; a bad file is
named; rendering never re-expands text that came from a fill."""

import pytest

from gemini_embed.curate import prompts

SHIPPED = {  # name → (placeholders, graded)
    'query_writer': (('passage', 'task', 'examples'), False),
    'query_rater': (('query', 'passage'), True),
    'quality': (('query', 'passage'), True),
    'relevance': (('query', 'passage'), True),
    'query_likelihood': (('passage',), False),
    'seed_list': (('label', 'description'), False),
    'labelled_text': (('label', 'description', 'seed'), False),
}


@pytest.mark.parametrize('name', sorted(SHIPPED))
def test_shipped_prompts_load(name):
  needs, graded = SHIPPED[name]
  p = prompts.load(name, needs, graded=graded)
  assert not p.text.startswith('#') and '\n\n' in p.text   # few-shot examples, no comments
  if graded:
    assert len(p.grades) >= 2 and p.options == [' ' + g for g in p.labels]


def test_bad_prompt_files_are_named(tmp_path):
  path = tmp_path / 'p.txt'
  path.write_text('Q: {query}\nG:')
  with pytest.raises(ValueError, match=r'p.txt: the prompt lacks the placeholder \{passage\}'):
    prompts.load(str(path), ('query', 'passage'))
  with pytest.raises(ValueError, match=r'p.txt: a graded prompt needs a line "# options'):
    prompts.load(str(path), ('query',), graded=True)
  path.write_text('# options: low high\nQ: {query}')
  with pytest.raises(ValueError, match='the options must be numbers'):
    prompts.load(str(path), ('query',), graded=True)
  with pytest.raises(FileNotFoundError, match="prompt 'nope'"):
    prompts.load('nope', ())


def test_render_is_one_pass():
  p = prompts.Prompt('x', 'Q: {query}\nP: {passage} {code}')
  assert p.render(query='{passage}', passage='a {query}') == 'Q: {passage}\nP: a {query} {code}'
