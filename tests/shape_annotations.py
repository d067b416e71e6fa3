"""Checks values against the jaxtyping shape annotations of the code (which are
documentation, not checked at run time): one binding of the dimension names
(B, S, D, ...) holds over all of a call's arguments and its result."""

import inspect
import types
import typing

import jaxtyping


def conforms(value, hint) -> bool:
  """isinstance for a jaxtyping hint, a union of them (with None), or a tuple of them."""
  origin = typing.get_origin(hint)
  if origin in (typing.Union, types.UnionType):
    return any(conforms(value, member) for member in typing.get_args(hint))
  if origin is tuple:
    members = typing.get_args(hint)
    return isinstance(value, tuple) and len(value) == len(members) and all(
        conforms(v, m) for v, m in zip(value, members))
  if hint is type(None):
    return value is None
  return isinstance(value, hint)


def _describe(value):
  return f'{type(value).__name__}{getattr(value, "shape", "")} {getattr(value, "dtype", "")}'


def check_call(fn, *args, **kwargs):
  """fn(*args, **kwargs), asserting its annotated arguments and result conform."""
  hints = typing.get_type_hints(fn)
  bound = inspect.signature(fn).bind(*args, **kwargs)
  with jaxtyping.jaxtyped('context'):
    for name, value in bound.arguments.items():
      if name in hints:
        assert conforms(value, hints[name]), f'{fn.__qualname__}({name}={_describe(value)}): ' \
            f'not {hints[name]}'
    out = fn(*args, **kwargs)
    assert conforms(out, hints['return']), f'{fn.__qualname__} returned {_describe(out)}: ' \
        f'not {hints["return"]}'
  return out


def check_fields(obj) -> None:
  """Every annotated field of a dataclass instance conforms, dims bound across fields."""
  hints = typing.get_type_hints(type(obj))
  with jaxtyping.jaxtyped('context'):
    for name, hint in hints.items():
      value = getattr(obj, name)
      assert conforms(value, hint), f'{type(obj).__name__}.{name}={_describe(value)}: not {hint}'
