"""Commands over the data kept: retention, the analysts' exports and snapshot (the national
reports, ``vot export fhir|dhis2``, are in :mod:`vot.app.commands.reporting`)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from vot.app.commands import reporting
from vot.app.commands.common import Subparsers, a_date, add, current, group, upgraded
from vot.config import Settings


def cmd_retention(settings: Settings, args: argparse.Namespace) -> int:
    from vot.retention.policy import apply_retention
    from vot.storage import open_storage

    # A dry run changes nothing, the schema included.
    engine = current(settings) if args.dry_run else upgraded(settings)
    report = apply_retention(engine, open_storage(settings), settings, dry_run=args.dry_run)
    summary = report.summary(settings)
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


def cmd_export_adherence(settings: Settings, args: argparse.Namespace) -> int:
    from vot.adherence import export
    from vot.adherence.rules import Definitions
    from vot.adherence.scope import Scope
    from vot.db import utcnow

    engine = current(settings)
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
    from vot.adherence import analytics
    from vot.db import utcnow

    with current(settings).begin() as conn:
        at = analytics.refresh(conn, utcnow())
    print(f"adherence snapshot computed at {at.isoformat()}")
    return 0


def register(sub: Subparsers) -> None:
    p = add(sub, "retention", cmd_retention, "delete videos of decided doses past their retention")
    p.add_argument("--dry-run", action="store_true", help="report what would go, delete nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    export = group(sub, "export", "exports for analysts", "export_command", metavar="WHAT")
    p = export.add_parser("adherence", help="adherence per patient (pseudonyms, no names)")
    p.set_defaults(fn=cmd_export_adherence)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--as-of", type=a_date, help="count dose days up to this date (default today)")
    p.add_argument("--district")
    p.add_argument("--clinic", help="clinic name")
    p.add_argument("--start-from", type=a_date, help="regimens starting on or after this date")
    p.add_argument("--start-to", type=a_date, help="regimens starting on or before this date")
    p.add_argument("--output", help="file to write (default: standard output)")
    p.add_argument("--meta", help="also write the as-of, filters and definitions (JSON) here")
    p.add_argument(
        "--snapshot",
        action="store_true",
        help="read the rows stored by the last `vot analytics refresh` (fast; as of that "
        "refresh, stated in the metadata; not with --as-of)",
    )
    reporting.register(export)
    analytics = group(sub, "analytics", "the analysts' adherence snapshot", "analytics_command")
    analytics.add_parser(
        "refresh", help="recompute the dashboard and export snapshot from the ledger"
    ).set_defaults(fn=cmd_analytics_refresh)
