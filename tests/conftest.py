"""Test setup: simulate a pod slice with 8 CPU devices (before JAX starts)."""

import os

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=8').strip()
# libtpu is installed (the test extra, for gemini_embed.aot): keep JAX from probing for a TPU.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

import jax  # noqa: E402
from absl import flags  # noqa: E402

# grain workers and absl-using code read flags; pytest never parses them.
flags.FLAGS.mark_as_parsed()

assert jax.device_count() == 8, 'tests expect 8 simulated CPU devices'
