"""Retention and erasure: delete videos once they are no longer needed, keep every decision.

Retention (:func:`apply_retention`, run hourly by the sweeper and by ``vot retention``): once a
dose is decided (accepted, auto-accepted, rejected or unclear), its raw upload is deleted after
``settings.retain_raw_days`` and its review copy, poster and stills after
``settings.retain_review_days``. A video still in processing or waiting for review is never
touched. "Decided at" is the submission's last status change (``updated_at``), which nothing but
a status change moves; retention itself never moves it.

Erasure (:func:`erase_patient`, ``vot patient erase`` and the patient page): every stored object
of one patient goes at once, whatever its status; processing of their unfinished videos stops.

Both delete the objects first and record the deletion after, so a run cut short is finished by
the next one, and a re-run is harmless. Submissions, scores, reviews, excusals and the audit log
stay, so adherence figures do not change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, func, not_, or_, select
from sqlalchemy.sql import ColumnElement

from vot import schema, tokens, upload_writes, uploads
from vot.accounts import get_patient
from vot.config import Settings
from vot.db import as_utc, audit, utcnow
from vot.storage import Storage

logger = logging.getLogger(__name__)

DECIDED = (schema.ACCEPTED, schema.AUTO_ACCEPTED, schema.REJECTED, schema.UNCLEAR)
ERASED_REASON = "video erased at the patient's request before it was checked"
MAX_REASON = 500
# A job that was transcoding when its patient was erased may still write its output; the
# sweeper removes it again for this long after the erasure (well past any job timeout).
RECHECK_ERASED = timedelta(days=1)
BUSY_RETRIES = 5

s = schema.submissions


class ErasureError(ValueError):
    """An erasure that cannot be carried out (now); the message says why and what to do."""


def derived_keys(sub_id: int) -> tuple[str, ...]:
    """The keys the transcoder writes for ``sub_id`` (as ``workers.jobs`` names them)."""
    return (f"review/{sub_id}.mp4", f"poster/{sub_id}.jpg")


def stills_prefix(sub_id: int) -> str:
    """The folder of stills the review UI cuts from ``sub_id``'s review copy."""
    return f"stills/{sub_id}"


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


@dataclass
class ErasureReport:
    patient_id: int
    code: str
    submissions: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)  # were still processing; now rejected
    objects: int = 0
    shared_kept: int = 0
    uploads: int = 0  # unfinished uploads removed with their bytes
    links_revoked: int = 0  # upload links that were active


def _remove(storage: Storage, keys: Iterable[str], prefix: str | None, dry_run: bool) -> int:
    """Delete ``keys`` and everything under ``prefix``; how many objects were there."""
    count = 0
    for key in dict.fromkeys(keys):  # unique, in order
        if storage.exists(key):
            count += 1
            if not dry_run:
                storage.delete(key)
        elif not dry_run:
            storage.delete(key)  # idempotent; covers a store that is slow to show a write
    if prefix is not None and not dry_run:
        count += storage.delete_prefix(prefix)
    return count


def _raw_needed_elsewhere(
    conn: Connection, raw_key: str, sub_id: int, still_needed: Sequence[ColumnElement[bool]]
) -> bool:
    """Whether another submission still needs the raw bytes under ``raw_key``.

    Raw keys are content-addressed: the same file sent for two doses (or by two patients) is
    one object.
    """
    query = select(s.c.id).where(
        s.c.raw_key == raw_key, s.c.id != sub_id, s.c.raw_deleted_at.is_(None), *still_needed
    )
    return conn.execute(query.limit(1)).first() is not None


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
    report = RetentionReport(dry_run=dry_run)
    raw_cutoff = now - timedelta(days=settings.retain_raw_days)
    review_cutoff = now - timedelta(days=settings.retain_review_days)
    with engine.connect() as conn:
        raw_rows = conn.execute(
            select(s.c.id, s.c.raw_key, s.c.status, s.c.updated_at)
            .where(
                s.c.status.in_(DECIDED), s.c.updated_at < raw_cutoff, s.c.raw_deleted_at.is_(None)
            )
            .order_by(s.c.id)
            .limit(None if limit is None else limit + 1)
        ).all()
        review_rows = conn.execute(
            select(s.c.id, s.c.review_key, s.c.poster_key, s.c.status, s.c.updated_at)
            .where(
                s.c.status.in_(DECIDED),
                s.c.updated_at < review_cutoff,
                s.c.review_deleted_at.is_(None),
            )
            .order_by(s.c.id)
            .limit(None if limit is None else limit + 1)
        ).all()
        erased = conn.execute(
            select(s.c.id).where(s.c.erased_at >= now - RECHECK_ERASED).order_by(s.c.id)
        ).scalars()
        recheck = list(erased)
    if limit is not None:
        report.more = len(raw_rows) > limit or len(review_rows) > limit
        raw_rows, review_rows = raw_rows[:limit], review_rows[:limit]
    # Still needed: not yet decided, or decided too recently for its raw to go.
    still_needed = [not_(and_(s.c.status.in_(DECIDED), s.c.updated_at < raw_cutoff))]
    for row in raw_rows:
        with engine.connect() as conn:
            shared = _raw_needed_elsewhere(conn, row.raw_key, row.id, still_needed)
        if shared:
            report.shared_kept += 1
        else:
            report.objects += _remove(storage, [row.raw_key], None, dry_run)
        report.raw.append(row.id)
        if not dry_run:
            _record(engine, row.id, "raw", now, row.status, row.updated_at)
    for rrow in review_rows:
        keys = [k for k in (rrow.review_key, rrow.poster_key) if k] + list(derived_keys(rrow.id))
        report.objects += _remove(storage, keys, stills_prefix(rrow.id), dry_run)
        report.review.append(rrow.id)
        if not dry_run:
            _record(engine, rrow.id, "review", now, rrow.status, rrow.updated_at)
    if not dry_run:
        for sub_id in recheck:
            found = _remove(storage, derived_keys(sub_id), stills_prefix(sub_id), False)
            if found:
                logger.warning(
                    "removed %s object(s) written after submission %s was erased", found, sub_id
                )
            report.rechecked += found
    if report.raw or report.review:
        logger.info(
            "retention%s: raw uploads of %s submission(s), review copies of %s; %s object(s)",
            " (dry run)" if dry_run else "",
            len(report.raw),
            len(report.review),
            report.objects,
        )
    return report


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


def _remove_uploads(engine: Engine, settings: Settings, patient_id: int) -> int:
    """Remove the patient's uploads in progress (bytes and rows); how many were unfinished.

    Raises:
        ErasureError: one is being written right now, however often it was tried.
    """
    u = schema.uploads
    removed = 0
    with engine.connect() as conn:
        rows = conn.execute(
            select(u.c.id, u.c.submission_id, u.c.error).where(u.c.patient_id == patient_id)
        ).all()
    for row in rows:
        for attempt in range(BUSY_RETRIES):
            try:
                upload_writes.terminate(engine, settings, patient_id, row.id)
                break
            except uploads.NotFound:
                break  # finished or expired meanwhile
            except uploads.Busy:
                if attempt == BUSY_RETRIES - 1:
                    raise ErasureError(
                        "an upload of this patient is being sent right now; "
                        "run the erasure again in a minute (it is safe to repeat)"
                    ) from None
                time.sleep(1.0)
        if row.submission_id is None and row.error is None:
            removed += 1
    return removed


def erase_patient(
    engine: Engine,
    storage: Storage,
    settings: Settings,
    code: str,
    *,
    actor: str,
    reason: str,
    now: datetime | None = None,
) -> ErasureReport:
    """Erase every stored video of patient ``code`` at their request; keep the decisions.

    First revokes the patient's upload links, so that no new video arrives while (or after) the
    stored ones are removed; a supervisor issues a new link with ``vot patient rotate-link``
    when the patient goes on recording. Removes raw uploads, review copies, posters, stills and
    unfinished uploads. Submissions still being processed are rejected with
    :data:`ERASED_REASON`, which stops their jobs; the ones waiting for review stay for a
    supervisor to decide without the video. Repeating it is harmless; each call is one
    audit-log entry.

    Raises:
        vot.accounts.AccountError: no such patient.
        ErasureError: no reason given, or an upload is being written right now.
        vot.storage.StorageError: the store failed; run it again.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise ErasureError("give the reason for the erasure (e.g. the patient's request)")
    if len(reason) > MAX_REASON:
        raise ErasureError(f"the reason holds at most {MAX_REASON} characters")
    now = now or utcnow()
    with engine.connect() as conn:
        patient = get_patient(conn, code)
    report = ErasureReport(patient.id, patient.code)
    with engine.begin() as conn:
        report.links_revoked = tokens.revoke(conn, code, actor)
    report.uploads = _remove_uploads(engine, settings, patient.id)
    with engine.begin() as conn:
        # First stop the processing, so no job starts on a video that is about to go.
        stopping = conn.execute(
            select(s.c.id).where(
                s.c.patient_id == patient.id, s.c.status.in_(schema.PROCESSING_STATUSES)
            )
        ).scalars()
        for sub_id in list(stopping):
            changed = conn.execute(
                s.update()
                .where(s.c.id == sub_id, s.c.status.in_(schema.PROCESSING_STATUSES))
                .values(status=schema.REJECTED, reason=ERASED_REASON, updated_at=now)
            ).rowcount
            if changed:
                report.stopped.append(sub_id)
        rows = conn.execute(
            select(s.c.id, s.c.raw_key, s.c.review_key, s.c.poster_key)
            .where(s.c.patient_id == patient.id)
            .order_by(s.c.id)
        ).all()
    # The same bytes sent by another patient are theirs too: that object stays.
    others = [s.c.patient_id != patient.id]
    for row in rows:
        with engine.connect() as conn:
            shared = _raw_needed_elsewhere(conn, row.raw_key, row.id, others)
        keys = [k for k in (row.review_key, row.poster_key) if k] + list(derived_keys(row.id))
        if shared:
            report.shared_kept += 1
        else:
            keys.insert(0, row.raw_key)
        report.objects += _remove(storage, keys, stills_prefix(row.id), False)
        report.submissions.append(row.id)
    with engine.begin() as conn:
        for column in (s.c.raw_deleted_at, s.c.review_deleted_at, s.c.erased_at):
            conn.execute(
                s.update()
                .where(s.c.id.in_(report.submissions), column.is_(None))
                .values({column.name: now})
            )
        audit(
            conn,
            actor,
            "patient.erase",
            f"patient:{patient.id}",
            reason=reason,
            submissions=len(report.submissions),
            stopped=report.stopped,
            objects=report.objects,
            shared_kept=report.shared_kept,
            uploads=report.uploads,
            links_revoked=report.links_revoked,
        )
    logger.info(
        "erased the videos of patient %s: %s submission(s), %s object(s), %s upload(s)",
        patient.id,
        len(report.submissions),
        report.objects,
        report.uploads,
    )
    return report


@dataclass(frozen=True)
class ErasurePreview:
    """What an erasure of one patient would remove, for the confirmation page."""

    stored: int  # submissions with a raw upload or review copy still kept
    unfinished: int  # of them, still processing or waiting for review
    uploads: int  # uploads in progress
    erased_before: datetime | None  # the last erasure, if any


def erasure_preview(conn: Connection, patient_id: int) -> ErasurePreview:
    """Counts of what :func:`erase_patient` would remove for ``patient_id``."""
    held = or_(s.c.raw_deleted_at.is_(None), s.c.review_deleted_at.is_(None))
    stored, unfinished = conn.execute(
        select(func.count(), func.count().filter(s.c.status.not_in(DECIDED))).where(
            s.c.patient_id == patient_id, held
        )
    ).one()
    u = schema.uploads
    in_progress = conn.execute(
        select(func.count()).where(
            u.c.patient_id == patient_id, u.c.submission_id.is_(None), u.c.error.is_(None)
        )
    ).scalar_one()
    last = conn.execute(
        select(func.max(s.c.erased_at)).where(s.c.patient_id == patient_id)
    ).scalar_one()
    return ErasurePreview(int(stored), int(unfinished), int(in_progress), as_utc(last))


@dataclass(frozen=True)
class VideoState:
    """Whether a submission's review copy is gone, and why, for the pages that show it."""

    deleted_at: datetime | None
    erased: bool

    @property
    def gone(self) -> bool:
        return self.deleted_at is not None

    @property
    def message(self) -> str:
        if self.deleted_at is None:
            return ""
        day = self.deleted_at.strftime("%Y-%m-%d")
        if self.erased:
            return f"This video was erased at the patient's request on {day}."
        return f"This video was deleted under the retention policy on {day}."


def video_state(review_deleted_at: datetime | None, erased_at: datetime | None) -> VideoState:
    """The state of a review copy from its submission's two deletion times."""
    when = as_utc(erased_at) or as_utc(review_deleted_at)
    return VideoState(when, erased_at is not None)
