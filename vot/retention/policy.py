"""Retention: delete videos once they are no longer needed, keep every decision.

:func:`apply_retention` runs hourly in the sweeper and as ``vot retention``. Once a dose is
decided (accepted, auto-accepted, rejected or unclear), its raw upload is deleted after
``settings.retain_raw_days`` and its review copy, poster and stills after
``settings.retain_review_days``. A video still in processing or waiting for review is never
touched. "Decided at" is the submission's last status change (``updated_at``), which nothing but
a status change moves; retention itself never moves it.

Submissions, scores, reviews, excusals and the audit log stay, so adherence figures do not
change. Erasure at a patient's request is :mod:`vot.retention.erasure`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, not_, select

from vot import schema
from vot.config import Settings
from vot.db import as_utc, audit, utcnow
from vot.retention.objects import DECIDED, raw_needed_elsewhere, remove, remove_derived
from vot.storage import Storage, keys

logger = logging.getLogger(__name__)

# A job that was transcoding when its patient was erased may still write its output; the
# sweeper removes it again for this long after the erasure (well past any job timeout).
RECHECK_ERASED = timedelta(days=1)

s = schema.submissions


@dataclass
class RetentionReport:
    """What one retention run deleted (or, with ``dry_run``, would delete)."""

    dry_run: bool
    raw: list[int] = field(default_factory=list)  # submissions whose raw upload went
    review: list[int] = field(default_factory=list)  # ... whose review copy, poster, stills went
    objects: int = 0  # stored objects removed (with dry_run: that exist and would be)
    shared_kept: int = 0  # raw objects kept: the same bytes are another video's still needed
    rechecked: int = 0  # objects written after an erasure, found and removed
    more: bool = False  # the limit was reached; the next run goes on

    def summary(self, settings: Settings) -> dict[str, Any]:
        """What ``vot retention --json`` prints (without the ids)."""
        return {
            "dry_run": self.dry_run,
            "retain_raw_days": settings.retain_raw_days,
            "retain_review_days": settings.retain_review_days,
            "raw_deleted": len(self.raw),
            "review_deleted": len(self.review),
            "objects": self.objects,
            "raw_kept_shared": self.shared_kept,
            "rechecked_after_erasure": self.rechecked,
        }


@dataclass(frozen=True)
class _Due:
    raw: list[Any]  # rows (id, raw_key, status, updated_at)
    review: list[Any]  # rows (id, review_key, poster_key, status, updated_at)
    erased: list[int]  # erased recently: anything written since is removed again
    more: bool


def _due(engine: Engine, now: datetime, settings: Settings, limit: int | None) -> _Due:
    raw_cutoff = now - timedelta(days=settings.retain_raw_days)
    review_cutoff = now - timedelta(days=settings.retain_review_days)
    most = None if limit is None else limit + 1
    with engine.connect() as conn:
        raw = conn.execute(
            select(s.c.id, s.c.raw_key, s.c.status, s.c.updated_at)
            .where(
                s.c.status.in_(DECIDED), s.c.updated_at < raw_cutoff, s.c.raw_deleted_at.is_(None)
            )
            .order_by(s.c.id)
            .limit(most)
        ).all()
        review = conn.execute(
            select(s.c.id, s.c.review_key, s.c.poster_key, s.c.status, s.c.updated_at)
            .where(
                s.c.status.in_(DECIDED),
                s.c.updated_at < review_cutoff,
                s.c.review_deleted_at.is_(None),
            )
            .order_by(s.c.id)
            .limit(most)
        ).all()
        erased = conn.execute(
            select(s.c.id).where(s.c.erased_at >= now - RECHECK_ERASED).order_by(s.c.id)
        ).scalars()
        recheck = list(erased)
    if limit is None:
        return _Due(list(raw), list(review), recheck, False)
    more = len(raw) > limit or len(review) > limit
    return _Due(list(raw[:limit]), list(review[:limit]), recheck, more)


def apply_retention(
    engine: Engine,
    storage: Storage,
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    limit: int | None = None,
) -> RetentionReport:
    """Delete the videos of decided doses that are past their retention period.

    Args:
        now: the time to measure the periods from (tests); default the current time.
        dry_run: report what would go, delete and record nothing.
        limit: at most this many submissions per kind (raw, review copy) in this run; the
            report's ``more`` says whether some were left for the next run.

    Raises:
        vot.storage.StorageError: the store failed; what was deleted before it is recorded.
    """
    now = now or utcnow()
    due = _due(engine, now, settings, limit)
    report = RetentionReport(dry_run=dry_run, more=due.more)
    raw_cutoff = now - timedelta(days=settings.retain_raw_days)
    # Still needed: not yet decided, or decided too recently for its raw to go.
    still_needed = [not_(and_(s.c.status.in_(DECIDED), s.c.updated_at < raw_cutoff))]
    for row in due.raw:
        with engine.connect() as conn:
            shared = raw_needed_elsewhere(conn, row.raw_key, row.id, still_needed)
        if shared:
            report.shared_kept += 1
        else:
            report.objects += remove(storage, [row.raw_key], None, dry_run)
        report.raw.append(row.id)
        if not dry_run:
            _record(engine, row.id, "raw", now, row.status, row.updated_at)
    for rrow in due.review:
        report.objects += remove_derived(
            storage, rrow.id, (rrow.review_key, rrow.poster_key), dry_run
        )
        report.review.append(rrow.id)
        if not dry_run:
            _record(engine, rrow.id, "review", now, rrow.status, rrow.updated_at)
    if not dry_run:
        report.rechecked = _recheck_erased(storage, due.erased)
    _log(report)
    return report


def _recheck_erased(storage: Storage, erased: list[int]) -> int:
    """Remove what a job still running at an erasure wrote after it; how many objects."""
    found_all = 0
    for sub_id in erased:
        found = remove(storage, keys.derived(sub_id), keys.stills(sub_id), False)
        if found:
            logger.warning(
                "removed %s object(s) written after submission %s was erased", found, sub_id
            )
        found_all += found
    return found_all


def _log(report: RetentionReport) -> None:
    if report.raw or report.review:
        logger.info(
            "retention%s: raw uploads of %s submission(s), review copies of %s; %s object(s)",
            " (dry run)" if report.dry_run else "",
            len(report.raw),
            len(report.review),
            report.objects,
        )


def _record(
    engine: Engine, sub_id: int, what: str, now: datetime, status: str, decided: datetime
) -> None:
    column = s.c.raw_deleted_at if what == "raw" else s.c.review_deleted_at
    with engine.begin() as conn:
        changed = conn.execute(
            s.update().where(s.c.id == sub_id, column.is_(None)).values({column.name: now})
        ).rowcount
        if changed:  # another sweeper may have recorded it first
            audit(
                conn,
                "retention",
                "video.retention_delete",
                f"submission:{sub_id}",
                what=what,
                status=status,
                decided_at=(as_utc(decided) or decided).isoformat(),
            )
