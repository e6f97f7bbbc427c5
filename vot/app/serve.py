"""``vot serve``: the web app, N workers and (when needed) the embedded Redis, as one command.

Workers are child processes that die with this one; Ctrl-C (SIGINT) or SIGTERM stops the web
server, lets each worker finish its current job, then stops the embedded Redis.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from vot.children import child_popen_kwargs, kill_tree

if TYPE_CHECKING:
    from flask import Flask
from vot.config import Settings

logger = logging.getLogger(__name__)

WORKER_STOP_WAIT_S = 30.0


def spawn_workers(
    count: int, redis_url: str, log: Path | None = None
) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``vot worker`` processes on ``redis_url`` (no sweeper: serve runs one).

    Their output goes to ``log`` when given (appended), else to this process's terminal.
    """
    env = dict(os.environ, VOT_REDIS_URL=redis_url)
    cmd = [sys.executable, "-m", "vot.app.cli", "worker", "--no-sweep"]
    if log is None:
        return [subprocess.Popen(cmd, env=env, **child_popen_kwargs()) for _ in range(count)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return [
            subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, **child_popen_kwargs()
            )
            for _ in range(count)
        ]


def stop_processes(
    procs: list[subprocess.Popen[bytes]], wait_s: float = WORKER_STOP_WAIT_S
) -> None:
    """Ask each process to stop (SIGTERM: rq's warm shutdown), then kill what is left."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("worker %s did not stop in %.0f s; killing it", proc.pid, wait_s)
            kill_tree(proc.pid)
            proc.wait()


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def web_app(settings: Settings) -> Flask:
    """The web app wired to the queue: a finished upload is queued at once."""
    from review_ui import create_app
    from workers.queue import enqueuer

    return create_app(settings, enqueue=enqueuer(settings))


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run everything a clinic needs until interrupted."""
    import waitress

    from vot.app.embedded_redis import queue_running
    from vot.db import get_engine
    from vot.migrations import upgrade
    from workers.sweeper import start_sweeper

    upgrade(get_engine(settings))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    with queue_running(settings) as settings:
        assert settings.redis_url is not None
        procs: list[subprocess.Popen[bytes]] = []
        stop_sweeper = None
        try:
            procs = spawn_workers(workers, settings.redis_url)
            _thread, stop_sweeper = start_sweeper(settings)
            app = web_app(settings)
            print(
                f"vot serving on http://{host}:{port}/ with {workers} worker(s); Ctrl-C stops it",
                flush=True,
            )
            waitress.serve(app, host=host, port=port, threads=8, ident="vot", _quiet=True)
        except KeyboardInterrupt:
            print("\nstopping: letting workers finish their current job ...", flush=True)
        finally:
            if stop_sweeper is not None:
                stop_sweeper.set()
            stop_processes(procs)
    print("stopped", flush=True)
