"""``vot serve`` as a clinic runs it: one command, embedded Redis, real workers, Ctrl-C."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

from tests.conftest import video


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def cmdline(proc: psutil.Process) -> list[str]:
    """A child's command line; empty for a short-lived one (an ffprobe) that has since ended."""
    try:
        return proc.cmdline()
    except psutil.NoSuchProcess:
        return []


def test_serve_processes_a_submission_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOT_")}
    env.update(VOT_DATA_DIR=str(tmp_path / "data"), VOT_SECRET_KEY="t")
    cli = [sys.executable, "-m", "vot.app.cli"]

    def run(*args: str) -> str:
        done = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("patient", "add", "P-1", "--clinic", "North")
    port = free_port()
    log = (tmp_path / "serve.log").open("w")  # noqa: SIM115 - closed in the finally below
    # A session of its own, so SIGINT can go to the whole group as a terminal's Ctrl-C does.
    serve = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def healthy() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok
            except requests.ConnectionError:
                return False

        wait_for(healthy, 60, "the web app")
        assert "queued" in run("submit", "--patient", "P-1", str(video()))

        def scored() -> bool:
            info = json.loads(run("status", "1", "--json"))
            return info["status"] in ("review", "auto_accepted")

        wait_for(scored, 240, "the submission to be scored")
        children = psutil.Process(serve.pid).children(recursive=True)
        names = " ".join(" ".join(cmdline(c)) for c in children)
        assert "redis-server" in names and names.count("worker") >= 2
        os.killpg(serve.pid, signal.SIGINT)
        assert serve.wait(timeout=60) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"orphans left: {[p.pid for p in alive]}"
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()
    assert "stopped" in (tmp_path / "serve.log").read_text()
