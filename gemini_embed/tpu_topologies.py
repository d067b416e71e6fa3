"""Cloud TPU slice names (`v5p-128`, `v5e-256`, …) → what a compile for them needs.

A slice's name counts TensorCores on v4/v5p (two per chip, run as one "megacore"
device: v5p-128 is 64 chips, 64 JAX devices) and chips on v5e/v6e (one core each:
v5e-256 is 256 devices). `topology` is libtpu's name for the chip grid, as
`jax.experimental.topologies.get_topology_desc` takes it (MaxText's
accelerator_to_spec_map uses the same names). HBM and peak bf16 FLOP/s are per chip,
from Google Cloud's TPU pages.
"""

from __future__ import annotations

import dataclasses

GiB = 2**30


@dataclasses.dataclass(frozen=True)
class Generation:
  prefix: str               # libtpu topology prefix ('v5e', 'v5', 'v6e')
  chip_config: str          # 'megacore' (two cores as one device) or 'default'
  cores_per_chip: int       # how many the slice name counts per chip
  hbm_bytes: int            # per chip
  peak_flops: float         # per chip, bf16
  grids: dict[int, str]     # chips → chip grid


_2D = {4: '2x2', 8: '2x4', 16: '4x4', 32: '4x8', 64: '8x8', 128: '8x16', 256: '16x16'}
_3D = {4: '2x2x1', 8: '2x2x2', 16: '2x2x4', 32: '2x4x4', 64: '4x4x4', 128: '4x4x8',
       256: '4x8x8', 512: '8x8x8'}

GENERATIONS = {
    'v5e': Generation('v5e', 'default', 1, 16 * GiB, 197e12, _2D),
    'v5p': Generation('v5', 'megacore', 2, 95 * GiB, 459e12, _3D),
    'v6e': Generation('v6e', 'default', 1, 32 * GiB, 918e12, _2D),
}


@dataclasses.dataclass(frozen=True)
class Slice:
  name: str                 # 'v5p-128'
  chips: int                # JAX devices per slice
  topology: str             # 'v5:4x4x4'
  chip_config: str
  hbm_bytes: int
  peak_flops: float
  chips_per_host: tuple[int, int, int] = (2, 2, 1)

  @property
  def hosts(self) -> int:
    """TPU VMs (JAX processes) per slice: 4 chips each, one VM up to 8 chips."""
    return 1 if self.chips <= 8 else self.chips // 4


def parse_slice(name: str) -> Slice:
  """'v5p-128' → Slice(chips=64, topology='v5:4x4x4', …); a clear error for anything else."""
  gen_name, _, count = name.partition('-')
  gen = GENERATIONS.get(gen_name)
  if gen is None or not count.isdigit():
    raise ValueError(f'--topology={name!r}: expected GENERATION-COUNT with GENERATION one of '
                     f'{sorted(GENERATIONS)}, e.g. v5p-128 or v5e-256')
  chips = int(count) // gen.cores_per_chip
  if int(count) % gen.cores_per_chip or chips not in gen.grids:
    known = ', '.join(f'{gen_name}-{c * gen.cores_per_chip}' for c in sorted(gen.grids))
    raise ValueError(f'--topology={name!r}: not a {gen_name} slice size; known: {known}')
  return Slice(name, chips, f'{gen.prefix}:{gen.grids[chips]}', gen.chip_config,
               gen.hbm_bytes, gen.peak_flops)
