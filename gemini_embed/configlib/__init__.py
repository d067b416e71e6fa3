"""Shared pieces of the Python configs in `configs/`: argument parsing, the
common base config, validation that names the offending field, loading a
config file by path, and the command line of tools that take `--config`."""

from gemini_embed.configlib.args import parse_arg
from gemini_embed.configlib.base import base_config, tiny_mode
from gemini_embed.configlib.checks import check_config
from gemini_embed.configlib.config_flag import parse_config_flags
from gemini_embed.configlib.config_file import config_module, load_config_file

__all__ = ['parse_arg', 'base_config', 'check_config', 'config_module', 'load_config_file',
           'parse_config_flags', 'tiny_mode']
