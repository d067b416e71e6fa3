"""Manual pages on the machine (`man -l FILE`, rendered as plain text): the NAME line
(`ls - list directory contents`) ↔ paragraphs of DESCRIPTION.

The auto-generated gcloud pages are skipped; the split unit is the page name.
Rendering costs ~40 ms a page, so the default build reads a capped, evenly spread
sample of pages.
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import re
import subprocess

from gemini_embed.data.corpora.output import CorpusOutput, capped, is_dev

MAN_DIR = '/usr/share/man'
_SECTIONS = ('man1', 'man5', 'man7', 'man8')
_HEADING = re.compile(r'^[A-Z][A-Z /-]+$')


def page_files(folder: str = MAN_DIR) -> list[str]:
  files = []
  for section in _SECTIONS:
    files.extend(p for p in glob.glob(os.path.join(folder, section, '*'))
                 if not os.path.basename(p).startswith('gcloud'))
  return sorted(files)


def render(path: str) -> str:
  env = dict(os.environ, MANWIDTH='100', MAN_KEEP_FORMATTING='', LC_ALL='C.UTF-8')
  try:
    done = subprocess.run(['man', '--nh', '--nj', '-l', path], capture_output=True, env=env,
                          timeout=30, check=False)
  except (OSError, subprocess.TimeoutExpired):
    return ''
  text = done.stdout.decode('utf-8', errors='replace')
  return re.sub(r'.\x08', '', text)  # overstrike bold/underline, if any


def sections(text: str) -> dict[str, list[str]]:
  """Heading → paragraphs (whitespace-joined) of a rendered page."""
  out, current, paragraph = {}, None, []

  def flush():
    if current is not None and paragraph:
      out[current].append(' '.join(' '.join(paragraph).split()))
    paragraph.clear()

  for line in text.splitlines()[1:]:
    if _HEADING.match(line):
      flush()
      current = line.strip()
      out.setdefault(current, [])
    elif not line.strip():
      flush()
    elif current is not None:
      paragraph.append(line.strip())
  flush()
  return out


def page_pairs(text: str, max_paragraphs: int = 3) -> tuple[str, list[str]] | None:
  """(NAME line, prose paragraphs of DESCRIPTION) or None when the page lacks either."""
  parts = sections(text)
  name = ' '.join(parts.get('NAME', []))
  prose = [p for p in parts.get('DESCRIPTION', []) if len(p) >= 80 and not p.startswith('-')]
  if not name or ' - ' not in name or not prose:
    return None
  return name, prose[:max_paragraphs]


def build(out: CorpusOutput, *, dev_percent: float, max_rows: int, max_dev: int,
          max_pages: int = 300, folder: str = MAN_DIR) -> int:
  """Returns the number of pages read (0 when the machine has no man pages).

  Training reads the training pages among a sample of `max_pages` pages; development
  pages are sampled on their own (up to `max_dev`), so the dev task does not shrink
  with the training cap.
  """
  unit_of = lambda path: os.path.basename(path).split('.')[0]
  every = page_files(folder)
  files = ([p for p in capped(every, max_pages, 'man_pages') if not is_dev(unit_of(p), dev_percent)]
           + capped([p for p in every if is_dev(unit_of(p), dev_percent)], max_dev, 'man_dev'))
  with concurrent.futures.ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
    rendered = list(pool.map(render, files))
  train, dev = [], []
  for path, text in zip(files, rendered):
    pair = page_pairs(text)
    if pair is None:
      continue
    unit = unit_of(path)
    if not is_dev(unit, dev_percent):
      train.append((unit,) + pair)
    elif unit not in {u for u, _, _ in dev}:  # one page per name (crontab(1), crontab(5))
      dev.append((unit,) + pair)
  out.train('man_pages', capped([{'query': name, 'positive': p}
                                 for _, name, paragraphs in train for p in paragraphs],
                                max_rows, 'man_train'))
  if dev:
    docs = [(f'{unit}#{i}', unit, p) for unit, _, paragraphs in dev
            for i, p in enumerate(paragraphs)]  # every paragraph of the page is relevant
    out.retrieval('man_pages', [(unit, name) for unit, name, _ in dev],
                  [(doc_id, '', p) for doc_id, _, p in docs],
                  [(unit, doc_id) for doc_id, unit, _ in docs],
                  unit=lambda i: i.split('#')[0])
  return len(files)
