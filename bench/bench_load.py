"""Load test on loopback: many patients upload real clips at once through tus to `vot serve`.

Starts ``vot serve --workers N`` on a temporary data folder and a free port, gives each patient
an upload link, has them upload the real clips in ../shared/data/clips concurrently (threads,
raw tus over HTTP in 256 kB pieces, retrying 423 and 503 as tus clients do), then waits until every
accepted upload has left processing. Prints one JSON object:

    python -m bench.bench_load --json [--patients 12 --uploads 48 --workers 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import requests

from vot.config import REPO_ROOT

CLIPS = REPO_ROOT.parent / "shared" / "data" / "clips"
PIECE = 256 * 1024
RETRIES = 5  # on 423 (busy) and 503, as tus clients do
PROCESSING = {"received", "transcoding", "scoring"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _patients(env: dict[str, str], count: int) -> list[str]:
    """Add ``count`` patients and return their upload-link tokens (in-process, before serving)."""
    from vot import accounts, tokens
    from vot.config import load_settings
    from vot.db import dispose_engines, get_engine
    from vot.migrations import upgrade

    settings = load_settings(env)
    engine = get_engine(settings)
    upgrade(engine)
    with engine.begin() as conn:
        clinic = accounts.ensure_clinic(conn, "Load")
        for i in range(count):
            accounts.add_patient(conn, f"L-{i:03d}", clinic, date(2026, 1, 1), "UTC")
        links = [tokens.link_token(conn, settings.secret_key, f"L-{i:03d}") for i in range(count)]
    dispose_engines()
    return links


def _upload(base: str, token: str, path: Path) -> dict[str, Any]:
    """One tus upload, in pieces; its latency, HTTP status and submission id."""
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    data = path.read_bytes()
    recorded = datetime.now(UTC).isoformat(timespec="seconds")
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {"filename": path.name, "recorded_at": recorded}.items()
    )
    started = time.monotonic()
    try:
        with requests.Session() as http:
            reply = http.post(
                base + "/api/v1/uploads",
                headers={**auth, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
                timeout=60,
            )
            url = base + reply.headers.get("Location", "")
            offset, retries = 0, 0
            while reply.status_code in (201, 204, 423, 503) and offset < len(data):
                if reply.status_code in (423, 503):  # busy: wait, ask where it stands, go on
                    if retries == RETRIES:
                        break
                    retries += 1
                    time.sleep(0.5 * retries)
                    head = http.head(url, headers=auth, timeout=60)
                    offset = int(head.headers.get("Upload-Offset", offset))
                    if offset == len(data):  # all there: asking again finishes it
                        reply = http.get(url, headers=auth, timeout=60)
                        reply.status_code = 204 if reply.ok else reply.status_code
                        break
                reply = http.patch(
                    url,
                    data=data[offset : offset + PIECE],
                    headers={
                        **auth,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                    timeout=120,
                )
                offset = int(reply.headers.get("Upload-Offset", offset))
    except requests.RequestException as exc:
        return {"ok": False, "status": None, "error": type(exc).__name__, "token": token}
    ok = reply.status_code == 204 and "Vot-Submission-Id" in reply.headers
    return {
        "ok": ok,
        "status": reply.status_code,
        "latency_s": time.monotonic() - started,
        "submission_id": int(reply.headers["Vot-Submission-Id"]) if ok else None,
        "token": token,
        "bytes": len(data),
        "retries": retries,
    }


def _statuses(base: str, tokens: list[str]) -> dict[int, str]:
    """Every submission's status, read back through the patients' own API."""
    found: dict[int, str] = {}
    for token in tokens:
        reply = requests.get(
            base + "/api/v1/me/submissions",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        reply.raise_for_status()
        found.update({s["id"]: s["status"] for s in reply.json()})
    return found


def run(patients: int, uploads: int, workers: int, drain_timeout_s: float) -> dict[str, Any]:
    clips = sorted(p for p in CLIPS.iterdir() if p.suffix in (".mp4", ".mkv"))
    if not clips:
        raise SystemExit(f"no clips in {CLIPS}")
    with tempfile.TemporaryDirectory(prefix="vot-load-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOT_")}
        env.update(VOT_DATA_DIR=str(Path(tmp) / "data"), VOT_SECRET_KEY="load-test")
        links = _patients(env, patients)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(Path(tmp) / "serve.log", "w")  # noqa: SIM115 - closed below
        serve = subprocess.Popen(
            [sys.executable, "-m", "vot.app.cli", "serve", "--port", str(port)]
            + ["--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if requests.get(base + "/healthz", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise SystemExit("vot serve did not start; see its log")
                time.sleep(0.5)
            # Upload i goes to patient i % patients; each patient sends different clips.
            plan = [(links[i % patients], clips[i % len(clips)]) for i in range(uploads)]
            lock = threading.Lock()
            results: list[dict[str, Any]] = []

            def one(job: tuple[str, Path]) -> None:
                got = _upload(base, *job)
                with lock:
                    results.append(got)

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=patients) as pool:
                list(pool.map(one, plan))
            upload_s = time.monotonic() - started
            accepted = {r["submission_id"] for r in results if r["ok"]}
            deadline = time.monotonic() + drain_timeout_s
            while True:
                states = _statuses(base, links)
                waiting = [i for i in accepted if states.get(i) in PROCESSING]
                if not waiting or time.monotonic() > deadline:
                    break
                time.sleep(2)
            drained_s = time.monotonic() - started
        finally:
            os.killpg(serve.pid, signal.SIGINT)
            try:
                serve.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
            log.close()
    latencies = sorted(r["latency_s"] for r in results if r["ok"])
    quantiles = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else latencies * 19
    ended = {i: states.get(i) for i in accepted}
    return {
        "benchmark": "load",
        "patients_concurrent": patients,
        "uploads_tried": uploads,
        "workers": workers,
        "cpus": os.cpu_count(),
        "clips": len(clips),
        "megabytes_sent": round(sum(r.get("bytes", 0) for r in results if r["ok"]) / 1e6, 1),
        "upload_phase_s": round(upload_s, 1),
        "uploads_per_s": round(len(accepted) / upload_s, 2),
        "upload_latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "upload_latency_p95_s": round(quantiles[18], 2) if latencies else None,
        "errors": sum(1 for r in results if not r["ok"]),
        "error_rate": round(sum(1 for r in results if not r["ok"]) / uploads, 3),
        "error_statuses": sorted({str(r["status"]) for r in results if not r["ok"]}),
        "retried_pieces_423_503": sum(r.get("retries", 0) for r in results),
        "accepted": len(accepted),
        "scored": sum(1 for s in ended.values() if s in ("review", "auto_accepted")),
        "rejected": sum(1 for s in ended.values() if s == "rejected"),
        "still_processing": sum(1 for s in ended.values() if s in PROCESSING),
        "lost": sum(1 for s in ended.values() if s is None),
        "all_scored_after_s": round(drained_s, 1),
        "processed_per_min": round(len(accepted) / drained_s * 60, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=12, help="patients uploading at once")
    parser.add_argument("--uploads", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    out = run(args.patients, args.uploads, args.workers, args.drain_timeout)
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
