"""Run rq workers on the vot queues (``vot worker``), optionally with the sweeper.

Each worker forks a work-horse per job, so a crash in ffmpeg or MediaPipe takes down one job,
not the worker. SIGINT or SIGTERM stops a worker after its current job (rq's warm shutdown).
"""

from __future__ import annotations

import logging

from rq import Queue
from rq.worker import Worker

from vot.config import Settings
from workers.queue import WORKER_QUEUES, connect, queue_url, wait_for_redis
from workers.scoring.step import preload
from workers.sweeper import start_sweeper

logger = logging.getLogger(__name__)


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
