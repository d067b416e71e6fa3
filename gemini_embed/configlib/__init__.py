"""Shared pieces of the Python configs in `configs/`: argument parsing, the
common base config, validation that names the offending field, and loading a
config file by path."""

from gemini_embed.configlib.args import parse_arg
from gemini_embed.configlib.base import base_config, tiny_mode
from gemini_embed.configlib.checks import check_config
from gemini_embed.configlib.config_file import config_module, load_config_file

__all__ = ['parse_arg', 'base_config', 'check_config', 'config_module', 'load_config_file',
           'tiny_mode']
