"""Name -> constructor registries for datasets and models, with options checked at the door."""

from __future__ import annotations

import contextlib
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from untwine.errors import UntwineError


class Registry:
    """A named collection of constructors; `create(name, **options)` validates options first."""

    def __init__(self, kind: str, section: str) -> None:
        self.kind = kind
        self.section = section  # the config section that names it, e.g. "data" for datasets
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Class decorator that files a constructor under `name`."""

        def add(constructor: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise RuntimeError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = constructor
            return constructor

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._entries:
            raise UntwineError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}"
            )
        return self._entries[name]

    def example(self, name: str, workdir: Path) -> dict[str, Any]:
        """Tiny options for `name`'s contract tests: its `example_options`, a dict or a function
        of a scratch folder where it may write the files it needs."""
        example = getattr(self.get(name), "example_options", {})
        return dict(example(workdir) if callable(example) else example)

    def options(self, name: str) -> dict[str, inspect.Parameter]:
        """The keyword options `name` accepts, with their defaults and annotations."""
        return constructor_options(self.get(name))

    def resolve(self, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """Check `options` against the constructor's signature; return them with defaults filled.

        Required options that are absent stay absent: the caller supplies them (e.g. a model's
        `observation_shape` comes from the dataset).
        """
        accepted = self.options(name)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise UntwineError(
                f"unknown option {unknown[0]!r} for {self.kind} {name!r}; "
                f"accepted: {', '.join(accepted) or 'none'}"
            )
        resolved = {}
        for key, param in accepted.items():
            if key in options:
                resolved[key] = coerce(options[key], param.annotation, f"{self.section}.{key}")
            elif param.default is not inspect.Parameter.empty:
                resolved[key] = param.default
        return resolved

    def create(self, name: str, **options: Any) -> Any:
        """Build the registered object from validated options."""
        return self.get(name)(**self.resolve(name, options))


def constructor_options(constructor: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """Keyword options of a class, following `**kwargs` up to the base class that consumes them."""
    found: list[list[inspect.Parameter]] = []
    classes = constructor.__mro__ if isinstance(constructor, type) else (constructor,)
    for cls in classes:
        init = cls.__init__ if isinstance(cls, type) else cls
        params = inspect.signature(init, eval_str=True).parameters.values()
        found.append([p for p in params if p.name != "self" and p.kind in NAMED])
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    # base-class options first: the shared backbone, then what the method adds
    return {p.name: p for group in reversed(found) for p in group}


NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Return `value` as the annotated type, or raise a one-line UntwineError."""
    origin = typing.get_origin(annotation)
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise UntwineError(
                f"{where} must be one of {', '.join(map(str, choices))}, got {value!r}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except UntwineError as error:
                errors.append(str(error))
        raise UntwineError(errors[0])
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UntwineError(f"{where} must be a list, got {value!r}")
        (item,) = set(a for a in typing.get_args(annotation) if a is not Ellipsis) or {Any}
        return origin(coerce(v, item, where) for v in value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise UntwineError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UntwineError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UntwineError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):  # inf and nan validate as floats but cannot train
            raise UntwineError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise UntwineError(f"{where} must be a string, got {value!r}")
        return value
    return value
