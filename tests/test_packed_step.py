"""Packing changes nothing but the layout: the packed batch's embeddings, loss and
parameter gradients equal the unpacked batch's (same examples, same params) within
float32 tolerance; padding never leaks into a mean (even NaN); real-token FLOPs;
configs that cannot pack are refused naming the fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gemini_embed import flops, sharding
from gemini_embed.configlib import check_config
from gemini_embed.configlib.checks import ConfigError
from gemini_embed.data import packing
from gemini_embed.models.embedder import Embedder, segment_mean_pool
from gemini_embed.models.model_config import TransformerConfig
from gemini_embed.train_loop import Throughput, train_flops
from tests.loss_fixtures import jitted_loss_and_grads, random_batch, tiny_config

CONFIG = tiny_config()
MODEL = TransformerConfig.from_config(CONFIG.model)
B, K = 8, 2


@pytest.fixture(scope='module')
def model():
  mesh = sharding.make_mesh({'data': 1}, jax.devices()[:1])
  return sharding.sharded_init(lambda: Embedder(MODEL, CONFIG.embed_dim, nnx.Rngs(CONFIG.seed)),
                               mesh, sharding.DEFAULT_RULES)


def _batches():
  batch = random_batch(3, B, MODEL.vocab_size, lq=10, ld=16, k=K)
  layout = packing.row_layout(B, K, query_max_len=10, doc_max_len=16, num_row_counts=4)
  return batch, packing.pack(batch, layout, first_example=0, global_batch=B)


def test_packed_embeddings_loss_and_gradients_equal_unpacked(model):
  batch, packed = _batches()
  assert (packed.segment_ids.max(axis=1) > 1).sum() >= 4, 'rows barely packed: a weak test'
  texts = model.embed_packed(packed.tokens, packed.segment_ids, packed.positions,
                             packed.text_index, packed.num_texts)
  docs = jnp.concatenate([batch.pos_tokens[:, None], batch.neg_tokens], 1).reshape(-1, 16)
  docs_valid = jnp.concatenate([batch.pos_valid[:, None], batch.neg_valid], 1).reshape(-1, 16)
  want = np.concatenate([model(batch.query_tokens, batch.query_valid), model(docs, docs_valid)])
  present = np.concatenate([np.ones(B, bool), np.concatenate(
      [np.ones((B, 1), bool), batch.has_neg], 1).reshape(-1)])
  np.testing.assert_allclose(np.asarray(texts)[present], want[present], rtol=1e-5, atol=1e-5)
  assert not np.asarray(texts)[~present].any()  # an absent negative embeds to 0, as unpacked

  step = jitted_loss_and_grads(CONFIG.loss, 0, CONFIG.mrl_dims)
  loss, metrics, grads = step(model, batch)
  p_loss, p_metrics, p_grads = step(model, packed)
  assert abs(float(p_loss) - float(loss)) <= 1e-5 * abs(float(loss))
  errs = [float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
          for a, b in zip(jax.tree.leaves(p_grads), jax.tree.leaves(grads))]
  print(f'packed vs unpacked: loss {float(p_loss):.6f} vs {float(loss):.6f}, worst grad leaf '
        f'rel err {max(errs):.1e} over {len(errs)} leaves')
  assert max(errs) < 1e-5
  assert jax.tree.structure(p_grads) == jax.tree.structure(grads)


def test_padding_never_reaches_a_mean_even_when_it_is_nan():
  hidden = jnp.arange(2 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 3)
  segments = jnp.array([[1, 1, 2, 0], [1, 0, 0, 0]])
  index = jnp.array([[0, 0, 2, 3], [1, 3, 3, 3]])  # text 3 = none (padding)
  hidden = jnp.where((segments == 0)[..., None], jnp.nan, hidden)
  pooled = segment_mean_pool(hidden, segments, index, 3)
  np.testing.assert_array_equal(pooled, [[1.5, 2.5, 3.5], [12, 13, 14], [6, 7, 8]])


def test_real_token_flops_count_each_text_alone():
  batch, packed = _batches()
  real_lengths = batch.text_lengths()
  want_real = sum(flops.train_step_flops(MODEL, 96, [(1, n)]) for n in real_lengths)
  count = train_flops(MODEL, 96)
  plain, packed_flops = count(batch), count(packed)
  assert plain.real == pytest.approx(want_real) and packed_flops.real == pytest.approx(want_real)
  assert plain.padded == pytest.approx(flops.train_step_flops(
      MODEL, 96, [(B, 10), (B * (1 + K), 16)]))
  assert packed_flops.real < packed_flops.padded < plain.padded
  throughput = Throughput(process_count=1, count_flops=count)
  throughput.count(packed)
  throughput.count(packed)
  out = throughput.report(peak=1e12)
  assert out['model_flops_real_per_s'] / out['model_flops_per_s'] == pytest.approx(
      packed_flops.real / packed_flops.padded)
  assert out['mfu_real'] / out['mfu'] == pytest.approx(packed_flops.real / packed_flops.padded)


def test_configs_that_cannot_pack_are_refused_naming_the_field():
  config = tiny_config()
  config.data.pack = True
  config.grad_cache_chunk = 4
  with pytest.raises(ConfigError, match=r'config\.data\.pack.*config\.grad_cache_chunk=4'):
    check_config(config)
  config.grad_cache_chunk = 0
  config.data.pack_row_counts = 0
  with pytest.raises(ConfigError, match=r'config\.data\.pack_row_counts=0'):
    check_config(config)
