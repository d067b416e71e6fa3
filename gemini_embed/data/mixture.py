"""Which dataset each global batch comes from: a seeded, random-access schedule.

Global batch `step` comes from dataset d(step), drawn i.i.d. from the normalised
mixture rates with a counter-based generator keyed by (seed, block): any step's
choice is computable without replaying the ones before it, so resuming and
multi-process runs agree without communication. It is also the k-th batch of
that dataset, k = #{s < step : d(s) = d(step)}; each dataset walks its own
shuffled, repeated stream of examples batch after batch, so no example repeats
within an epoch of its dataset and none is skipped.

    step     0  1  2  3  4  5  6 ...
    dataset  a  a  b  a  c  b  a      (rates a .5, b .3, c .2)
    k        0  1  0  2  0  1  3
"""

from __future__ import annotations

import sys
import threading
from typing import Sequence

import grain
import numpy as np

_BLOCK = 4096


class MixtureSchedule(grain.transforms.DatasetSelectionMap):
  """step → (dataset index, that dataset's batch index). Stateless given (rates, seed)."""

  def __init__(self, rates: Sequence[float], seed: int):
    rates = np.asarray(rates, np.float64)
    if rates.ndim != 1 or not len(rates) or (rates <= 0).any():
      raise ValueError(f'mixture rates must be positive, got {rates.tolist()}')
    self.probabilities = rates / rates.sum()
    self.seed = int(seed)
    self._blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    self._counts_before: list[np.ndarray] = [np.zeros(len(rates), np.int64)]
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return sys.maxsize

  def __getstate__(self):
    return dict(probabilities=self.probabilities, seed=self.seed)

  def __setstate__(self, state):
    self.__init__(state['probabilities'], state['seed'])

  def _choices(self, block: int) -> np.ndarray:
    rng = np.random.Generator(np.random.Philox(key=[self.seed & (2**64 - 1), block]))
    return rng.choice(len(self.probabilities), size=_BLOCK, p=self.probabilities)

  def _block(self, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(choices, index within the chosen dataset) of every step in the block."""
    with self._lock:
      if block not in self._blocks:
        while len(self._counts_before) <= block:  # prefix counts up to this block
          b = len(self._counts_before) - 1
          counts = np.bincount(self._choices(b), minlength=len(self.probabilities))
          self._counts_before.append(self._counts_before[-1] + counts)
        choices = self._choices(block)
        within = np.empty(_BLOCK, np.int64)
        for d in range(len(self.probabilities)):
          at = np.flatnonzero(choices == d)
          within[at] = self._counts_before[block][d] + np.arange(len(at))
        if len(self._blocks) > 8:
          self._blocks.clear()
        self._blocks[block] = (choices, within)
      return self._blocks[block]

  def __getitem__(self, step: int) -> tuple[int, int]:
    if step < 0:
      raise IndexError(step)
    choices, within = self._block(step // _BLOCK)
    return int(choices[step % _BLOCK]), int(within[step % _BLOCK])

  def datasets(self, start: int, stop: int) -> np.ndarray:
    """Int[stop - start]: the dataset index of each step in [start, stop)."""
    return np.array([self[s][0] for s in range(start, stop)], np.int64)
