"""Handlers: which function runs which job name, and the ``@pgstack.job`` decorator."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from pgstack.errors import ConfigurationError

HandlerFunction = Callable[..., Any]
F = TypeVar("F", bound=HandlerFunction)


@dataclass(frozen=True)
class Handler:
    """A registered handler: ``fn(payload, report_progress)``, or ``fn(payload)``."""

    job_name: str
    fn: HandlerFunction
    is_async: bool
    takes_progress: bool

    @classmethod
    def wrap(cls, job_name: str, fn: HandlerFunction) -> Handler:
        if not callable(fn):
            raise TypeError(f"handler for {job_name!r} is not callable: {fn!r}")
        return cls(job_name, fn, inspect.iscoroutinefunction(fn), _takes_two_arguments(fn))


def _takes_two_arguments(fn: HandlerFunction) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


class HandlerRegistry:
    """Job name -> handler; a name can be registered once."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    @overload
    def register(self, job_name: str) -> Callable[[F], F]: ...

    @overload
    def register(self, job_name: str, fn: F) -> F: ...

    def register(self, job_name: str, fn: F | None = None) -> F | Callable[[F], F]:
        """``registry.register("name", fn)``, or ``@registry.register("name")``."""
        if not isinstance(job_name, str) or not job_name:
            raise ValueError(f"job name must be a non-empty string, got {job_name!r}")

        def add(function: F) -> F:
            existing = self._handlers.get(job_name)
            if existing is not None and existing.fn is not function:
                raise ConfigurationError(
                    f"job {job_name!r} already has a handler: {_describe(existing.fn)}"
                )
            self._handlers[job_name] = Handler.wrap(job_name, function)
            return function

        return add if fn is None else add(fn)

    def merge(self, other: HandlerRegistry) -> None:
        for handler in other:
            self.register(handler.job_name, handler.fn)

    def get(self, job_name: str) -> Handler | None:
        return self._handlers.get(job_name)

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __iter__(self) -> Iterator[Handler]:
        return iter(list(self._handlers.values()))

    def __len__(self) -> int:
        return len(self._handlers)


def _describe(fn: HandlerFunction) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


# Handlers registered with the module-level decorator; `pgstack-run` collects them.
default_registry = HandlerRegistry()


def job(job_name: str) -> Callable[[F], F]:
    """Register the decorated function as the handler of ``job_name``::

    @pgstack.job("send-welcome-email")
    async def send_welcome_email(payload, report_progress): ...
    """
    return default_registry.register(job_name)
