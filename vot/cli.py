"""The ``vot`` command line. Each sub-command is a small function over explicit settings.

Errors a user can fix (bad setting, unknown patient, unusable file, store down) print one line
``vot: error: ...`` on stderr and exit with status 2 (usage) or 1 (the rest).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path

from vot.config import ConfigError, Settings, load_settings

logger = logging.getLogger("vot")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("the time needs a UTC offset, e.g. +08:00")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _quiet_native_logs() -> None:
    # MediaPipe and TFLite log through glog/absl to stderr; keep only their errors.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from vot.demo import report, run_demo

    result = run_demo(settings, workers=args.workers, timeout_s=args.timeout, clips_dir=args.clips)
    print(report(settings, result))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from vot.serve import serve

    serve(settings, args.host, args.port, args.workers)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    _quiet_native_logs()
    from vot.db import get_engine
    from vot.migrations import upgrade
    from workers.run import run_worker

    upgrade(get_engine(settings))
    run_worker(settings, burst=args.burst, sweep_too=not args.no_sweep, name=args.name)
    return 0


def cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    from vot.db import get_engine
    from vot.ingest import ingest_file
    from vot.migrations import upgrade
    from vot.redis_server import is_up, queue_url
    from vot.storage import open_storage

    engine = get_engine(settings)
    upgrade(engine)
    got = ingest_file(
        engine,
        open_storage(settings),
        settings,
        args.patient,
        Path(args.file),
        dose_date=args.dose_date,
        recorded_at=args.recorded_at,
    )
    if not got.created:
        print(
            f"submission {got.submission_id}: this file was already received for "
            f"{got.dose_date} (status {got.status})"
        )
        return 0
    url = queue_url(settings)
    if is_up(url):
        from workers.queue import connect, enqueue_submission

        enqueue_submission(connect(url), settings, got.submission_id)
        print(f"submission {got.submission_id}: received for dose {got.dose_date}, queued")
    else:
        print(
            f"submission {got.submission_id}: received for dose {got.dose_date}; no queue is "
            "running, it will be processed when `vot serve` or `vot worker` starts"
        )
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from vot.db import get_engine
    from vot.status import describe

    info = describe(get_engine(settings), args.submission_id)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        for key, value in info.items():
            print(f"{key:>16}: {value}")
    return 0


def cmd_score(settings: Settings, args: argparse.Namespace) -> int:
    _quiet_native_logs()
    from vot.media import probe

    probe(Path(args.file), settings.ffmpeg)  # fail fast, before loading the models
    from workers.scoring import score_file

    result = score_file(Path(args.file), settings)
    result.pop("_triage")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"confidence {result['confidence']:.3f} -> {result['decision']}")
        for event in result["events"]:
            print(
                f"  {event['type']:<14} {event['start_s']:6.2f}-{event['end_s']:6.2f} s  "
                f"score {event['score']:.2f}"
            )
        print(f"  reasons: {', '.join(result['reasons']) or '-'}")
    return 0


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    _quiet_native_logs()
    from vot.triage import decide_dict, load_thresholds
    from workers.evaluation import evaluate
    from workers.scorer import Scorer

    labels = Path(args.labels)
    if not labels.is_file():
        raise LookupError(f"no labels file {labels}")
    thresholds = load_thresholds(settings.models_dir, settings.threshold_version)
    with Scorer() as scorer:
        summary = evaluate(
            labels, Path(args.out), scorer, lambda result: decide_dict(result, thresholds).decision
        )
    summary.pop("per_clip", None)  # every clip's score and reasons are in the report files
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_calibrate(settings: Settings, args: argparse.Namespace) -> int:
    from vot import calibrate
    from vot.db import get_engine
    from vot.migrations import upgrade
    from vot.triage import load_thresholds

    current = load_thresholds(settings.models_dir, settings.threshold_version)
    engine = get_engine(settings)
    upgrade(engine)
    with engine.connect() as conn:
        verdicts = calibrate.final_verdicts(conn, args.model_version)
    result = calibrate.choose_bands(
        verdicts, current, args.version, args.target_precision, args.min_reviewed
    )
    summary = {
        "version": args.version,
        "from_version": current.version,
        "auto_accept": result.thresholds.auto_accept,
        "reject_below": result.thresholds.reject_below,
        "reviewed": result.reviewed,
        "accepted": result.accepted,
        "auto_accept_precision": result.auto_accept_precision,
        "auto_accept_count": result.auto_accept_count,
        "reject_accepted_share": result.reject_accepted_share,
        "reject_count": result.reject_count,
        "notes": result.notes,
    }
    if not args.dry_run:
        path = calibrate.write(
            result,
            settings.models_dir,
            from_version=current.version,
            target_precision=args.target_precision,
        )
        summary["written"] = str(path)
        summary["use_with"] = f"VOT_THRESHOLD_VERSION={args.version}"
    print(json.dumps(summary, indent=2))
    return 0


def cmd_patient_add(settings: Settings, args: argparse.Namespace) -> int:
    from vot import accounts
    from vot.db import get_engine
    from vot.migrations import upgrade

    engine = get_engine(settings)
    upgrade(engine)
    with engine.begin() as conn:
        clinic_id = accounts.ensure_clinic(conn, args.clinic, args.district or "")
        patient, created = accounts.add_patient(
            conn, args.code, clinic_id, args.start or date.today(), args.tz, args.length_days
        )
    verb = "enrolled" if created else "already enrolled"
    print(f"patient {patient.code} {verb} (clinic {args.clinic}, time zone {patient.timezone})")
    return 0


def cmd_patient_link(settings: Settings, args: argparse.Namespace) -> int:
    from vot import tokens
    from vot.db import get_engine
    from vot.migrations import upgrade

    engine = get_engine(settings)
    upgrade(engine)
    with engine.begin() as conn:
        if args.patient_command == "revoke-link":
            count = tokens.revoke(conn, args.code)
            print(f"patient {args.code}: {count} link(s) revoked")
            return 0
        if args.patient_command == "rotate-link":
            token = tokens.rotate(conn, settings.secret_key, args.code)
        else:
            token = tokens.link_token(conn, settings.secret_key, args.code)
    print(tokens.patient_url(settings.public_url, token))
    return 0


def cmd_patient_erase(settings: Settings, args: argparse.Namespace) -> int:
    from vot.db import get_engine
    from vot.migrations import upgrade
    from vot.retention import erase_patient
    from vot.storage import open_storage

    engine = get_engine(settings)
    upgrade(engine)
    actor = f"cli:{args.by}" if args.by else "cli"
    report = erase_patient(
        engine, open_storage(settings), settings, args.code, actor=actor, reason=args.reason
    )
    print(
        f"patient {report.code}: videos of {len(report.submissions)} submission(s) erased, "
        f"{report.objects} stored object(s) and {report.uploads} upload(s) in progress removed"
        + (f", processing stopped for {report.stopped}" if report.stopped else "")
        + (
            f"; {report.shared_kept} raw file(s) kept (another patient sent the same bytes)"
            if report.shared_kept
            else ""
        )
        + (
            f"; {report.links_revoked} upload link(s) revoked "
            f"(a new one: vot patient rotate-link {report.code})"
            if report.links_revoked
            else ""
        )
        + "; decisions and the audit log remain"
    )
    return 0


def cmd_retention(settings: Settings, args: argparse.Namespace) -> int:
    from vot.db import get_engine
    from vot.migrations import HEAD, current_version, upgrade
    from vot.retention import apply_retention
    from vot.storage import open_storage

    engine = get_engine(settings)
    if not args.dry_run:
        upgrade(engine)
    elif current_version(engine) != HEAD:  # a dry run changes nothing, the schema included
        raise RuntimeError("the database schema is not current; run `vot db upgrade` first")
    report = apply_retention(engine, open_storage(settings), settings, dry_run=args.dry_run)
    summary: dict[str, object] = {
        "dry_run": report.dry_run,
        "retain_raw_days": settings.retain_raw_days,
        "retain_review_days": settings.retain_review_days,
        "raw_deleted": len(report.raw),
        "review_deleted": len(report.review),
        "objects": report.objects,
        "raw_kept_shared": report.shared_kept,
        "rechecked_after_erasure": report.rechecked,
    }
    if args.json:
        summary["raw_submission_ids"] = report.raw
        summary["review_submission_ids"] = report.review
        print(json.dumps(summary, indent=2))
        return 0
    verb = "would delete" if report.dry_run else "deleted"
    print(
        f"{verb} the raw uploads of {len(report.raw)} decided dose(s) (kept "
        f"{settings.retain_raw_days} days) and the review copies of {len(report.review)} "
        f"(kept {settings.retain_review_days} days): {report.objects} stored object(s)"
    )
    return 0


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    from vot import accounts
    from vot.db import get_engine
    from vot.migrations import upgrade

    engine = get_engine(settings)
    upgrade(engine)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    with engine.begin() as conn:
        clinic_id = accounts.ensure_clinic(conn, args.clinic) if args.clinic else None
        _uid, created = accounts.ensure_user(conn, args.username, password, args.role, clinic_id)
    print(f"user {args.username} {'created' if created else 'updated'} ({args.role})")
    return 0


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from vot.db import get_engine
    from vot.migrations import HEAD, upgrade

    applied = upgrade(get_engine(settings))
    print(f"database at schema version {HEAD}" + (f"; applied {applied}" if applied else ""))
    return 0


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from vot.redis_server import queue_url
    from workers.queue import connect, sweep
    from workers.run import wait_for_redis

    url = queue_url(settings)
    wait_for_redis(url, timeout_s=5)
    requeued = sweep(connect(url), settings)
    print(f"re-queued {len(requeued)} submission(s)" + (f": {requeued}" if requeued else ""))
    return 0


def cmd_export_adherence(settings: Settings, args: argparse.Namespace) -> int:
    import io

    from vot import export
    from vot.adherence import Definitions
    from vot.db import get_engine, utcnow
    from vot.ledger import Scope
    from vot.migrations import HEAD, current_version

    engine = get_engine(settings)
    if current_version(engine) != HEAD:
        raise RuntimeError("the database schema is not current; run `vot db upgrade` first")
    scope = Scope(args.district, args.clinic, args.start_from, args.start_to)
    now = utcnow()
    computed_at = None
    with engine.connect() as conn:
        if args.snapshot:
            computed_at, rows = export.snapshot_records(conn, args.as_of, scope)
        else:
            rows = export.records(conn, now, args.as_of, scope)
    meta = export.metadata(now, args.as_of, scope, Definitions(), len(rows), computed_at)
    out = io.StringIO()
    if args.format == "csv":
        export.write_csv(rows, out, Definitions())
    else:
        export.write_json(meta, rows, out)
    if args.output:
        Path(args.output).write_text(out.getvalue(), newline="")
    else:
        sys.stdout.write(out.getvalue())
    if args.meta:
        Path(args.meta).write_text(json.dumps(meta, indent=1) + "\n")
    return 0


def cmd_analytics_refresh(settings: Settings, args: argparse.Namespace) -> int:
    from vot import analytics
    from vot.db import get_engine, utcnow
    from vot.migrations import HEAD, current_version

    engine = get_engine(settings)
    if current_version(engine) != HEAD:
        raise RuntimeError("the database schema is not current; run `vot db upgrade` first")
    with engine.begin() as conn:
        at = analytics.refresh(conn, utcnow())
    print(f"adherence snapshot computed at {at.isoformat()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vot", description="vot: video-observed therapy, from phone video to adherence."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, fn: Callable[[Settings, argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        return p

    p = add("demo", cmd_demo, "seed a demo clinic and run its videos through the pipeline")
    p.add_argument("--workers", type=_positive, default=2)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the workers")
    p.add_argument("--clips", type=Path, help="folder of clips (default: ../shared/data/clips)")
    p = add("serve", cmd_serve, "run the web app, workers and (if needed) the embedded Redis")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_positive, default=8000)
    p.add_argument("--workers", type=_positive, default=2)
    p = add("worker", cmd_worker, "run queue workers only (for extra machines)")
    p.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    p.add_argument("--no-sweep", action="store_true", help="do not re-queue lost work")
    p.add_argument("--name", help="worker name (unique per Redis)")
    p = add("submit", cmd_submit, "ingest a video as if a patient had uploaded it")
    p.add_argument("--patient", required=True, help="patient code")
    p.add_argument("--dose-date", type=_date, help="dose day (default: the recording day)")
    p.add_argument("--recorded-at", type=_datetime, help="when it was recorded (ISO 8601)")
    p.add_argument("file")
    p = add("status", cmd_status, "show where a submission is")
    p.add_argument("submission_id", type=_positive)
    p.add_argument("--json", action="store_true")
    p = add("score", cmd_score, "score one video without the database or queue")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = add("eval", cmd_eval, "score a labelled set of clips and report how well it ranks them")
    p.add_argument("labels", help="labels CSV: path,ingestion,face_visible,... (paths relative)")
    p.add_argument("--out", default="eval-report", help="folder for report.json, clips.csv, PNG")

    p = add("calibrate", cmd_calibrate, "derive new triage bands from supervisors' verdicts")
    p.add_argument("--version", required=True, help="name of the new thresholds version")
    p.add_argument("--target-precision", type=float, default=0.98)
    p.add_argument("--min-reviewed", type=_positive, default=30)
    p.add_argument("--model-version", help="only verdicts on scores of this model")
    p.add_argument("--dry-run", action="store_true", help="print, do not write the file")

    patient = sub.add_parser("patient", help="enrol patients, links, erasure").add_subparsers(
        dest="patient_command", required=True, metavar="ACTION"
    )
    p = patient.add_parser("add", help="enrol a patient on a regimen")
    p.set_defaults(fn=cmd_patient_add)
    p.add_argument("code")
    p.add_argument("--clinic", required=True)
    p.add_argument("--district")
    p.add_argument("--start", type=_date, help="regimen start (default today)")
    p.add_argument("--tz", default="UTC", help="IANA time zone, e.g. Asia/Shanghai")
    p.add_argument("--length-days", type=_positive, default=180)
    for action, help_ in (
        ("link", "print the patient's personal upload link"),
        ("rotate-link", "revoke the patient's link and print a new one"),
        ("revoke-link", "stop the patient's link from working"),
    ):
        p = patient.add_parser(action, help=help_)
        p.set_defaults(fn=cmd_patient_link)
        p.add_argument("code")

    p = patient.add_parser(
        "erase", help="erase every stored video of a patient at their request (decisions stay)"
    )
    p.set_defaults(fn=cmd_patient_erase)
    p.add_argument("code")
    p.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    p.add_argument("--by", help="who is carrying it out (recorded in the audit log)")

    user = sub.add_parser("user", help="staff accounts").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    p = user.add_parser("add", help="create a staff account or reset its password")
    p.set_defaults(fn=cmd_user_add)
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=("supervisor", "analyst", "admin"))
    p.add_argument("--clinic", help="clinic name (supervisors)")
    p.add_argument("--password-stdin", action="store_true")

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db.add_parser("upgrade", help="create or upgrade the schema").set_defaults(fn=cmd_db_upgrade)
    add("sweep", cmd_sweep, "re-queue submissions whose job was lost")
    p = add("retention", cmd_retention, "delete videos of decided doses past their retention")
    p.add_argument("--dry-run", action="store_true", help="report what would go, delete nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    export = sub.add_parser("export", help="exports for analysts").add_subparsers(
        dest="export_command", required=True, metavar="WHAT"
    )
    p = export.add_parser("adherence", help="adherence per patient (pseudonyms, no names)")
    p.set_defaults(fn=cmd_export_adherence)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--as-of", type=_date, help="count dose days up to this date (default today)")
    p.add_argument("--district")
    p.add_argument("--clinic", help="clinic name")
    p.add_argument("--start-from", type=_date, help="regimens starting on or after this date")
    p.add_argument("--start-to", type=_date, help="regimens starting on or before this date")
    p.add_argument("--output", help="file to write (default: standard output)")
    p.add_argument("--meta", help="also write the as-of, filters and definitions (JSON) here")
    p.add_argument(
        "--snapshot",
        action="store_true",
        help="read the rows stored by the last `vot analytics refresh` (fast; as of that "
        "refresh, stated in the metadata; not with --as-of)",
    )

    analytics = sub.add_parser("analytics", help="the analysts' adherence snapshot")
    analytics.add_subparsers(dest="analytics_command", required=True, metavar="ACTION").add_parser(
        "refresh", help="recompute the dashboard and export snapshot from the ledger"
    ).set_defaults(fn=cmd_analytics_refresh)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"vot: error: {exc}", file=sys.stderr)
        return 2
    # Services log what they do; one-shot commands print their answer and only log problems.
    level = settings.log_level if args.command in ("serve", "worker") else "WARNING"
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.fn(settings, args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        print(f"vot: error: {exc}", file=sys.stderr)
        return 1


def _is_user_error(exc: Exception) -> bool:
    from vot.accounts import AccountError
    from vot.export import SnapshotAsOf
    from vot.ingest import IngestError
    from vot.media import MediaError
    from vot.retention import ErasureError
    from vot.storage import StorageError
    from vot.triage import ThresholdError

    known = (
        ConfigError,
        AccountError,
        ErasureError,
        IngestError,
        MediaError,
        StorageError,
        ThresholdError,
        SnapshotAsOf,
        LookupError,
        RuntimeError,
    )
    return isinstance(exc, known)


if __name__ == "__main__":
    sys.exit(main())
