"""The demo's evaluate command (demo.evaluate_command): what it scores by default and with
--stage_rows, and which paired comparisons it asks for. (The pipeline itself runs in the
slow tests/test_demo.py, without --stage_rows.)"""

from gemini_embed import demo


def _args(command, flag):
  return [a.split('=', 1)[1] for a in command if a.startswith(f'--{flag}=')]


def test_the_default_scores_what_the_demo_delivers_and_the_soup_against_minilm():
  runs = {r: f'/w/{r}' for r in demo.DELIVERED}
  command = demo.evaluate_command(runs, '/c/dev', '/w/results.json', ['bm25', 'minilm'], False)
  assert command[1:3] == ['-m', 'gemini_embed.evaluate']
  assert _args(command, 'workdir') == [
      'finetune-a=/w/finetune-a,finetune-b=/w/finetune-b,soup=/w/soup']
  assert _args(command, 'half') == ['report'] and _args(command, 'peers') == ['bm25,minilm']
  assert _args(command, 'compare') == [
      'finetune-b@768,finetune-a@768', 'soup@768,finetune-a@768', 'soup@768,finetune-b@768',
      'soup@768,all-MiniLM-L6-v2@384']
  assert not _args(command, 'classification_experiments')


def test_stage_rows_add_the_init_and_the_pre_finetune_and_their_comparison():
  runs = {r: f'/w/{r}' for r in ('init',) + demo.TRAINED}
  command = demo.evaluate_command(runs, '/c/dev', '/w/results.json', [], True)
  assert _args(command, 'workdir') == [
      'init=/w/init,prefinetune=/w/prefinetune,finetune-a=/w/finetune-a,'
      'finetune-b=/w/finetune-b,soup=/w/soup']
  assert _args(command, 'peers') == ['none']
  assert 'finetune-a@768,prefinetune@768' in _args(command, 'compare')
  assert not any('MiniLM' in c for c in _args(command, 'compare'))  # not a peer here
  assert _args(command, 'classification_experiments') == ['2']  # the quick demo
