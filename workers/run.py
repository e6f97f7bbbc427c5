"""Run rq workers on the vot queues (``vot worker``), optionally with the sweeper.

Each worker forks a work-horse per job, so a crash in ffmpeg or MediaPipe takes down one job,
not the worker. SIGINT or SIGTERM stops a worker after its current job (rq's warm shutdown).
"""

from __future__ import annotations

import logging
import threading
import time

from rq import Queue
from rq.worker import Worker

from vot.config import Settings
from vot.redis_server import is_up, queue_url
from workers.queue import WORKER_QUEUES, connect, sweep
from workers.scoring import preload

logger = logging.getLogger(__name__)

SWEEP_EVERY_S = 30.0
RETENTION_BATCH = 500  # submissions per kind per pass: a modest, steady rate on the store
RETENTION_FIRST_AFTER_S = 60.0  # not in the rush of starting up
ANALYTICS_CHECK_EVERY_S = 60.0  # how often the snapshot's age is looked at (a cheap query)


def wait_for_redis(url: str, timeout_s: float = 30.0) -> None:
    """Block until Redis answers at ``url``.

    Raises:
        RuntimeError: it did not answer in time (the message names the URL to check).
    """
    deadline = time.monotonic() + timeout_s
    while not is_up(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no Redis answers at {url}; start `vot serve` or set VOT_REDIS_URL")
        time.sleep(0.5)


def retention_pass(settings: Settings) -> None:
    """Apply the retention policy to one batch of decided doses (the rest in later passes)."""
    from vot.db import get_engine
    from vot.retention import apply_retention
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
    from datetime import timedelta

    from vot import analytics
    from vot.db import get_engine

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


def sweeper_loop(settings: Settings, stop: threading.Event, every_s: float = SWEEP_EVERY_S) -> None:
    """Until ``stop`` is set: re-queue lost work every ``every_s`` seconds, apply retention
    every ``settings.retention_every_s`` and keep the analysts' snapshot younger than
    ``settings.analytics_every_s`` (when not 0). The snapshot is recomputed in a thread of its
    own (minutes at national scale), so lost work is not left waiting meanwhile."""
    redis = connect(queue_url(settings))
    next_retention = time.monotonic() + RETENTION_FIRST_AFTER_S
    next_analytics = time.monotonic() + RETENTION_FIRST_AFTER_S
    analytics: threading.Thread | None = None
    while not stop.is_set():
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
        idle = analytics is None or not analytics.is_alive()
        if settings.analytics_every_s and idle and time.monotonic() >= next_analytics:
            next_analytics = time.monotonic() + ANALYTICS_CHECK_EVERY_S
            analytics = threading.Thread(
                target=_analytics_in_background, args=(settings,), name="vot-analytics", daemon=True
            )
            analytics.start()
        stop.wait(every_s)


def start_sweeper(settings: Settings) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=sweeper_loop, args=(settings, stop), name="vot-sweeper", daemon=True
    )
    thread.start()
    return thread, stop


def run_worker(
    settings: Settings, burst: bool = False, sweep_too: bool = True, name: str | None = None
) -> bool:
    """Work the vot queues until stopped (or, with ``burst``, until they are empty)."""
    url = queue_url(settings)
    wait_for_redis(url)
    redis = connect(url)
    stop = None
    if sweep_too and not burst:
        _thread, stop = start_sweeper(settings)
    queues = [Queue(q, connection=redis) for q in WORKER_QUEUES]
    preload()  # each forked work-horse then starts with MediaPipe imported
    worker = Worker(queues, connection=redis, name=name)
    try:
        return worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        if stop is not None:
            stop.set()
