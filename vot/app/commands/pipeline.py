"""Commands that run the pipeline: demo, serve, worker, submit, status, sweep, db upgrade."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vot.app.commands.common import (
    Subparsers,
    a_date,
    a_time,
    add,
    group,
    positive,
    quiet_native_logs,
    upgraded,
)
from vot.config import Settings


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from vot.app.demo import run_demo
    from vot.app.demo_report import report

    result = run_demo(settings, workers=args.workers, timeout_s=args.timeout, clips_dir=args.clips)
    print(report(settings, result))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from vot.app.serve import TLS, TLSError, serve

    if (args.certfile is None) != (args.keyfile is None):
        raise TLSError("give both --certfile and --keyfile to serve HTTPS")
    tls = TLS(args.certfile, args.keyfile) if args.certfile else None
    serve(settings, args.host, args.port, args.workers, tls)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    quiet_native_logs()
    from workers.run import run_worker

    upgraded(settings)
    run_worker(settings, burst=args.burst, sweep_too=not args.no_sweep, name=args.name)
    return 0


def cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    from vot.intake.ingest import ingest_file
    from vot.storage import open_storage
    from workers.queue import enqueuer

    got = ingest_file(
        upgraded(settings),
        open_storage(settings),
        settings,
        args.patient,
        Path(args.file),
        dose_date=args.dose_date,
        recorded_at=args.recorded_at,
        enqueue=enqueuer(settings),
    )
    if not got.created:
        print(
            f"submission {got.submission_id}: this file was already received for "
            f"{got.dose_date} (status {got.status})"
        )
    elif got.queued:
        print(f"submission {got.submission_id}: received for dose {got.dose_date}, queued")
    else:
        print(
            f"submission {got.submission_id}: received for dose {got.dose_date}; no queue is "
            "running, it will be processed when `vot serve` or `vot worker` starts"
        )
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from vot.db import get_engine
    from vot.pipeline.status import describe

    info = describe(get_engine(settings), args.submission_id)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        for key, value in info.items():
            print(f"{key:>16}: {value}")
    return 0


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from workers.queue import connect, queue_url, wait_for_redis
    from workers.sweeper import sweep

    url = queue_url(settings)
    wait_for_redis(url, timeout_s=5)
    requeued = sweep(connect(url), settings)
    print(f"re-queued {len(requeued)} submission(s)" + (f": {requeued}" if requeued else ""))
    return 0


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from vot.db import get_engine
    from vot.migrations import HEAD, upgrade

    applied = upgrade(get_engine(settings))
    print(f"database at schema version {HEAD}" + (f"; applied {applied}" if applied else ""))
    return 0


def register(sub: Subparsers) -> None:
    p = add(sub, "demo", cmd_demo, "seed a demo clinic and run its videos through the pipeline")
    p.add_argument("--workers", type=positive, default=2)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the workers")
    p.add_argument("--clips", type=Path, help="folder of clips (default: ../shared/data/clips)")
    p = add(sub, "serve", cmd_serve, "run the web app, workers and (if needed) the embedded Redis")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=positive, default=8000)
    p.add_argument("--workers", type=positive, default=2)
    p.add_argument("--certfile", type=Path, help="serve HTTPS: the certificate chain (PEM)")
    p.add_argument("--keyfile", type=Path, help="serve HTTPS: its private key (PEM)")
    p = add(sub, "worker", cmd_worker, "run queue workers only (for extra machines)")
    p.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    p.add_argument("--no-sweep", action="store_true", help="do not re-queue lost work")
    p.add_argument("--name", help="worker name (unique per Redis)")
    p = add(sub, "submit", cmd_submit, "ingest a video as if a patient had uploaded it")
    p.add_argument("--patient", required=True, help="patient code")
    p.add_argument("--dose-date", type=a_date, help="dose day (default: the recording day)")
    p.add_argument("--recorded-at", type=a_time, help="when it was recorded (ISO 8601)")
    p.add_argument("file")
    p = add(sub, "status", cmd_status, "show where a submission is")
    p.add_argument("submission_id", type=positive)
    p.add_argument("--json", action="store_true")
    add(sub, "sweep", cmd_sweep, "re-queue submissions whose job was lost")
    db = group(sub, "db", "database schema", "db_command")
    db.add_parser("upgrade", help="create or upgrade the schema").set_defaults(fn=cmd_db_upgrade)
