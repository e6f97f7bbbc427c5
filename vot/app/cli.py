"""The ``vot`` command line. Each sub-command is a small function over explicit settings.

The commands live in :mod:`vot.app.commands`, one module per group. Errors a user can fix (bad
setting, unknown patient, unusable file, store down) print one line ``vot: error: ...`` on stderr
and exit with status 2 (usage) or 1 (the rest).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from vot.app.commands import course, data, people, pipeline, reminders, scorer
from vot.config import ConfigError, load_settings

logger = logging.getLogger("vot")

COMMAND_GROUPS = (pipeline, scorer, people, course, data, reminders)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vot", description="vot: video-observed therapy, from phone video to adherence."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for commands in COMMAND_GROUPS:
        commands.register(sub)
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
    from vot.adherence.export import SnapshotAsOf
    from vot.adherence.outcomes import OutcomeError
    from vot.app.serve import TLSError
    from vot.intake.ingest import IngestError
    from vot.media import MediaError
    from vot.outreach.contact import ContactError
    from vot.reporting import ReportingError
    from vot.retention.erasure import ErasureError
    from vot.storage import StorageError
    from vot.treatment.courses import CourseError
    from vot.treatment.doses import DoseError
    from vot.treatment.regimens import RegimenError
    from vot.triage.bands import ThresholdError

    known = (
        ConfigError,
        AccountError,
        ContactError,
        TLSError,
        ErasureError,
        IngestError,
        MediaError,
        StorageError,
        ThresholdError,
        SnapshotAsOf,
        OutcomeError,
        CourseError,
        DoseError,
        RegimenError,
        ReportingError,
        LookupError,
        RuntimeError,
    )
    return isinstance(exc, known)


if __name__ == "__main__":
    sys.exit(main())
