"""The ``local`` job backend: a durable ``job`` table and an in-process worker.

The embedded default (SQLite, one process), and it works on PostgreSQL too. Claiming a job is one
conditional UPDATE, so several workers never take the same job; jobs that share a ``lock`` never
run together; a ``queueing_lock`` keeps at most one waiting job per key. A worker writes a
heartbeat while it works; the reaper puts back jobs whose heartbeat stopped (a killed worker),
releases the connection locks they held, and the work is simply done again: every task is
idempotent.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Collection
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, bindparam, exists, select, update
from sqlalchemy.exc import IntegrityError

from ..core.app import Core
from ..store.models import Job, JobState, Schedule
from . import tasks

logger = logging.getLogger("sophsync.jobs")

MAX_ATTEMPTS = 8
#: What stops a worker: Ctrl+C, or a service manager's stop.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class LocalQueue:
    """Defer, claim and finish jobs in the database."""

    def __init__(self, core: Core, *, stall_seconds: float | None = None) -> None:
        self.core = core
        self.stall_seconds = (
            core.settings.job_stall_seconds if stall_seconds is None else stall_seconds
        )

    def defer(
        self,
        task: str,
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        delay: float = 0.0,
        **args: Any,
    ) -> int | None:
        """Queue a task; ``None`` when a job with the same ``queueing_lock`` is waiting.

        The database holds the rule (a unique index over the waiting jobs' queueing locks): of
        two processes that defer at the same moment, both finding none waiting, one writes
        its job and the other is refused and answers ``None``."""
        try:
            with self.core.session() as session:
                if queueing_lock is not None:
                    waiting = session.scalar(
                        select(Job.id).where(
                            Job.queueing_lock == queueing_lock, Job.state == JobState.TODO.value
                        )
                    )
                    if waiting is not None:
                        return None
                job = Job(
                    task=task,
                    args=json.dumps(args),
                    lock=lock,
                    queueing_lock=queueing_lock,
                    state=JobState.TODO.value,
                    run_at=self.core.now() + dt.timedelta(seconds=delay),
                )
                session.add(job)
                session.flush()
                return job.id
        except IntegrityError:
            if queueing_lock is None:
                raise
            return None

    def claim(self, worker: str) -> Job | None:
        """Take the next due job whose lock is free, or ``None``."""
        claimed = self.claim_many(worker, 1)
        return claimed[0] if claimed else None

    def claim_many(self, worker: str, limit: int) -> list[Job]:
        """Take up to ``limit`` due jobs whose locks are free, oldest first, in one statement.

        No two of them share a lock. A job whose lock another worker took meanwhile goes back.
        """
        now = self.core.now()
        # A worker asks every time one of its jobs ends, mostly to learn that nothing is due:
        # a plain connection and a statement built once make that question cheap.
        with self.core.connection() as connection:
            candidates = connection.execute(_DUE, {"now": now, "limit": limit * 2 + 3}).all()
        wanted: list[int] = []
        locks: set[str] = set()
        for job_id, lock in candidates:
            if lock is not None:
                if lock in locks:
                    continue
                locks.add(lock)
            wanted.append(job_id)
            if len(wanted) == limit:
                break
        if not wanted:
            return []
        with self.core.session() as session:
            claimed = session.scalars(
                update(Job)
                .where(Job.id.in_(wanted), Job.state == JobState.TODO.value)
                .values(
                    state=JobState.DOING.value,
                    worker=worker,
                    heartbeat_at=now,
                    attempts=Job.attempts + 1,
                )
                .returning(Job.id)
            ).all()
            if not claimed:
                return []
            jobs = session.scalars(select(Job).where(Job.id.in_(claimed)).order_by(Job.id)).all()
            taken = {job.lock for job in jobs if job.lock is not None}
            busy = set(
                session.scalars(
                    select(Job.lock).where(
                        Job.lock.in_(taken),
                        Job.state == JobState.DOING.value,
                        Job.id.not_in(claimed),
                    )
                )
            )
            result = []
            for job in jobs:
                if job.lock in busy:  # lost a race for the lock: put it back
                    job.state = JobState.TODO.value
                    job.worker = None
                    job.attempts -= 1
                else:
                    result.append(job)
            return result

    def finish(
        self,
        job_id: int,
        *,
        worker: str | None = None,
        error: str | None = None,
        retry_in: float | None = None,
        result: str | None = None,
    ) -> None:
        """Record how a job ended. With ``worker``, only while that worker still holds it: a
        job the reaper took from a worker that seemed dead, and another worker now runs, is
        not the first worker's to finish.

        A job to be retried whose queueing lock has another job waiting by then (deferred while
        this one ran) is not retried: it ends failed, and the waiting job does the work."""
        try:
            self._finish(job_id, worker, error, retry_in, result)
        except IntegrityError:
            # Another job with this one's queueing lock started waiting as the retry was
            # written (the check below saw none yet).
            self._finish(job_id, worker, _not_retried(error), None, result)

    def _finish(
        self,
        job_id: int,
        worker: str | None,
        error: str | None,
        retry_in: float | None,
        result: str | None,
    ) -> None:
        with self.core.connection() as connection:
            job = connection.execute(_HOLDER, {"job_id": job_id}).first()
            if job is None:
                return
            if worker is not None and (job.worker != worker or job.state != JobState.DOING.value):
                logger.warning("job %s was taken back from %s: not recorded", job_id, worker)
                return
            now = self.core.now()
            ended: dict[str, object]
            if retry_in is not None and _waiting(connection, job.queueing_lock, job_id):
                retry_in, error = None, _not_retried(error)
            if retry_in is not None and job.attempts < MAX_ATTEMPTS:
                run_at = now + dt.timedelta(seconds=retry_in)
                ended = {"state": JobState.TODO.value, "run_at": run_at, "last_error": error}
            elif error is not None:
                ended = {"state": JobState.FAILED.value, "last_error": error, "finished_at": now}
            else:
                ended = {"state": JobState.DONE.value, "last_error": result, "finished_at": now}
            # A reaper that took the job since it was read keeps it.
            held = {"job_id": job_id, "holder": job.worker, "held_state": job.state}
            connection.execute(_ENDED, {**held, "worker": None, **ended})

    def heartbeat(self, job_ids: list[int], worker: str | None = None) -> None:
        """Mark the jobs alive (with ``worker``: only those that worker still holds)."""
        if not job_ids:
            return
        alive = update(Job).where(Job.id.in_(job_ids), Job.state == JobState.DOING.value)
        if worker is not None:
            alive = alive.where(Job.worker == worker)
        with self.core.session() as session:
            session.execute(alive.values(heartbeat_at=self.core.now()))

    def reap(self, running: Collection[int] = ()) -> int:
        """Put back jobs whose worker stopped beating (or end them, when another job with the
        same queueing lock waits already); release what they held. ``running``:
        jobs the caller itself runs, alive whatever their heartbeat says (a busy worker's beat
        may be late; it must not take its own work for dead)."""
        cutoff = self.core.now() - dt.timedelta(seconds=self.stall_seconds)
        stale = select(Job).where(Job.state == JobState.DOING.value, Job.heartbeat_at < cutoff)
        if running:
            stale = stale.where(Job.id.not_in(sorted(running)))
        with self.core.session() as session:
            stalled = session.scalars(stale).all()
            put_back: set[str] = set()
            for job in stalled:
                # (A defer between this look and the commit makes the commit fail; the next
                # round of housekeeping then finds that job waiting.)
                waits = job.queueing_lock in put_back or _waiting(
                    session.connection(), job.queueing_lock, job.id
                )
                logger.warning(
                    "job %s (%s) stalled on %s; %s",
                    job.id,
                    job.task,
                    job.worker,
                    "its work waits as another job" if waits else "running it again",
                )
                if waits:  # deferred again while it ran: the waiting job does the work
                    job.state = JobState.FAILED.value
                    job.last_error = STALLED_AND_WAITING
                    job.finished_at = self.core.now()
                else:
                    job.state = JobState.TODO.value
                    if job.queueing_lock is not None:
                        put_back.add(job.queueing_lock)
                job.worker = None
            tasks.release_locks(session, self.core.now(), [job_owner(job.id) for job in stalled])
        tasks.reap_runs(self.core, dt.timedelta(seconds=self.core.settings.lock_seconds))
        return len(stalled)

    def once_per(self, name: str, period: str) -> bool:
        """True for the first caller of (name, period), across every worker."""
        with self.core.session() as session:
            if (
                session.scalar(
                    select(Schedule.id).where(Schedule.name == name, Schedule.period == period)
                )
                is not None
            ):
                return False
            session.add(Schedule(name=name, period=period))
        return True

    def pending(self) -> int:
        """Jobs waiting or running (the queue depth)."""
        with self.core.session() as session:
            return len(
                session.scalars(
                    select(Job.id).where(Job.state.in_([JobState.TODO.value, JobState.DOING.value]))
                ).all()
            )


_JOBS = cast(Table, Job.__table__)
_RUNNING = _JOBS.alias("running")
#: Due jobs whose lock no running job holds, oldest first (``now``, ``limit``).
_DUE = (
    select(_JOBS.c.id, _JOBS.c.lock)
    .where(_JOBS.c.state == JobState.TODO.value, _JOBS.c.run_at <= bindparam("now"))
    .where(
        _JOBS.c.lock.is_(None)
        | ~exists().where(
            and_(_RUNNING.c.lock == _JOBS.c.lock, _RUNNING.c.state == JobState.DOING.value)
        )
    )
    .order_by(_JOBS.c.run_at, _JOBS.c.id)
    .limit(bindparam("limit"))
)
#: Who holds a job, in what state, after how many attempts.
_HOLDER = select(_JOBS.c.worker, _JOBS.c.state, _JOBS.c.attempts, _JOBS.c.queueing_lock).where(
    _JOBS.c.id == bindparam("job_id")
)
#: Another job waiting under a queueing lock.
_WAITING = select(_JOBS.c.id).where(
    _JOBS.c.queueing_lock == bindparam("queueing_lock"),
    _JOBS.c.state == JobState.TODO.value,
    _JOBS.c.id != bindparam("job_id"),
)
STALLED_AND_WAITING = (
    "Its worker stopped; not run again, as another job with its queueing lock waits to do the "
    "same work."
)


def _waiting(connection: Connection, queueing_lock: str | None, job_id: int) -> bool:
    """Whether a job other than ``job_id`` waits under ``queueing_lock`` (at most one may: a
    job put back to wait beside it would break the queue's unique index)."""
    if queueing_lock is None:
        return False
    found = connection.execute(_WAITING, {"queueing_lock": queueing_lock, "job_id": job_id})
    return found.first() is not None


def _not_retried(error: str | None) -> str:
    return f"{error or 'Failed'} (not retried: another job with its queueing lock waits to do it)"


#: A job's end, written only while its holder and state are still those read (the columns
#: set are those named in the parameters).
_ENDED = update(_JOBS).where(
    _JOBS.c.id == bindparam("job_id"),
    _JOBS.c.state == bindparam("held_state"),
    _JOBS.c.worker.is_not_distinct_from(bindparam("holder")),
)


def job_owner(job_id: int) -> str:
    """The connection-lock owner name of a job."""
    return f"job-{job_id}"


#: How often an idle worker reads the queue, in seconds.
IDLE_SECONDS = 0.1


def _taking_turns(method: Callable[..., None]) -> Callable[..., None]:
    """A worker thread's work, its database blocks taking turns with its other threads'
    (:meth:`Core.taking_turns`)."""

    @functools.wraps(method)
    def in_turns(self: Worker, *args: Any) -> None:
        with self.core.taking_turns():
            method(self, *args)

    return in_turns


class Worker:
    """Runs jobs from a :class:`LocalQueue`, up to ``concurrency`` at a time, until stopped.

    One dispatcher thread claims as many due jobs as there are free slots (one statement) and
    runs each on a thread of its own; a job that ends frees its slot and wakes the dispatcher.
    An idle worker reads the queue every ``idle_seconds`` (a tenth of a second by default: a job
    deferred by another process starts that soon, and an empty read costs about 0.05 ms of CPU).
    A heartbeat thread beats for the running jobs and does the housekeeping.
    """

    def __init__(
        self,
        core: Core,
        queue: LocalQueue | None = None,
        *,
        concurrency: int = 2,
        idle_seconds: float = IDLE_SECONDS,
        name: str | None = None,
    ) -> None:
        self.core = core
        self.queue = queue or LocalQueue(core)
        self.concurrency = concurrency
        self.idle_seconds = idle_seconds
        self.name = name or f"worker-{uuid.uuid4().hex[:8]}"
        self.stop_event = threading.Event()
        self._active: set[int] = set()
        self._guard = threading.Condition()
        self._wake = threading.Event()

    def run_one(self) -> bool:
        """Claim and run one job on this thread; False when none was due."""
        job = self.queue.claim(self.name)
        if job is None:
            return False
        self._hold(job)
        self._run(job)
        return True

    @property
    def running(self) -> int:
        """Jobs running now."""
        return len(self._running_ids())

    def _running_ids(self) -> list[int]:
        with self._guard:
            return list(self._active)

    def _hold(self, job: Job) -> None:
        """Count a claimed job as running here (before it starts, so no slot is given twice)."""
        with self._guard:
            self._active.add(job.id)

    @_taking_turns
    def _run(self, job: Job) -> None:
        """Run a claimed job (already counted in ``_active``) and record how it ended."""
        worker = job.worker
        try:
            args = json.loads(job.args)
            result = tasks.run_task(self.core, self.queue, job_owner(job.id), job.task, args)
        except tasks.Retry as retry:
            self.queue.finish(job.id, worker=worker, error=retry.reason, retry_in=retry.delay)
        except Exception as error:  # a bug or an outage: recorded, retried with back-off
            logger.exception("job %s (%s) failed", job.id, job.task)
            self.queue.finish(
                job.id,
                worker=worker,
                error=f"{type(error).__name__}: {error}",
                retry_in=min(3600.0, 30.0 * 2**job.attempts),
            )
        else:
            self.queue.finish(job.id, worker=worker, result=result)
        finally:
            with self._guard:
                self._active.discard(job.id)
                self._guard.notify_all()
            self._wake.set()

    def tick(self) -> None:
        """Housekeeping between jobs: reap, and schedule the daily syncs once per day."""
        self.queue.reap(self._running_ids())
        now = self.core.now()
        if tasks.due_connections(self.core, now) and self.queue.once_per(
            "schedule_syncs", now.strftime("%Y-%m-%dT%H")
        ):
            self.queue.defer("schedule_syncs", queueing_lock="schedule_syncs")

    def run_until_idle(self, timeout: float = 60.0) -> None:
        """Run jobs on this thread until none is due (tests, ``sophsync sync``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.run_one():
            pass

    @_taking_turns
    def _dispatch(self) -> None:
        while not self.stop_event.is_set():
            self._wake.clear()
            free = self.concurrency - self.running
            jobs: list[Job] = []
            if free > 0:
                try:
                    jobs = self.queue.claim_many(self.name, free)
                except Exception:
                    logger.exception("worker %s could not fetch a job", self.name)
            for job in jobs:
                self._hold(job)
                threading.Thread(
                    target=self._run, args=(job,), daemon=True, name=f"{self.name}/job-{job.id}"
                ).start()
            if free > 0 and len(jobs) == free:
                continue  # every slot filled: there may be more due at once
            # Nothing more is due, or every slot is busy: wait for a job to end or for time.
            self._wake.wait(self.idle_seconds)

    @_taking_turns
    def _beat(self) -> None:
        while not self.stop_event.wait(min(10.0, self.queue.stall_seconds / 3)):
            try:
                self.queue.heartbeat(self._running_ids(), self.name)
                self.tick()
            except Exception:
                logger.exception("worker %s housekeeping failed", self.name)

    def start(self) -> list[threading.Thread]:
        """Start the dispatcher and the heartbeat; the threads to pass to :meth:`stop`."""
        threads = [
            threading.Thread(target=self._dispatch, daemon=True, name=f"{self.name}/dispatch"),
            threading.Thread(target=self._beat, daemon=True, name=f"{self.name}/beat"),
        ]
        self.tick()
        for thread in threads:
            thread.start()
        return threads

    def run_until_signalled(self, started: Callable[[], None] = lambda: None) -> None:
        """Run until SIGTERM or SIGINT (on the main thread), then stop as :meth:`stop` does; a
        second signal stops the process at once. ``started`` is called once jobs are taken.

        The signals are taken with ``sigwait`` by this thread alone: no handler runs in the
        middle of other code, and every thread started here inherits the block.
        """
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            threads = self.start()
            started()
            signal.sigwait(STOP_SIGNALS)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        logger.info("worker %s stopping: finishing %d running job(s)", self.name, self.running)
        self.stop(threads)

    def stop(self, threads: list[threading.Thread], timeout: float = 30.0) -> None:
        """Take no more jobs, and wait up to ``timeout`` seconds for the running ones."""
        deadline = time.monotonic() + timeout
        self.stop_event.set()
        self._wake.set()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._guard:
            self._guard.wait_for(
                lambda: not self._active, timeout=max(0.0, deadline - time.monotonic())
            )
