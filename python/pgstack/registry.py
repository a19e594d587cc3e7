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
class RetryPolicy:
    """How a job name's failures are retried: the delay before retry n is
    ``base_delay_ms * 2^(n-1)``, capped at ``max_delay_ms``, times a random factor in
    ``[1 - jitter, 1 + jitter]``; exceptions of the ``no_retry`` types (and
    :class:`pgstack.PermanentError`) go straight to the dead letter."""

    base_delay_ms: int | None = None  # None: the worker's --retry-delay-ms
    max_delay_ms: int = 86_400_000
    jitter: float = 0.0
    no_retry: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.base_delay_ms is not None and self.base_delay_ms < 0:
            raise ValueError(f"base_delay_ms must be 0 or more, got {self.base_delay_ms}")
        if self.max_delay_ms < 0:
            raise ValueError(f"max_delay_ms must be 0 or more, got {self.max_delay_ms}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be from 0 to 1, got {self.jitter}")


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Handler:
    """A registered handler: ``fn(payload, report_progress)``, or ``fn(payload)``;
    transactional handlers also get ``conn``, a connection inside the transaction that
    marks the job completed."""

    job_name: str
    fn: HandlerFunction
    is_async: bool
    takes_progress: bool
    cron: str | None = None
    timeout: float | None = None
    retry: RetryPolicy = DEFAULT_RETRY
    transactional: bool = False

    @classmethod
    def wrap(
        cls,
        job_name: str,
        fn: HandlerFunction,
        *,
        cron: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        transactional: bool = False,
    ) -> Handler:
        if not callable(fn):
            raise TypeError(f"handler for {job_name!r} is not callable: {fn!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout of {job_name!r} must be positive, got {timeout!r}")
        return cls(
            job_name,
            fn,
            inspect.iscoroutinefunction(fn),
            transactional or _takes_two_arguments(fn),
            cron,
            timeout,
            retry or DEFAULT_RETRY,
            transactional,
        )


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
    def register(self, job_name: str, **options: Any) -> Callable[[F], F]: ...

    @overload
    def register(self, job_name: str, fn: F, **options: Any) -> F: ...

    def register(self, job_name: str, fn: F | None = None, **options: Any) -> F | Callable[[F], F]:
        """``registry.register("name", fn)``, or ``@registry.register("name")``; options:
        ``cron``, ``timeout`` (seconds), ``retry`` (:class:`RetryPolicy`), ``transactional``."""
        if not isinstance(job_name, str) or not job_name:
            raise ValueError(f"job name must be a non-empty string, got {job_name!r}")

        def add(function: F) -> F:
            self.add(Handler.wrap(job_name, function, **options))
            return function

        return add if fn is None else add(fn)

    def add(self, handler: Handler) -> None:
        existing = self._handlers.get(handler.job_name)
        if existing is not None and existing.fn is not handler.fn:
            raise ConfigurationError(
                f"job {handler.job_name!r} already has a handler: {_describe(existing.fn)}"
            )
        self._handlers[handler.job_name] = handler

    def merge(self, other: HandlerRegistry) -> None:
        for handler in other:
            self.add(handler)

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


def job(
    job_name: str,
    *,
    cron: str | None = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    transactional: bool = False,
) -> Callable[[F], F]:
    """Register the decorated function as the handler of ``job_name``::

        @pgstack.job("send-welcome-email")
        async def send_welcome_email(payload, report_progress): ...

    ``cron="*/5 * * * *"`` also enqueues the job at every tick (UTC), once per tick
    however many workers run. ``timeout`` (seconds) fails an attempt that runs longer.
    ``retry`` sets the backoff and which exceptions are not retried.
    ``transactional=True`` passes a third argument, ``conn``: the handler's writes
    through it commit in the same transaction that marks the job completed.
    """
    return default_registry.register(
        job_name, cron=cron, timeout=timeout, retry=retry, transactional=transactional
    )
