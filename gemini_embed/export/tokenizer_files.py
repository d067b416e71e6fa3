"""The run's tokenizer as transformers loads it, adding what `encode` adds.

`encode` tokenises without the tokenizer's own post-processor and adds BOS/EOS from
`config.data.bos_token` / `eos_token` (data/tokenization.py; 'auto': Gemma BOS only,
Llama/Qwen none). The exported tokenizer.json gets exactly those as its
post-processor (a TemplateProcessing), so a transformers tokenizer called with
`add_special_tokens=True` and `truncation=True` gives `encode`'s ids: the text is cut
to max_length minus the special tokens, EOS kept. Padding uses the token of id 0,
as `encode` pads (the mask hides it).
"""

from __future__ import annotations

import json
import os

from tokenizers import Tokenizer
from tokenizers.processors import TemplateProcessing

from gemini_embed.data.tokenization import special_token_id, special_tokens


def write_tokenizer(tokenizer: Tokenizer, family: str, data_config, directory: str,
                    max_length: int, remote_class: str | None = None) -> dict[str, int | None]:
  """Writes tokenizer.json and tokenizer_config.json; returns {bos, eos, pad} token ids.

  remote_class: 'module.Class' of a tokenizer shipped as remote code, for the families
  whose AutoTokenizer class would rebuild the tokenizer (models/hf_bidirectional.py).
  """
  tok = Tokenizer.from_str(tokenizer.to_str())
  bos, eos = special_tokens(family, data_config.bos_token, data_config.eos_token)
  bos_id = special_token_id(tok, bos, 'config.data.bos_token')
  eos_id = special_token_id(tok, eos, 'config.data.eos_token')
  specials = [(t, i) for t, i in ((bos, bos_id), (eos, eos_id)) if i is not None]
  single = ' '.join(([f'{bos}:0'] if bos_id is not None else []) + ['$A:0'] +
                    ([f'{eos}:0'] if eos_id is not None else []))
  tok.post_processor = TemplateProcessing(single=single, special_tokens=specials)
  tok.no_truncation()
  tok.no_padding()
  tok.save(os.path.join(directory, 'tokenizer.json'))
  pad = tok.id_to_token(0)
  config = {'tokenizer_class': 'TokenizersBackend', 'model_max_length': max_length,
            'padding_side': 'right', 'truncation_side': 'right', 'pad_token': pad,
            'clean_up_tokenization_spaces': False}
  if remote_class:
    config['auto_map'] = {'AutoTokenizer': [None, remote_class]}
  if bos_id is not None:
    config['bos_token'] = bos
  if eos_id is not None:
    config['eos_token'] = eos
  with open(os.path.join(directory, 'tokenizer_config.json'), 'w') as f:
    json.dump(config, f, indent=2)
  return {'bos': bos_id, 'eos': eos_id, 'pad': 0}
