"""``vot serve``: the web app, N workers and (when needed) the embedded Redis, as one command.

Workers are child processes that die with this one; Ctrl-C (SIGINT) or SIGTERM stops the web
server, lets each worker finish its current job, then stops the embedded Redis.

Plain HTTP is served by waitress (the server the load benchmark measures). With a certificate
and key (``--certfile``, ``--keyfile``) the app is served over HTTPS by cheroot, which speaks
TLS itself through Python's ``ssl`` module: browsers allow the camera only on a secure origin,
so a clinic can run the page on its own network without a proxy in front.
"""

from __future__ import annotations

import logging
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from vot.children import child_popen_kwargs, kill_tree

if TYPE_CHECKING:
    from flask import Flask
from vot.config import Settings

logger = logging.getLogger(__name__)

WORKER_STOP_WAIT_S = 30.0
THREADS = 8  # requests served at once (uploads are many small tus pieces)
MAX_HEADER_BYTES = 256 * 1024  # as waitress's default, for the TLS server too


class TLSError(ValueError):
    """A certificate or key that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class TLS:
    """A certificate chain (PEM) and its private key for serving HTTPS."""

    certfile: Path
    keyfile: Path

    def check(self) -> None:
        """Load the pair once, so a wrong file fails at start with a clear message.

        Raises:
            TLSError: a file is missing, unreadable, or the key does not match.
        """
        for path in (self.certfile, self.keyfile):
            if not path.is_file():
                raise TLSError(f"{path} is not a file")
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                self.certfile, self.keyfile
            )
        except (ssl.SSLError, OSError) as exc:
            raise TLSError(
                f"cannot serve HTTPS with {self.certfile} and {self.keyfile}: {exc}"
            ) from None


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


def serve_http(app: Flask, host: str, port: int, tls: TLS | None, proxied: bool) -> None:
    """Serve ``app`` until interrupted: HTTPS with cheroot when ``tls`` is given, else HTTP
    with waitress. ``proxied``: a reverse proxy is trusted (``VOT_TRUSTED_PROXIES``), so its
    X-Forwarded-* headers must reach the app, which reads them (waitress drops them else)."""
    if tls is None:
        import waitress

        waitress.serve(
            app,
            host=host,
            port=port,
            threads=THREADS,
            ident="vot",
            clear_untrusted_proxy_headers=not proxied,
            _quiet=True,
        )
        return
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    server = wsgi.Server((host, port), app, numthreads=THREADS, server_name="vot", timeout=60)
    server.max_request_header_size = MAX_HEADER_BYTES
    server.ssl_adapter = BuiltinSSLAdapter(str(tls.certfile), str(tls.keyfile))
    try:
        server.start()
    finally:
        server.stop()


def serve(settings: Settings, host: str, port: int, workers: int, tls: TLS | None = None) -> None:
    """Run everything a clinic needs until interrupted (over HTTPS when ``tls`` is given).

    Raises:
        TLSError: the certificate or key cannot be used (before anything starts).
    """
    from vot.app.embedded_redis import queue_running
    from vot.db import get_engine
    from vot.migrations import upgrade
    from workers.sweeper import start_sweeper

    if tls is not None:
        tls.check()
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
            scheme = "https" if tls else "http"
            print(
                f"vot serving on {scheme}://{host}:{port}/ with {workers} worker(s); "
                "Ctrl-C stops it",
                flush=True,
            )
            serve_http(app, host, port, tls, proxied=settings.trusted_proxies > 0)
        except KeyboardInterrupt:
            print("\nstopping: letting workers finish their current job ...", flush=True)
        finally:
            if stop_sweeper is not None:
                stop_sweeper.set()
            stop_processes(procs)
    print("stopped", flush=True)
