"""Scenarios about leases and races: hung handlers, stale writers, rescues racing
completions and cancels, and poison input."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from harness import (
    BIN,
    Account,
    Context,
    Figures,
    Observer,
    ScenarioFailed,
    Worker,
    Workers,
    account,
    drain,
    invariant_violations,
    scalar,
    scenario_database,
    spec,
    wait_for,
)

from pgstack.client import JobQueue
from pgstack.connections import SingleConnection
from pgstack.errors import PayloadError

# -- 4 ------------------------------------------------------------------------------


def hung_handlers(ctx: Context) -> Figures:
    """A handler that keeps the GIL (one long C call) starves its worker's heartbeater:
    the lease runs out, the job is rescued and retried elsewhere, and dead-lettered after
    max_attempts; each hung worker's late completion is refused."""
    fig = Figures("4", "handlers hung past their lease (GIL held)")
    log_dir = ctx.log_dir("4-hung")
    jobs = 2 if ctx.short else 4
    max_attempts = 3
    hog_seconds = 3.0
    hogs = ("--concurrency", "1", "--prefetch", "0", "--queue", "hog")
    common = ("--lease-seconds", "1", "--retry-delay-ms", "50", "--poll-interval", "100")
    with (
        scenario_database(ctx.shared_database("hung")) as db,
        Workers(db.url, log_dir, common) as workers,
    ):
        observer = Observer(db)
        # Three workers that run the hog; one that serves another queue and only rescues.
        for _ in range(3):
            workers.start(extra=hogs)
        workers.start(extra=("--queue", "elsewhere"))
        observer.run(
            lambda c: db.enqueue(
                c,
                [
                    spec(
                        f"h{n}", "hog", seconds=hog_seconds, max_attempts=max_attempts,
                        queue_name="hog",
                    )
                    for n in range(jobs)
                ],
            )
        )  # fmt: skip
        figures = drain(observer, 90)
        # Every hog run ends (its worker wakes up) and tries to complete, too late.
        runs = jobs * max_attempts
        wait_for(
            lambda: (
                observer.run(
                    lambda c: scalar(c, "select count(*) from chaos_ledger where event = 'end'")
                )
                >= runs
            ),
            timeout=30,
            message="every hung run to end",
        )
        wait_for(
            lambda: workers.count_in_logs("its completion was refused") >= runs,
            timeout=15,
            message="every late completion to be refused",
        )
        fig.take(figures)
        fig.extra["late_completions_refused"] = workers.count_in_logs("its completion was refused")
        fig.extra["hung_runs"] = runs
        fig.expect(figures.lost == 0, f"{figures.lost} job(s) lost: {figures}")
        rows = observer.run(
            lambda c: c.execute(
                """
                select e.job_key, d.attempt, d.error,
                       (select count(*) from chaos_ledger l
                        where l.job_key = e.job_key and l.event = 'start')
                from chaos_enqueued e left join dbos.failed_jobs d on d.id = e.job_id
                """
            ).fetchall()
        )
        wrong = [
            f"{key}: attempt {attempt}, {started} run(s), error {error!r}"
            for key, attempt, error, started in rows
            if attempt != max_attempts
            or started != max_attempts
            or "lease expired" not in (error or "")
        ]
        fig.expect(not wrong, f"hung jobs not dead-lettered after {max_attempts} runs: {wrong}")
        fig.expect(figures.completed == 0, f"{figures.completed} hung job(s) were completed")
        violations = observer.run(invariant_violations)
        fig.expect(not violations, f"invariants broken: {violations}")
        dead_workers = [w.worker_id for w in workers.all if not w.alive()]
        fig.expect(not dead_workers, f"workers died: {dead_workers}")
        observer.close()
    return fig


# -- 7 ------------------------------------------------------------------------------

B_OUTCOMES = ("complete", "fail", "cancel", "cancel-before-rescue")
A_ACTIONS = ("complete", "fail", "progress")


def stale_writers(ctx: Context) -> Figures:
    fig = Figures("7", "stale writers (SIGSTOP past the lease) are refused")
    rounds = 2 if ctx.short else 10
    per_round = 6 if ctx.short else 8
    rng = random.Random(7)
    log_dir = ctx.log_dir("7-stale")
    args = (
        "--concurrency", str(per_round), "--prefetch", "0", "--lease-seconds", "1",
        "--retry-delay-ms", "50", "--poll-interval", "100",
    )  # fmt: skip
    problems: list[str] = []
    with (
        scenario_database(ctx.shared_database("stale")) as db,
        Workers(db.url, log_dir, args) as workers,
    ):
        observer = Observer(db)
        x, y = workers.start(), workers.start()
        a_runs = 0
        for r in range(rounds):
            a, b = (x, y) if r % 2 == 0 else (y, x)
            plans = [
                (f"s{r}-{n}", B_OUTCOMES[n % 4], rng.choice(A_ACTIONS)) for n in range(per_round)
            ]
            _stale_round(observer, db, a, b, plans, rng, problems)
            a_runs += per_round
        # Every late write of a stale worker ends refused.
        wait_for(
            lambda: _refusals(workers) >= a_runs,
            timeout=20,
            message=f"{a_runs} late writes to be refused",
        )
        fig.extra["late_writes_refused"] = _refusals(workers)
        fig.extra["lease_lost_logged"] = workers.count_in_logs("lease lost")
        fig.extra["worker_interleavings"] = a_runs
        workers.close()  # their rescues would race the hand-made ones below
        sql = _stale_sql(db, 60 if ctx.short else 400, rng)
        fig.extra["sql_rounds"] = sql["rounds"]
        fig.extra["sql_stale_calls_refused"] = sql["refused"]
        problems.extend(sql["problems"])
        figures = observer.account()
        fig.take(figures)
        fig.expect(figures.lost == 0, f"{figures.lost} job(s) lost: {figures}")
        fig.expect(not problems, f"stale writes that were not refused: {problems[:5]}")
        violations = observer.run(invariant_violations)
        fig.expect(not violations, f"invariants broken: {violations}")
        observer.close()
    return fig


def _refusals(workers: Workers) -> int:
    return workers.count_in_logs("its completion was refused") + workers.count_in_logs(
        "the failure was refused"
    )


def _worker_refusals(worker: Worker) -> int:
    log = worker.log()
    return log.count("its completion was refused") + log.count("the failure was refused")


def _starts(observer: Observer, keys: list[str], pid: int) -> int:
    return int(
        observer.run(
            lambda c: scalar(
                c,
                "select count(distinct job_key) from chaos_ledger "
                "where job_key = any(%s) and pid = %s and event = 'start'",
                (keys, pid),
            )
        )
    )


def _stale_round(
    observer: Observer,
    db: Any,
    a: Worker,
    b: Worker,
    plans: list[tuple[str, str, str]],
    rng: random.Random,
    problems: list[str],
) -> None:
    keys = [key for key, _, _ in plans]
    refused_before = _worker_refusals(a)
    b.signal(signal.SIGSTOP)
    ids = dict(
        zip(
            keys,
            observer.run(
                lambda c: db.enqueue(
                    c,
                    [
                        spec(key, "stale", max_attempts=2, cancellable=outcome.startswith("cancel"))
                        for key, outcome, _ in plans
                    ],
                )
            ),
            strict=True,
        )
    )
    wait_for(
        lambda: _starts(observer, keys, a.pid) == len(keys),
        timeout=15,
        message=f"worker {a.worker_id} to start {keys}",
    )
    a.signal(signal.SIGSTOP)
    early = [key for key, outcome, _ in plans if outcome == "cancel-before-rescue"]
    for key in early:
        observer.run(lambda c, k=key: c.execute("select dbos.cancel_job(%s)", (ids[k],)))
    b.signal(signal.SIGCONT)
    later = [key for key in keys if key not in early]
    wait_for(
        lambda: _starts(observer, later, b.pid) == len(later),
        timeout=20,
        message=f"worker {b.worker_id} to take over {later} after the lease",
    )
    events: list[tuple[str, str, str]] = [("cont", "", "")]
    for key, outcome, action in plans:
        events.append(("a", key, action))
        if outcome in ("complete", "fail"):
            events.append(("b", key, outcome))
        elif outcome == "cancel":
            events.append(("cancel", key, ""))
    rng.shuffle(events)
    for kind, key, action in events:
        if kind == "cont":
            a.signal(signal.SIGCONT)
        elif kind == "cancel":
            observer.run(lambda c, k=key: c.execute("select dbos.cancel_job(%s)", (ids[k],)))
        else:
            pid = (a if kind == "a" else b).pid
            observer.run(
                lambda c, k=key, p=pid, act=action: c.execute(
                    "insert into chaos_go values (%s, %s, %s)", (k, p, act)
                )
            )
        time.sleep(rng.uniform(0, 0.15))
    wait_for(
        lambda: (
            observer.run(
                lambda c: scalar(
                    c,
                    "select count(*) from chaos_enqueued e "
                    "left join dbos.job_queue j on j.id = e.job_id "
                    "where e.job_key = any(%s) and j.status in ('pending', 'running')",
                    (keys,),
                )
            )
            == 0
        ),
        timeout=20,
        message=f"the jobs of round {keys[0]} to end",
    )
    # Each of A's handlers went on after SIGCONT and its late write was refused: a
    # completion, or a failure (its own, or JobCancelled from report_progress once its
    # heartbeat learned the lease was lost).
    wait_for(
        lambda: _worker_refusals(a) >= refused_before + len(keys),
        timeout=20,
        message=f"the late writes of {a.worker_id} to be refused",
    )
    for key, outcome, action in plans:
        row = observer.run(
            lambda c, k=key: c.execute(
                """
                select coalesce(j.status, case when d.id is not null then 'dead' end),
                       coalesce(j.error, d.error), j.result, j.progress_message
                from chaos_enqueued e
                left join dbos.job_queue j on j.id = e.job_id
                left join dbos.failed_jobs d on d.id = e.job_id
                where e.job_key = %s
                """,
                (k,),
            ).fetchone()
        )
        assert row is not None
        status, error, result, progress_message = row
        expected = {
            "complete": "completed",
            "fail": "dead",
            "cancel": "cancelled",
            "cancel-before-rescue": "cancelled",
        }[outcome]
        where = f"{key} (B {outcome}, stale A {action})"
        if status != expected:
            problems.append(f"{where}: status {status}, expected {expected}; error {error!r}")
        if outcome == "complete" and (result or {}).get("pid") != b.pid:
            problems.append(f"{where}: result {result} is not the new holder's (pid {b.pid})")
        if outcome == "fail" and error != f"RuntimeError: failed by pid {b.pid}":
            problems.append(f"{where}: error {error!r} is not the new holder's")
        # What the stale worker writes only after its lease was lost ("waiting in pid"
        # progress, written while it still held the job, may stay).
        late = (
            f"late progress from pid {a.pid}" in (progress_message or "")
            or (error or "").endswith(f"by pid {a.pid}")
            or (result or {}).get("pid") == a.pid
        )
        if late:
            problems.append(
                f"{where}: the stale worker's write landed: "
                f"{progress_message!r} / {error!r} / {result!r}"
            )
        if outcome == "cancel-before-rescue" and _starts(observer, [key], b.pid):
            problems.append(f"{where}: a job cancelled before its rescue ran again")


def _stale_sql(db: Any, rounds: int, rng: random.Random) -> dict[str, Any]:
    """Two worker connections and an admin one: claim, expire the lease by hand, rescue,
    re-claim; the first claim's token is refused by every call, at every stage."""
    problems: list[str] = []
    refused = 0
    with (
        db.connect("chaos-old") as old,
        db.connect("chaos-new") as new,
        db.connect("chaos-admin") as admin,
    ):
        for n in range(rounds):
            job_id = scalar(admin, "select dbos.enqueue('sql-stale', '{}', max_attempts => 5)")
            claimed = old.execute(
                "select lease_token from dbos.claim_job('w-old', array['sql-stale'], 1, 30)"
            ).fetchall()
            token = claimed[0][0]
            if rng.random() < 0.5:
                old.execute("select dbos.report_progress(%s, 10, 'mine', 30, %s)", (job_id, token))
            admin.execute(
                "update dbos.job_queue set lease_expires_at = now() - interval '1 second' "
                "where id = %s",
                (job_id,),
            )
            # Sometimes the stale worker writes before the rescue: an expired lease not yet
            # rescued is still its own (nobody else holds the job), so that is allowed.
            assert scalar(admin, "select dbos.rescue_expired_jobs(0)") >= 1
            stages = ["pending", "running"]
            new_worker = rng.choice(["w-old", "w-new"])  # the same worker id, or another
            new_token = None
            for stage in stages:
                if stage == "running":
                    new_token = new.execute(
                        "select lease_token from dbos.claim_job(%s, array['sql-stale'], 1, 30)",
                        (new_worker,),
                    ).fetchall()[0][0]
                before = _job_state(admin, job_id)
                for call, query, params in _stale_calls(job_id, token):
                    outcome = old.execute(query, params).fetchall()
                    ok = _refused(call, outcome)
                    refused += ok
                    if not ok:
                        problems.append(f"sql round {n}, {stage}: stale {call} -> {outcome}")
                after = _job_state(admin, job_id)
                if before != after:
                    problems.append(
                        f"sql round {n}, {stage}: stale calls changed {before}->{after}"
                    )
            final = rng.choice(["complete", "fail", "heartbeat"])
            if final == "complete":
                ok = scalar(
                    new, "select dbos.complete_job(%s, %s, %s)", (job_id, new_worker, new_token)
                )
            elif final == "fail":
                ok = scalar(
                    new, "select dbos.fail_job(%s, 'new fails', 0, %s, %s)",
                    (job_id, new_worker, new_token),
                ) == "pending"  # fmt: skip
            else:
                ok = not new.execute(
                    "select * from dbos.heartbeat(%s, array[%s]::bigint[], 30, array[%s])",
                    (new_worker, job_id, new_token),
                ).fetchall()
            if not ok:
                problems.append(f"sql round {n}: the new holder's {final} was refused")
            before = _job_state(admin, job_id)
            for call, query, params in _stale_calls(job_id, token):
                outcome = old.execute(query, params).fetchall()
                ok = _refused(call, outcome)
                refused += ok
                if not ok:
                    problems.append(f"sql round {n}, after {final}: stale {call} -> {outcome}")
            if before != _job_state(admin, job_id):
                problems.append(f"sql round {n}, after {final}: stale calls changed the job")
            admin.execute("select dbos.cancel_job(%s)", (job_id,))
    return {"rounds": rounds, "refused": refused, "problems": problems}


def _job_state(conn: psycopg.Connection[Any], job_id: int) -> Any:
    return conn.execute(
        "select status, attempt, locked_by, lease_token, lease_expires_at, error, progress, "
        "progress_message, completed_at, result from dbos.job_queue where id = %s",
        (job_id,),
    ).fetchone()


def _stale_calls(job_id: int, token: int) -> list[tuple[str, str, tuple[Any, ...]]]:
    calls = [
        ("complete", "select dbos.complete_job(%s, 'w-old', %s)", (job_id, token)),
        ("complete-any-worker", "select dbos.complete_job(%s, null, %s)", (job_id, token)),
        ("fail", "select dbos.fail_job(%s, 'stale', 0, 'w-old', %s)", (job_id, token)),
        ("fail-any-worker", "select dbos.fail_job(%s, 'stale', 0, null, %s)", (job_id, token)),
        (
            "heartbeat",
            "select * from dbos.heartbeat('w-old', array[%s]::bigint[], 30, array[%s])",
            (job_id, token),
        ),
        (
            "report_progress",
            "select dbos.report_progress(%s, 99, 'stale progress', 30, %s)",
            (job_id, token),
        ),
        (
            "snooze",
            "select dbos.snooze_job(%s, 0, 'w-old', %s)",
            (job_id, token),
        ),
        (
            "release",
            "select dbos.release_jobs('w-old', array[%s]::bigint[], array[%s])",
            (job_id, token),
        ),
    ]
    random.shuffle(calls)
    return calls


def _refused(call: str, rows: list[tuple[Any, ...]]) -> bool:
    if call.startswith("complete") or call == "snooze":
        return rows == [(False,)]
    if call.startswith("fail"):
        return rows == [(None,)]
    if call == "heartbeat":
        return len(rows) == 1 and rows[0][1] == "lost"
    if call == "report_progress":
        return rows == [("lost",)]
    if call == "release":
        return rows == [(0,)]
    raise AssertionError(call)


# -- 9 ------------------------------------------------------------------------------


def rescue_races(ctx: Context) -> Figures:
    """Completions, failures and cancels racing two rescuers over expired claims: every
    expired claim ends through exactly one of them, a completion is never overwritten,
    and a cancelled job is never claimed again."""
    fig = Figures("9", "rescue racing completions and cancels")
    runs = 60 if ctx.short else 600
    rng = random.Random(9)
    problems: list[str] = []
    totals = {"completed": 0, "failed": 0, "rescued": 0, "cancel_requested": 0, "cancelled": 0}
    with scenario_database(ctx.shared_database("races")) as db:
        conns = {
            role: db.connect(f"chaos-{role}")
            for role in ("admin", "rescue1", "rescue2", "complete", "fail", "cancel")
        }
        try:
            for run in range(runs):
                _race_once(conns, run, rng, problems, totals)
        finally:
            for conn in conns.values():
                conn.close()
        with db.connect() as conn:
            violations = invariant_violations(conn)
            final = conn.execute(
                "select count(*) filter (where status = 'completed'), "
                "count(*) filter (where status = 'cancelled') from dbos.job_queue"
            ).fetchone()
            dead = scalar(conn, "select count(*) from dbos.failed_jobs")
            enqueued = scalar(conn, "select count(*) from dbos.job_queue") + dead
        assert final is not None
        fig.enqueued, fig.completed, fig.cancelled, fig.dead = enqueued, final[0], final[1], dead
        fig.extra.update(runs=runs, **totals)
        fig.expect(not violations, f"invariants broken: {violations}")
        fig.expect(not problems, f"{len(problems)} race problem(s): {problems[:5]}")
        fig.lost = sum(1 for p in problems if "lost" in p)
    return fig


def _race_once(
    conns: dict[str, psycopg.Connection[Any]],
    run: int,
    rng: random.Random,
    problems: list[str],
    totals: dict[str, int],
) -> None:
    admin = conns["admin"]
    size = rng.choice([3, 10, 40])
    max_attempts = rng.choice([1, 3])
    ids = [
        row[0]
        for row in admin.execute(
            "select dbos.enqueue_many(array_fill('race'::text, array[%s]), "
            "array_fill('{}'::jsonb, array[%s]), "
            "max_attempts => array_fill(%s, array[%s]))",
            (size, size, max_attempts, size),
        )
    ]
    claimed = dict(
        admin.execute(
            "select id, lease_token from dbos.claim_job('w-race', array['race'], %s, 30)",
            (size,),
        ).fetchall()
    )
    if sorted(claimed) != sorted(ids):
        problems.append(f"run {run}: claimed {sorted(claimed)} of {ids}")
        return
    admin.execute(
        "update dbos.job_queue set lease_expires_at = now() - interval '1 second' "
        "where id = any(%s)",
        (ids,),
    )
    to_complete = [i for i in ids if rng.random() < 0.4]
    to_fail = [i for i in ids if rng.random() < 0.2]
    to_cancel = [i for i in ids if rng.random() < 0.3]
    results: dict[str, Any] = {}
    barrier = threading.Barrier(5)
    # Each actor starts a little later or earlier, so every order happens.
    delays = {role: rng.uniform(0, 0.004) for role in ("c", "f", "x")}
    delays.update(rescue1=rng.uniform(0, 0.01), rescue2=rng.uniform(0, 0.01))

    def rescue(role: str) -> None:
        barrier.wait()
        time.sleep(delays[role])
        results[role] = scalar(conns[role], "select dbos.rescue_expired_jobs(0)")

    def complete() -> None:
        barrier.wait()
        time.sleep(delays["c"])
        rng_local = random.Random(run)
        done = []
        for job_id in sorted(to_complete, key=lambda _: rng_local.random()):
            if scalar(
                conns["complete"],
                "select dbos.complete_job(%s, 'w-race', %s)",
                (job_id, claimed[job_id]),
            ):
                done.append(job_id)
        results["complete"] = done

    def fail() -> None:
        barrier.wait()
        time.sleep(delays["f"])
        outcomes = {}
        for job_id in to_fail:
            outcome = scalar(
                conns["fail"],
                "select dbos.fail_job(%s, 'racing failure', 0, 'w-race', %s)",
                (job_id, claimed[job_id]),
            )
            if outcome is not None:
                outcomes[job_id] = outcome
        results["fail"] = outcomes

    def cancel() -> None:
        barrier.wait()
        time.sleep(delays["x"])
        results["cancel"] = {
            job_id: scalar(conns["cancel"], "select dbos.cancel_job(%s)", (job_id,))
            for job_id in to_cancel
        }

    threads = [
        threading.Thread(target=rescue, args=("rescue1",)),
        threading.Thread(target=rescue, args=("rescue2",)),
        threading.Thread(target=complete),
        threading.Thread(target=fail),
        threading.Thread(target=cancel),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Claims skipped while a cancel held their row are rescued now.
    late = scalar(admin, "select dbos.rescue_expired_jobs(0)")
    completed: list[int] = results.get("complete", [])
    failed: dict[int, str] = results.get("fail", {})
    cancels: dict[int, str] = results.get("cancel", {})
    rescued = (results.get("rescue1") or 0) + (results.get("rescue2") or 0) + (late or 0)
    totals["completed"] += len(completed)
    totals["failed"] += len(failed)
    totals["rescued"] += rescued
    totals["cancel_requested"] += sum(1 for v in cancels.values() if v == "cancel_requested")
    totals["cancelled"] += sum(1 for v in cancels.values() if v == "cancelled")
    both = set(completed) & set(failed)
    if both:
        problems.append(f"run {run}: jobs {sorted(both)} both completed and failed")
    if len(completed) + len(failed) + rescued != size:
        problems.append(
            f"run {run}: {len(completed)} completed + {len(failed)} failed + {rescued} "
            f"rescued != {size} expired claims (some claim ended twice, or never: lost)"
        )
    state = {
        row[0]: row[1:]
        for row in admin.execute(
            "select id, status, attempt, error from dbos.job_queue where id = any(%s)", (ids,)
        )
    }
    dead = {
        row[0]
        for row in admin.execute("select id from dbos.failed_jobs where id = any(%s)", (ids,))
    }
    for job_id in ids:
        status = state.get(job_id, ("dead",) if job_id in dead else ("lost",))[0]
        if status == "lost":
            problems.append(f"run {run}: job {job_id} lost (in neither table)")
        if job_id in completed and status != "completed":
            problems.append(f"run {run}: completed job {job_id} was overwritten: {status}")
        if cancels.get(job_id) in ("cancel_requested", "cancelled") and status not in (
            "cancelled",
            "completed",
        ):
            problems.append(
                f"run {run}: job {job_id} cancel answered {cancels[job_id]} but it is {status}"
            )
    # Nothing cancelled is ever claimed again.
    reclaimed = [
        row[0]
        for row in admin.execute(
            "select id from dbos.claim_job('w-after', array['race'], 1000, 30)"
        )
    ]
    again = [
        job_id
        for job_id in reclaimed
        if state.get(job_id, ("",))[0] != "pending"
        or cancels.get(job_id) in ("cancelled", "cancel_requested")
    ]
    if again:
        problems.append(f"run {run}: jobs {again} ran again after a cancel or an end")
    if reclaimed:
        admin.execute("select dbos.complete_jobs(%s::bigint[], 'w-after')", (reclaimed,))


# -- 10 -----------------------------------------------------------------------------

RAISES = [
    ("SystemExit", "SystemExit: handler called sys.exit"),
    ("KeyboardInterrupt", "KeyboardInterrupt: handler interrupted"),
    ("RecursionError", "RecursionError: maximum recursion depth exceeded"),
    ("GeneratorExit", "GeneratorExit"),
    ("MemoryError", "MemoryError: handler ran out of memory"),
    ("nul-message", "ValueError: a NUL \\x00 in the message"),
    ("surrogate-message", "ValueError: a lone surrogate"),
    ("huge-message", "ValueError: xxxx"),
    ("unserialisable-result", "PayloadError: result of job"),
]
# Each in a phase of its own with fresh workers: if it wedges a worker, the next case is
# not blamed for it.
ALONE = [
    ("unprintable", "UnprintableError"),
    ("nul-result", None),
    ("surrogate-result", None),
]


def poison(ctx: Context) -> Figures:
    fig = Figures("10", "poison handlers and payloads")
    log_dir = ctx.log_dir("10-poison")
    outcomes: dict[str, str] = {}
    problems: list[str] = []
    args = ("--concurrency", "4", "--lease-seconds", "2", "--retry-delay-ms", "50",
            "--poll-interval", "100")  # fmt: skip
    phase_timeout = 6.0 if ctx.short else 25.0
    stuck: list[str] = []
    with scenario_database(ctx.shared_database("poison")) as db:
        observer = Observer(db)
        # Refused at enqueue: a clear error, nothing written.
        problems += _refused_at_enqueue(db, observer, outcomes)

        phases: list[tuple[str, list[tuple[str, Any]]]] = [
            (
                "raises",
                [
                    spec(f"{name}-{kind}", name, kind=kind, max_attempts=1)
                    for kind, _ in RAISES
                    for name in ("poison", "poison-async")
                ],
            )
        ]
        for kind, _ in ALONE:
            phases.append(
                (kind, [spec(f"{name}-{kind}", name, kind=kind, max_attempts=1)
                        for name in ("poison", "poison-async")])
            )  # fmt: skip
        big = {"blob": "x" * 10_000_000, "list": list(range(1000))}
        nested900: Any = "leaf"
        for _ in range(900):
            nested900 = [nested900]
        odd = {"latin": "\xff\xfe\xe9", "emoji": "\U0001f600", "rtl": "\u202e", "bom": "\ufeff"}
        phases.append(
            (
                "payloads",
                [
                    spec("big", "echo", body=big, max_attempts=1),
                    spec("nested900", "echo", body=nested900, max_attempts=1),
                    spec("odd-text", "echo", body=odd, max_attempts=1),
                ],
            )
        )
        expected_digest = {
            "big": _digest(big),
            "nested900": _digest(nested900),
            "odd-text": _digest(odd),
        }
        for label, specs in phases:
            _poison_phase(
                db, observer, Workers(db.url, _subdir(log_dir, label), args),
                label, specs, outcomes, problems, expected_digest, phase_timeout, stuck,
            )  # fmt: skip
        # A payload nested 2000 deep: PostgreSQL accepts it; Python's JSON decoder cannot
        # read it. Enqueued from SQL, as any client may.
        observer.run(
            lambda c: c.execute(
                "with j as (select dbos.enqueue('echo', "
                "('{\"k\": \"nested2000\", \"body\": ' || repeat('[', 2000) || repeat(']', 2000)"
                " || '}')::jsonb, max_attempts => 1) as id) "
                "insert into chaos_enqueued (job_key, job_id) select 'nested2000', id from j"
            )
        )
        _poison_phase(db, observer, Workers(db.url, _subdir(log_dir, "nested2000"), args),
                      "nested2000", [],
                      outcomes, problems, expected_digest, phase_timeout, stuck)  # fmt: skip
        # The phases expire the leases of what they leave running; a last worker
        # rescues those jobs, as any worker of a real deployment would.
        with Workers(db.url, _subdir(log_dir, "final"), args) as last:
            last.start()
            drain(observer, phase_timeout)
        figures = observer.account()
        fig.take(figures)
        fig.expect(figures.lost == 0, f"{figures.lost} job(s) lost: {figures}")
        # Jobs that never ended while their workers lived are lost, though the suite
        # then expired their leases (and they were dead-lettered) to go on.
        fig.lost += len(stuck)
        fig.extra["stuck_while_workers_lived"] = stuck
        violations = observer.run(invariant_violations)
        fig.expect(not violations, f"invariants broken: {violations}")
        observer.close()
    fig.extra["outcomes"] = outcomes
    for problem in problems:
        fig.fail(problem)
    return fig


def _subdir(log_dir: Path, label: str) -> Path:
    path = log_dir / label
    path.mkdir(parents=True, exist_ok=True)
    return path


def _digest(body: Any) -> dict[str, Any]:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return {"chars": len(text), "sha1": hashlib.sha1(text.encode()).hexdigest()}


def _poison_phase(
    db: Any,
    observer: Observer,
    workers: Workers,
    label: str,
    specs: list[tuple[str, Any]],
    outcomes: dict[str, str],
    problems: list[str],
    digests: dict[str, Any],
    phase_timeout: float,
    stuck: list[str],
) -> None:
    """Run a phase; jobs that never end while their workers live go to ``stuck`` (they
    are lost: the suite then expires their leases so the next phase starts clean)."""
    expected_errors = dict(RAISES + ALONE)
    with workers:
        for _ in range(2):
            workers.start()
        if specs:
            observer.run(lambda c: db.enqueue(c, specs))
        # Jobs after the poison: the workers must still run them, every slot of them.
        sentinels = [spec(f"{label}-after-{n}", "work", ms=200) for n in range(8)]
        observer.run(lambda c: db.enqueue(c, sentinels))
        drain(observer, phase_timeout)
        keys = [key for key, _ in specs] or [label]
        for key in keys:
            row = observer.run(
                lambda c, k=key: c.execute(
                    """
                    select coalesce(j.status, case when d.id is not null then 'dead' end),
                           coalesce(j.error, d.error), j.result
                    from chaos_enqueued e
                    left join dbos.job_queue j on j.id = e.job_id
                    left join dbos.failed_jobs d on d.id = e.job_id
                    where e.job_key = %s
                    """,
                    (k,),
                ).fetchone()
            )
            assert row is not None
            status, error, result = row
            kind = key.split("-", 1)[1] if key.startswith("poison") else key
            text = f"{status}: {(error or json.dumps(result))[:70]}"
            outcomes[key] = text
            if status in ("pending", "running"):
                problems.append(f"{key}: never ended, still {status} (error {error!r})")
                stuck.append(key)
            elif key in digests:
                if status != "completed" or result != digests[key]:
                    problems.append(f"{key}: {status}, result {result} != {digests[key]}")
            elif (want := expected_errors.get(kind)) is not None:
                if status != "dead" or not (error or "").startswith(want):
                    problems.append(f"{key}: {status} with error {error!r}, expected {want!r}")
            elif status == "dead" and not error:
                problems.append(f"{key}: dead without a readable error")
            if error is not None and ("\x00" in error or len(error) > 20_000):
                problems.append(f"{key}: unreadable error ({len(error)} chars)")
        done = observer.run(
            lambda c: scalar(
                c,
                "select count(*) from chaos_enqueued e join dbos.job_queue j on j.id = e.job_id "
                "where e.job_key like %s and j.status = 'completed'",
                (f"{label}-after-%",),
            )
        )
        outcomes[f"{label}: jobs after it"] = f"{done} of {len(sentinels)} completed"
        if done != len(sentinels):
            problems.append(
                f"after {label}: only {done} of {len(sentinels)} later jobs completed: "
                "a worker stopped working"
            )
        dead = [w.worker_id for w in workers.all if not w.alive()]
        if dead:
            problems.append(f"{label}: workers died: {dead}")
        else:
            deaf = _deaf_workers(db, observer, workers, label)
            outcomes[f"{label}: workers that still claim"] = (
                f"{len(workers.all) - len(deaf)} of {len(workers.all)}"
            )
            if deaf:
                problems.append(f"after {label}: workers alive but no longer claiming: {deaf}")
        # The next phase starts clean: what this one left running is given up.
        observer.run(
            lambda c: c.execute(
                "update dbos.job_queue set lease_expires_at = now() - interval '1 s' "
                "where status = 'running'"
            )
        )


def _deaf_workers(db: Any, observer: Observer, workers: Workers, label: str) -> list[str]:
    """Each worker alone (the others SIGSTOPped) must pick up a probe job: a worker whose
    claim loop died looks alive but never runs anything again."""
    deaf = []
    for n, worker in enumerate(workers.all):
        others = [w for w in workers.all if w is not worker]
        for other in others:
            other.signal(signal.SIGSTOP)
        try:
            key = f"{label}-probe-{n}"
            observer.run(lambda c, k=key: db.enqueue(c, [spec(k, "work")]))
            try:
                wait_for(
                    lambda k=key: observer.run(
                        lambda c: scalar(
                            c, "select count(*) from chaos_ledger where job_key = %s", (k,)
                        )
                    ),
                    timeout=5,
                    message=f"{worker.worker_id} to run a probe job",
                )
            except ScenarioFailed:
                deaf.append(worker.worker_id)
        finally:
            for other in others:
                other.signal(signal.SIGCONT)
    return deaf


def _refused_at_enqueue(db: Any, observer: Observer, outcomes: dict[str, str]) -> list[str]:
    """Payloads the database cannot store: the client, SQL and the CLI each fail with a
    clear error and write nothing."""
    problems: list[str] = []
    before = observer.run(lambda c: scalar(c, "select count(*) from dbos.job_queue"))
    source = SingleConnection(db.url)
    queue = JobQueue(source)
    deep: Any = 0
    for _ in range(5000):
        deep = [deep]
    cases: list[tuple[str, Callable[[], Any], tuple[type[BaseException], ...]]] = [
        ("client NUL", lambda: queue.enqueue("x", {"a": "\x00"}), (PayloadError,)),
        ("client lone surrogate", lambda: queue.enqueue("x", {"a": "\ud800"}), (PayloadError,)),
        ("client nested 5000", lambda: queue.enqueue("x", deep), (PayloadError,)),
        ("client NaN", lambda: queue.enqueue("x", {"a": float("nan")}), (PayloadError,)),
    ]
    for name, call, expected in cases:
        try:
            call()
            outcome = "accepted"
        except expected as error:
            outcome = f"{type(error).__name__}: {str(error)[:60]}"
        except BaseException as error:  # what the caller would get instead
            outcome = f"UNEXPECTED {type(error).__name__}: {str(error)[:60]}"
            problems.append(f"{name}: raised {type(error).__name__}, not {expected[0].__name__}")
        outcomes[name] = outcome
        if outcome == "accepted":
            problems.append(f"{name}: accepted")
    source.close()
    sql_cases = [
        ("SQL NUL", "select dbos.enqueue('x', '{\"a\": \"\\u0000\"}')", "22P05"),
        ("SQL nested 200000",
         "select dbos.enqueue('x', (repeat('[', 200000) || repeat(']', 200000))::jsonb)",
         "54001"),
    ]  # fmt: skip
    for name, query, sqlstate in sql_cases:
        try:
            observer.run(lambda c, q=query: c.execute(q))
            outcomes[name] = "accepted"
            problems.append(f"{name}: accepted")
        except psycopg.Error as error:
            outcomes[name] = f"{error.sqlstate}: {(error.diag.message_primary or '')[:60]}"
            if error.sqlstate != sqlstate:
                problems.append(f"{name}: SQLSTATE {error.sqlstate}, expected {sqlstate}")
    cli_cases = [
        ("CLI NUL", '{"a": "\\u0000"}'),
        ("CLI nested 5000", "[" * 5000 + "]" * 5000),
        ("CLI not JSON", "{nope"),
    ]
    for name, payload in cli_cases:
        done = subprocess.run(
            [str(BIN / "pgstack"), "dbos", "enqueue", "x", payload, "--database-url", db.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        err = done.stderr.strip()
        outcomes[name] = f"exit {done.returncode}: {err.splitlines()[-1][:70] if err else ''}"
        if done.returncode == 0 or "Traceback" in err or len(err.splitlines()) != 1:
            problems.append(f"{name}: exit {done.returncode}, stderr {err[-300:]!r}")
    after = observer.run(lambda c: scalar(c, "select count(*) from dbos.job_queue"))
    if after != before:
        problems.append(f"refused enqueues wrote {after - before} job(s)")
    return problems


SCENARIOS: dict[str, Callable[[Context], Figures]] = {
    "4": hung_handlers,
    "7": stale_writers,
    "9": rescue_races,
    "10": poison,
}

__all__ = ["SCENARIOS", "Account", "ScenarioFailed", "account"]
