"""The worker: claim jobs, run their handlers, report results; start, drain and stop.

One asyncio loop runs the claim loop, the handlers (``async def`` as tasks, ``def`` in
a thread pool), the completer and the listener; the heartbeater is a thread. At most
``concurrency`` handlers run at once; up to ``prefetch`` more jobs wait in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from typing import Any

import psycopg

from pgstack import queries
from pgstack.config import describe, redact_message
from pgstack.errors import ConfigurationError, JobCancelled, PayloadError, PermanentError, Snooze
from pgstack.migrate import load_migrations, schema_version
from pgstack.payloads import to_json
from pgstack.registry import DEFAULT_RETRY, Handler, HandlerRegistry
from pgstack.worker.completer import Completer
from pgstack.worker.heartbeater import Heartbeater
from pgstack.worker.held import HeldJob
from pgstack.worker.links import AsyncLink, LinkGaveUp, json_loads
from pgstack.worker.listener import Listener
from pgstack.worker.settings import WorkerSettings
from pgstack.worker.stats import WorkerStats
from pgstack.worker.threads import HandlerThreads
from pgstack.worker.transactions import LeaseLost, Transactions

logger = logging.getLogger("pgstack.worker")

MAX_ERROR_LENGTH = 10_000


def error_text(error: BaseException) -> str:
    """What is stored as the job's error: the exception's type and message, as text the
    database accepts (no NUL, valid UTF-8), bounded in length."""
    try:
        message = str(error)
    except BaseException as unprintable:  # an exception whose __str__ raises
        message = f"<message unprintable: {type(unprintable).__name__}>"
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > MAX_ERROR_LENGTH:
        text = text[:MAX_ERROR_LENGTH] + " ... (truncated)"
    return text


def check_schema(conninfo: str, registry: HandlerRegistry | None = None) -> None:
    """Refuse to run against a database without the schema, or with an older or newer one;
    then declare the periodic jobs of the handlers that have a cron."""
    known = len(load_migrations())
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            version = schema_version(conn)
            if version == known and registry is not None:
                for handler in registry:
                    if handler.cron:
                        conn.execute(
                            queries.SCHEDULE,
                            (
                                handler.job_name,
                                handler.cron,
                                handler.job_name,
                                "{}",
                                "UTC",
                                "default",
                                0,
                                3,
                            ),
                        )
    except psycopg.errors.InvalidParameterValue as error:
        raise ConfigurationError(f"bad cron: {error.diag.message_primary}") from None
    except psycopg.Error as error:
        raise ConfigurationError(
            f"cannot use the database {describe(conninfo)}: "
            f"{redact_message(str(error).strip(), conninfo)}"
        ) from None
    if version == 0:
        raise ConfigurationError("the database has no pgstack schema: run `pgstack migrate`")
    if version > known:
        raise ConfigurationError(
            f"the database schema is at migration {version:04d}, newer than this pgstack "
            f"knows ({known:04d}): upgrade pgstack before running workers"
        )
    if version < known:
        raise ConfigurationError(
            f"the database schema is at migration {version:04d} but this pgstack needs "
            f"{known:04d}: run `pgstack migrate`"
        )


def _uncancel(task: asyncio.Task[Any] | None) -> None:
    """A runner that caught the cancel of one job goes on with the next: the task's
    cancel count goes back down (Python 3.11+), so later timeouts inside it work."""
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()


def _run_sync(handler: Handler, job: HeldJob) -> Any:
    if handler.takes_progress:
        return handler.fn(job.payload, job.report_progress)
    return handler.fn(job.payload)


class Worker:
    def __init__(
        self,
        conninfo: str,
        registry: HandlerRegistry,
        settings: WorkerSettings | None = None,
    ) -> None:
        if len(registry) == 0:
            raise ConfigurationError("no handlers registered: nothing for the worker to run")
        self.conninfo = conninfo
        self.registry = registry
        self.settings = settings or WorkerSettings()
        self.worker_id = self.settings.worker_id
        self.stats = WorkerStats()
        # Every job claimed and not yet written back; the heartbeater extends their leases.
        self.in_hand: dict[int, HeldJob] = {}
        self._waiting: deque[HeldJob] = deque()  # claimed, not started
        self._running = 0
        self._stopping = False
        self._abandoning = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # asyncio events bind to the loop that first waits on them (Python >= 3.10).
        self._stop_requested = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._capacity = asyncio.Event()
        self._work_ready = asyncio.Event()
        self._all_idle = asyncio.Event()
        self._runners: list[asyncio.Task[None]] = []
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        self._threads = HandlerThreads()
        self._transactions: Transactions | None = None
        # Running averages that size the prefetch (see _prefetch).
        self._job_seconds = 0.01
        self._claim_seconds = 0.002

    # -- lifecycle -------------------------------------------------------------------

    def run_forever(self) -> bool:
        """Run until :meth:`request_stop`; returns False when handler threads were still
        running at the end of the shutdown timeout (their jobs were released).

        Meant as the target of a thread: an error that stops the worker from starting
        (such as a missing schema) is raised by :meth:`wait_started` in the thread that
        waits, not here, where it could only end as a stray traceback on stderr."""
        try:
            return asyncio.run(self.run())
        except BaseException:
            if self._startup_error is not None:
                return True  # nothing ran; wait_started() raises it
            raise

    def wait_started(self, timeout: float = 30) -> None:
        """Block until the worker runs; raises what stopped it from starting."""
        if not self._started.wait(timeout):
            raise TimeoutError("the pgstack worker did not start in time")
        if self._startup_error is not None:
            raise self._startup_error

    def request_stop(self) -> None:
        """Begin a graceful stop; safe to call from any thread or a signal handler."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stop_requested.set)

    async def run(self) -> bool:
        self._loop = asyncio.get_running_loop()
        try:
            await self._check_schema()
        except BaseException as error:
            self._startup_error = error
            self._started.set()
            raise
        settings = self.settings
        asynchronous = not settings.synchronous_commit
        claims = AsyncLink(
            self.conninfo, "claimer", self.worker_id, asynchronous_commit=asynchronous
        )
        results = AsyncLink(
            self.conninfo, "completer", self.worker_id, asynchronous_commit=asynchronous
        )
        self._claims = claims
        self._completer = Completer(
            results,
            self.worker_id,
            settings.retry_delay_ms,
            settings.lease_seconds,
            self.stats,
            self._written,
            on_retry_scheduled=self._wake,
        )
        if any(h.transactional for h in self.registry):
            self._transactions = Transactions(
                self.conninfo, self.worker_id, settings.concurrency, settings.lease_seconds
            )
            await self._transactions.open()
        heartbeater = Heartbeater(
            self.conninfo, settings, self._jobs_in_hand, self._lease_news, self._wake_threadsafe
        )
        self._heartbeater = heartbeater
        tasks = [asyncio.create_task(self._completer.run(), name="completer")]
        if settings.listen:
            listener = Listener(
                AsyncLink(self.conninfo, "listener", self.worker_id),
                self._wake,
                self._cancel_from_listener,
                settings.listener_check_interval,
            )
            tasks.append(asyncio.create_task(listener.run(), name="listener"))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(listener.listening.wait(), timeout=5)
        heartbeater.start()
        self._runners = [
            asyncio.create_task(self._runner(), name=f"runner-{n}")
            for n in range(settings.concurrency)
        ]
        claim_loop = asyncio.create_task(self._claim_loop(), name="claimer")
        logger.info(
            "worker %s started: %d handler(s) [%s], queues [%s], concurrency %d, prefetch %s",
            self.worker_id,
            len(self.registry),
            ", ".join(self.registry.names()),
            ", ".join(settings.queues) if settings.queues else "all",
            settings.concurrency,
            "adaptive" if settings.prefetch is None else settings.prefetch,
        )
        self._started.set()
        try:
            await self._stop_requested.wait()
        finally:
            clean = await self._shutdown(claim_loop, tasks, [claims, results])
        return clean

    async def _check_schema(self) -> None:
        await asyncio.to_thread(check_schema, self.conninfo, self.registry)

    async def _shutdown(
        self,
        claim_loop: asyncio.Task[None],
        tasks: list[asyncio.Task[None]],
        links: list[AsyncLink],
    ) -> bool:
        settings = self.settings
        self._stopping = True
        self._wakeup.set()
        self._capacity.set()
        logger.info("worker %s stopping: no new claims", self.worker_id)
        with contextlib.suppress(asyncio.CancelledError, LinkGaveUp):
            await claim_loop
        # Jobs claimed ahead and not started go back at once.
        waiting = list(self._waiting)
        self._waiting.clear()
        await self._release(waiting, "not started")
        if self._running:
            logger.info(
                "waiting up to %.0f s for %d running job(s)",
                settings.shutdown_timeout,
                self._running,
            )
            self._all_idle.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._all_idle.wait(), timeout=settings.shutdown_timeout)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._completer.flush(), timeout=10)
        self._completer.giving_up = True
        stuck = [j for j in self.in_hand.values() if j.state == "running"]
        if stuck:
            self._abandoning = True
        for runner in self._runners:
            runner.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        if stuck:
            await self._release(stuck, "still running at the shutdown timeout")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._heartbeater.stop()
        for link in links:
            await link.close()
        if self._transactions is not None:
            await self._transactions.close()
        threads_busy = any(
            not self.registry.get(j.job_name).is_async  # type: ignore[union-attr]
            for j in stuck
        )
        self._threads.shutdown()
        logger.info("worker %s stopped", self.worker_id)
        return not threads_busy

    async def _release(self, jobs: list[HeldJob], why: str) -> None:
        if not jobs:
            return
        try:
            rows = await self._claims.fetch(
                queries.RELEASE_JOBS,
                (self.worker_id, [j.id for j in jobs], [j.lease_token for j in jobs]),
                give_up=lambda: True,
            )
            released = rows[0][0]
            self.stats.released += released
            logger.info("released %d job(s) %s", released, why)
        except LinkGaveUp:
            logger.warning(
                "could not release %d job(s) %s; their leases will bring them back", len(jobs), why
            )
        for job in jobs:
            self.in_hand.pop(job.id, None)

    # -- claiming --------------------------------------------------------------------

    def _wake(self) -> None:
        self._wakeup.set()

    def _wake_threadsafe(self) -> None:
        """``_wake`` from another thread (the heartbeater's)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wakeup.set)

    def _prefetch(self) -> int:
        """Jobs to hold beyond the running ones. Fixed with --prefetch; otherwise as many
        as finish during two claim round trips (from running averages of both), so the
        next claim lands before the hands run empty: hundreds for no-op jobs, none for
        slow ones, which then never sit in one worker while another is idle."""
        if self.settings.prefetch is not None:
            return self.settings.prefetch
        rate = self.settings.concurrency / max(self._job_seconds, 1e-5)
        return int(min(self.settings.max_claim_batch, 2 * rate * self._claim_seconds))

    def _claim_size(self) -> int:
        """How many jobs to claim now (0: wait). Claims fill the free slots plus the
        prefetch; with work still waiting in hand a claim waits until a quarter of the
        room is free, so claims come in batches rather than one job at a time."""
        room = self.settings.concurrency + self._prefetch()
        free = room - self._running - len(self._waiting)
        if free <= 0:
            return 0
        if self._waiting and free < max(1, room // 4):
            return 0
        return min(free, self.settings.max_claim_batch)

    async def _claim_loop(self) -> None:
        """Claims until the worker stops; an unexpected error is logged and the loop goes
        on after a pause, so a worker never stays alive without claiming."""
        pause = 0.1
        while not self._stopping:
            try:
                await self._claim_forever()
            except (asyncio.CancelledError, LinkGaveUp):
                raise
            except Exception:
                logger.exception("claimer: unexpected error; claiming again in %.1f s", pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def _claim_forever(self) -> None:
        names = self.registry.names()
        queues = list(self.settings.queues) if self.settings.queues else None
        settings = self.settings
        more_due = True
        while not self._stopping:
            want = self._claim_size()
            if want == 0:
                self._capacity.clear()
                await self._capacity.wait()
                continue
            if not more_due:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=await self._idle_wait(names, queues)
                    )
                if self._stopping:
                    break
                want = self._claim_size()
                if want == 0:
                    continue
            self._wakeup.clear()
            began = time.monotonic()
            rows = await self._claims.fetch(
                queries.CLAIM_JOBS,
                (self.worker_id, names, want, settings.lease_seconds, queues),
                give_up=lambda: self._stopping,
            )
            self._claim_seconds += 0.2 * (time.monotonic() - began - self._claim_seconds)
            self.stats.claimed += len(rows)
            for row in rows:
                job = HeldJob(row, self._heartbeater.poke)
                self.in_hand[job.id] = job
                self._waiting.append(job)
            self._start_jobs()
            more_due = len(rows) == want

    async def _idle_wait(self, names: list[str], queues: list[str] | None) -> float:
        """How long to sleep when nothing is due: until the next scheduled job or retry
        (by the database's clock), at most the poll interval."""
        poll = self.settings.poll_interval
        if self._wakeup.is_set():
            return 0
        try:
            rows = await self._claims.fetch(
                queries.SECONDS_UNTIL_NEXT_JOB, (names, queues), give_up=lambda: self._stopping
            )
        except psycopg.Error as error:
            logger.error("claimer: %s", redact_message(str(error).strip(), self.conninfo))
            return poll
        seconds: float | None = rows[0][0] if rows else None
        if seconds is None:
            return poll
        if seconds <= 0:
            # Due but not claimable (locked by another claim): look again shortly.
            return min(poll, 0.05)
        return min(poll, max(0.005, seconds + 0.001))

    # -- running handlers ------------------------------------------------------------

    def _start_jobs(self) -> None:
        if self._waiting and not self._stopping:
            self._work_ready.set()

    async def _runner(self) -> None:
        """One of `concurrency` long-lived tasks, each running waiting jobs one after the
        other: at most `concurrency` jobs run at once, and a job costs no task of its own
        (a handler that never waits runs without a trip through the event loop)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        yielded = loop.time()
        while not self._stopping:
            if not self._waiting:
                self._work_ready.clear()
                try:
                    await self._work_ready.wait()
                except asyncio.CancelledError:
                    if self._stopping:
                        return
                    _uncancel(task)
                continue
            job = self._waiting.popleft()
            job.task = task
            try:
                await self._execute(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug of ours; the runner must live on
                logger.exception("%s: unexpected error in the worker", job.describe())
            if loop.time() - yielded > 0.001:
                # Let the claimer, the completer and the other runners in.
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    if self._stopping:
                        return
                    _uncancel(task)
                yielded = loop.time()

    def _call(self, handler: Handler, job: HeldJob) -> Any:
        """The awaitable that runs the handler: a coroutine, or a thread's future."""
        if handler.transactional:
            transactions = self._transactions
            assert transactions is not None
            if handler.is_async:
                return transactions.run_async(handler, job)
            return asyncio.wrap_future(self._threads.submit(transactions.run_sync, handler, job))
        if handler.is_async:
            if handler.takes_progress:
                return handler.fn(job.payload, job.report_progress)
            return handler.fn(job.payload)
        return asyncio.wrap_future(self._threads.submit(_run_sync, handler, job))

    def _time_out(self, job: HeldJob) -> None:
        """A job past its timeout: its runner stops waiting for it (a sync handler's
        thread cannot be stopped; it is abandoned, and its lease no longer renewed)."""
        if job.state == "running" and job.task is not None:
            job.timed_out = True
            job.task.cancel()

    async def _execute(self, job: HeldJob) -> None:
        handler = self.registry.get(job.job_name)
        job.state = "running"
        self._running += 1
        self.stats.started += 1
        job.started_at = time.monotonic()
        metrics = self.stats.metrics  # None unless --metrics-port
        if metrics is not None:
            metrics.started(job.job_name)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s started", job.describe())
        timer: asyncio.TimerHandle | None = None
        timeout: float = 0
        try:
            if handler is None:  # claimed by name, so only if the registry changed
                raise LookupError(f"no handler for job {job.job_name!r}")
            try:
                job.payload = json_loads(job.payload)
            except (ValueError, RecursionError) as error:
                raise PermanentError(
                    f"its payload cannot be decoded: {error_text(error)}"
                ) from None
            timeout = job.timeout_seconds or handler.timeout or 0
            if timeout:
                assert self._loop is not None
                timer = self._loop.call_later(timeout, self._time_out, job)
            result = await self._call(handler, job)
        except asyncio.CancelledError:
            if self._abandoning:
                raise  # released by the shutdown; the runner ends
            _uncancel(job.task)
            if job.timed_out:
                self._fail(
                    job, handler, f"TimeoutError: ran longer than its timeout of {timeout:g} s"
                )
            else:
                self._fail(job, handler, "JobCancelled: cancelled while running")
        except Snooze as snooze:
            self._completer.snooze(job, snooze.seconds)
        except LeaseLost as error:
            self.stats.refused += 1
            logger.warning("%s", error)
            self._written([job])
        except BaseException as error:
            # BaseException too: a handler's SystemExit, KeyboardInterrupt or
            # RecursionError fails its job, never the worker.
            if not isinstance(error, JobCancelled):
                logger.warning("%s raised:", job.describe(), exc_info=error)
            self._fail(job, handler, error_text(error), error)
        else:
            if logger.isEnabledFor(logging.INFO):
                logger.info(
                    "%s completed in %.1f ms",
                    job.describe(),
                    (time.monotonic() - job.started_at) * 1000,
                )
            if handler is not None and handler.transactional:
                self.stats.completed += 1  # in the handler's own transaction
                if metrics is not None:
                    metrics.completed(job.job_name)
                self._written([job])
            elif result is None:
                self._completer.complete(job)
            else:
                try:
                    self._completer.complete(
                        job, to_json(result, what=f"result of {job.describe()}")
                    )
                except PayloadError as error:
                    self._fail(job, handler, error_text(error))
        finally:
            if timer is not None:
                timer.cancel()
            job.state = "done"
            self._running -= 1
            if self._running == 0:
                self._all_idle.set()
            self._job_seconds += 0.05 * (time.monotonic() - job.started_at - self._job_seconds)
            if metrics is not None:
                metrics.ran(job.job_name, time.monotonic() - job.started_at)
            self._capacity.set()

    def _fail(
        self,
        job: HeldJob,
        handler: Handler | None,
        error: str,
        exception: BaseException | None = None,
    ) -> None:
        policy = handler.retry if handler is not None else DEFAULT_RETRY
        permanent = isinstance(exception, PermanentError) or (
            exception is not None
            and bool(policy.no_retry)
            and isinstance(exception, policy.no_retry)
        )
        self._completer.fail(job, error, policy, permanent=permanent)

    def _written(self, jobs: list[HeldJob]) -> None:
        """The completer wrote these jobs' results: they leave our hands."""
        for job in jobs:
            self.in_hand.pop(job.id, None)

    # -- news from the listener and the heartbeater ----------------------------------

    def _jobs_in_hand(self) -> list[HeldJob]:
        return list(self.in_hand.values())

    def _lease_news(self, job_id: int, state: str) -> None:
        """From the heartbeater's thread: a job's cancel was requested, or its lease lost."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop_job, job_id, state)

    def _cancel_from_listener(self, job_id: int) -> None:
        self._stop_job(job_id, "cancel_requested")

    def _stop_job(self, job_id: int, state: str) -> None:
        job = self.in_hand.get(job_id)
        if job is None:
            return
        if state == "cancel_requested":
            if job.cancel_requested:
                return
            job.cancel_requested = True
            logger.info("%s: cancel requested", job.describe())
        else:
            if job.lost:
                return
            job.lost = True
            logger.warning("%s: lease lost (it was rescued or claimed elsewhere)", job.describe())
        if job.state == "waiting":  # still waiting in hand: never start it
            with contextlib.suppress(ValueError):
                self._waiting.remove(job)
            if job.lost:
                self.in_hand.pop(job.id, None)
            else:
                self._completer.fail(
                    job, "JobCancelled: cancelled before it started", DEFAULT_RETRY
                )
            self._capacity.set()
            return
        handler = self.registry.get(job.job_name)
        if job.state == "running" and handler is not None and handler.is_async:
            assert job.task is not None
            job.task.cancel()
        # A sync handler learns it from its next report_progress (JobCancelled).
