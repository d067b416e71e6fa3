"""Shared pieces of the Python configs in `configs/`: argument parsing, the
common base config, and validation that names the offending field."""

from gemini_embed.configlib.args import parse_arg
from gemini_embed.configlib.base import base_config, tiny_mode
from gemini_embed.configlib.checks import check_config

__all__ = ['parse_arg', 'base_config', 'check_config', 'tiny_mode']
