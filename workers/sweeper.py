"""The sweeper: re-queues lost work, applies retention, keeps the analysts' snapshot fresh and
sends the dose reminders that are due.

The database says what still needs doing; Redis only carries the work. :func:`sweep` compares
the two: a submission still processing whose job is gone (Redis flushed or restarted), failed
for good, or held by a worker that no longer exists is queued again under the same job id.
``vot serve`` and ``vot worker`` run :func:`sweeper_loop` in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.worker import Worker

from vot.config import Settings
from vot.db import get_engine, utcnow
from vot.pipeline import machine as pipeline
from workers.queue import connect, enqueue_submission, job_id, queue_url

logger = logging.getLogger(__name__)

SWEEP_EVERY_S = 30.0
RETENTION_BATCH = 500  # submissions per kind per pass: a modest, steady rate on the store
RETENTION_FIRST_AFTER_S = 60.0  # not in the rush of starting up
ANALYTICS_CHECK_EVERY_S = 60.0  # how often the snapshot's age is looked at (a cheap query)
REMINDERS_EVERY_S = 60.0
# rq's worker heartbeats every job_monitoring_interval (30 s) while a job runs.
HEARTBEAT_GRACE_S = 120
# A deferred job waits on another; for the stage a submission is at, only these make progress.
_LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED}


def worker_alive(redis: Redis, name: str) -> bool:
    """Whether the rq worker ``name`` is still running.

    A worker killed with SIGKILL leaves its registration (and its job "started") in Redis until
    its key expires. On this host its process id answers at once; elsewhere a heartbeat older
    than :data:`HEARTBEAT_GRACE_S` means it is gone.
    """
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=redis)
    if worker is None:
        return False
    if worker.hostname == socket.gethostname() and worker.pid:
        try:
            os.kill(worker.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, under another user
    beat = worker.last_heartbeat
    if beat is not None:
        age = (datetime.now(UTC) - beat.replace(tzinfo=beat.tzinfo or UTC)).total_seconds()
        return age < HEARTBEAT_GRACE_S
    return True


def _job_alive(redis: Redis, jid: str) -> bool:
    try:
        job = Job.fetch(jid, connection=redis)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=True)
    if status not in _LIVE:
        return False
    if status == JobStatus.STARTED and job.worker_name:
        return worker_alive(redis, job.worker_name)
    return True


def sweep(redis: Redis, settings: Settings, older_than_s: float | None = None) -> list[int]:
    """Re-queue every processing submission whose job was lost; returns their ids.

    A submission that has used up its attempts is rejected with the last recorded reason.
    """
    engine = get_engine(settings)
    requeued = []
    older = settings.stale_after_s if older_than_s is None else older_than_s
    for sub in pipeline.in_processing(engine, older_than_s=0):
        stage = pipeline.STAGE_OF_STATUS[sub.status]
        if _job_alive(redis, job_id(stage, sub.id)):
            continue
        stale = (utcnow() - sub.updated_at).total_seconds() >= older
        if sub.attempts >= pipeline.MAX_ATTEMPTS and stale:
            pipeline.reject_unusable(
                engine,
                sub.id,
                (
                    f"could not be processed after {sub.attempts} attempts"
                    + (f" ({sub.reason})" if sub.reason else "")
                ),
            )
            continue
        for stale_stage in (pipeline.TRANSCODE, pipeline.SCORE):
            with contextlib.suppress(NoSuchJobError):
                Job.fetch(job_id(stale_stage, sub.id), connection=redis).delete()
        enqueue_submission(redis, settings, sub.id, stage)
        logger.info("sweeper re-queued submission %s at %s", sub.id, stage)
        requeued.append(sub.id)
    return requeued


def retention_pass(settings: Settings) -> None:
    """Apply the retention policy to one batch of decided doses (the rest in later passes)."""
    from vot.retention.policy import apply_retention
    from vot.storage import open_storage

    report = apply_retention(
        get_engine(settings), open_storage(settings), settings, limit=RETENTION_BATCH
    )
    if report.more:
        logger.info("retention: more videos are due; the next pass goes on")


def analytics_pass(settings: Settings) -> bool:
    """Recompute the analysts' snapshot when it is older than ``settings.analytics_every_s``
    (or missing); whether it did.

    The snapshot serves the dashboard and the fast national export, so this bounds how old
    their figures are even when nobody opens the dashboard. Several sweepers may find it old
    at the same moment; each then recomputes it, and the writes take turns.
    """
    from vot.adherence import analytics

    started = time.monotonic()
    max_age = timedelta(seconds=settings.analytics_every_s)
    if not analytics.refresh_if_older(get_engine(settings), max_age):
        return False
    logger.info("adherence snapshot recomputed in %.1f s", time.monotonic() - started)
    return True


def _analytics_in_background(settings: Settings) -> None:
    try:
        analytics_pass(settings)
    except Exception:  # the dashboard shows the snapshot's age meanwhile
        logger.exception(
            "refreshing the adherence snapshot failed; trying again in %.0f s",
            ANALYTICS_CHECK_EVERY_S,
        )


def reminders_pass(settings: Settings) -> None:
    """Send the dose reminders due now and retry those whose time came (logged, never raised:
    a gateway or database failure leaves them for the next pass)."""
    from vot.outreach.dispatch import send_due

    try:
        send_due(get_engine(settings), settings)
    except Exception:
        logger.exception("sending reminders failed; trying again in %.0f s", REMINDERS_EVERY_S)


def _in_background(
    running: threading.Thread | None,
    target: Callable[[Settings], object],
    settings: Settings,
    name: str,
) -> threading.Thread:
    """Start ``target`` in a thread unless the last one still runs; the thread running it."""
    if running is not None and running.is_alive():
        return running
    thread = threading.Thread(target=target, args=(settings,), name=name, daemon=True)
    thread.start()
    return thread


def sweeper_loop(settings: Settings, stop: threading.Event, every_s: float = SWEEP_EVERY_S) -> None:
    """Until ``stop`` is set: re-queue lost work every ``every_s`` seconds, apply retention
    every ``settings.retention_every_s`` and keep the analysts' snapshot younger than
    ``settings.analytics_every_s`` (when not 0). The snapshot is recomputed in a thread of its
    own (minutes at national scale), so lost work is not left waiting meanwhile; so are the
    dose reminders, every :data:`REMINDERS_EVERY_S`, so a gateway that is down holds up
    nothing else."""
    redis = connect(queue_url(settings))
    next_retention = time.monotonic() + RETENTION_FIRST_AFTER_S
    next_analytics = time.monotonic() + RETENTION_FIRST_AFTER_S
    next_reminders = time.monotonic()
    analytics: threading.Thread | None = None
    reminders: threading.Thread | None = None
    while not stop.is_set():
        if time.monotonic() >= next_reminders:
            next_reminders = time.monotonic() + REMINDERS_EVERY_S
            reminders = _in_background(reminders, reminders_pass, settings, "vot-reminders")
        try:
            sweep(redis, settings)
        except Exception:  # keep sweeping: a Redis or database blip must not end the loop
            logger.exception("sweep failed; trying again in %.0f s", every_s)
        if time.monotonic() >= next_retention:
            next_retention = time.monotonic() + settings.retention_every_s
            try:
                retention_pass(settings)
            except Exception:  # a store outage: videos are kept a little longer, never lost
                logger.exception(
                    "retention failed; trying again in %.0f s", settings.retention_every_s
                )
        if settings.analytics_every_s and time.monotonic() >= next_analytics:
            next_analytics = time.monotonic() + ANALYTICS_CHECK_EVERY_S
            analytics = _in_background(
                analytics, _analytics_in_background, settings, "vot-analytics"
            )
        stop.wait(min(every_s, max(0.0, next_reminders - time.monotonic())))


def start_sweeper(settings: Settings) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=sweeper_loop, args=(settings, stop), name="vot-sweeper", daemon=True
    )
    thread.start()
    return thread, stop
