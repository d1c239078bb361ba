"""One registry per kind of component (data source, model, attack, defence).

A registry is an ordered name -> component mapping (the order is the order of the tables' rows and
columns and of the files' keys); an unknown name is a one-line usage error listing the known ones.
Adding a component is its module plus one `register` line (or one entry in the registry's tuple).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import UsageError

T = TypeVar("T")


def lazy_function(module: str, attr: str) -> Callable:
    """`module.attr`, imported at the first call: registries name their components' code without
    importing JAX or Flax, so reading them (the Snakefile, `advrepro validate`, the report) stays quick."""
    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__qualname__ = f"{module}.{attr}"
    return call


class Registry(Generic[T]):
    def __init__(self, kind: str, components=()):
        self.kind = kind
        self._items: dict[str, T] = {}
        for component in components:
            self.register(component)

    def register(self, component: T) -> T:
        """Add a component under its `name`; returns it (usable as a decorator on instances)."""
        name = component.name
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = component
        return component

    def unregister(self, name: str) -> None:
        del self._items[name]

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}; known: {', '.join(self._items)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return list(self._items)

    def values(self) -> list[T]:
        return list(self._items.values())

    def items(self):
        return self._items.items()
