"""``once``: a property computed on first use and kept in the instance's ``__dict__``.

``functools.cached_property`` does the same but, on Python 3.11, takes a lock on every first use (one
per message id and per request's cache key: thousands a second here).  The value is a pure function
of a frozen object, so two threads computing it at once store the same value: no lock is needed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class once(Generic[T]):  # noqa: N801 - used as a decorator, like property
    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)  # later reads find it there first
        return value
