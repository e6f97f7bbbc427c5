"""Erasure: every stored video of one patient goes at once, at their request; decisions stay.

:func:`erase_patient` (``vot patient erase`` and the patient page) first revokes the patient's
upload links and deletes the phone number and push subscriptions, then removes raw uploads,
review copies, posters, stills and unfinished uploads.
Processing of their unfinished videos stops. Objects are deleted first and the deletion
recorded after, so an erasure cut short is finished by running it again, which is harmless.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, func, or_, select

from vot import schema, tokens
from vot.accounts import get_patient
from vot.config import Settings
from vot.db import as_utc, audit, utcnow
from vot.intake import uploads
from vot.intake import writes as upload_writes
from vot.outreach import reminders
from vot.pipeline import machine
from vot.retention.objects import DECIDED, raw_needed_elsewhere, remove_derived
from vot.storage import Storage

logger = logging.getLogger(__name__)

ERASED_REASON = "video erased at the patient's request before it was checked"
MAX_REASON = 500
BUSY_RETRIES = 5

s = schema.submissions


class ErasureError(ValueError):
    """An erasure that cannot be carried out (now); the message says why and what to do."""


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

    def summary(self) -> str:
        """One line for ``vot patient erase``."""
        parts = [
            f"patient {self.code}: videos of {len(self.submissions)} submission(s) erased, "
            f"{self.objects} stored object(s) and {self.uploads} upload(s) in progress removed"
        ]
        if self.stopped:
            parts.append(f", processing stopped for {self.stopped}")
        if self.shared_kept:
            parts.append(
                f"; {self.shared_kept} raw file(s) kept (another patient sent the same bytes)"
            )
        if self.links_revoked:
            parts.append(
                f"; {self.links_revoked} upload link(s) revoked "
                f"(a new one: vot patient rotate-link {self.code})"
            )
        return "".join(parts) + "; decisions and the audit log remain"


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
            except uploads.UploadNotFound:
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


def _checked_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise ErasureError("give the reason for the erasure (e.g. the patient's request)")
    if len(reason) > MAX_REASON:
        raise ErasureError(f"the reason holds at most {MAX_REASON} characters")
    return reason


def _remove_objects(engine: Engine, storage: Storage, report: ErasureReport) -> None:
    """Delete every stored object of the patient's submissions, except raw bytes that another
    patient sent too (they are theirs as well)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.c.id, s.c.raw_key, s.c.review_key, s.c.poster_key)
            .where(s.c.patient_id == report.patient_id)
            .order_by(s.c.id)
        ).all()
    others = [s.c.patient_id != report.patient_id]
    for row in rows:
        with engine.connect() as conn:
            shared = raw_needed_elsewhere(conn, row.raw_key, row.id, others)
        if shared:
            report.shared_kept += 1
        stored = (None if shared else row.raw_key, row.review_key, row.poster_key)
        report.objects += remove_derived(storage, row.id, stored)
        report.submissions.append(row.id)


def _record(
    conn: Connection, report: ErasureReport, actor: str, reason: str, now: datetime
) -> None:
    for column in (s.c.raw_deleted_at, s.c.review_deleted_at, s.c.erased_at):
        conn.execute(
            s.update()
            .where(s.c.id.in_(report.submissions), column.is_(None))
            .values({column.name: now})
        )
    # A video's fingerprint (vot.pipeline.replays) is drawn from its pictures: it goes too.
    f = schema.fingerprints
    conn.execute(f.delete().where(f.c.patient_id == report.patient_id))
    audit(
        conn,
        actor,
        "patient.erase",
        f"patient:{report.patient_id}",
        reason=reason,
        submissions=len(report.submissions),
        stopped=report.stopped,
        objects=report.objects,
        shared_kept=report.shared_kept,
        uploads=report.uploads,
        links_revoked=report.links_revoked,
    )


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
    stored ones are removed, and deletes their phone number and push subscriptions; a
    supervisor issues a new link with ``vot patient rotate-link`` when the patient goes on
    recording. Removes raw uploads, review copies, posters, stills and
    unfinished uploads. Submissions still being processed are rejected with
    :data:`ERASED_REASON`, which stops their jobs; the ones waiting for review stay for a
    supervisor to decide without the video. Repeating it is harmless; each call is one
    audit-log entry.

    Raises:
        vot.accounts.AccountError: no such patient.
        ErasureError: no reason given, or an upload is being written right now.
        vot.storage.StorageError: the store failed; run it again.
    """
    reason = _checked_reason(reason)
    now = now or utcnow()
    with engine.connect() as conn:
        patient = get_patient(conn, code)
    report = ErasureReport(patient.id, patient.code)
    with engine.begin() as conn:
        report.links_revoked = tokens.revoke(conn, code, actor)
        reminders.erase(conn, patient.id)  # the phone number and push subscriptions go too
    report.uploads = _remove_uploads(engine, settings, patient.id)
    with engine.begin() as conn:
        # First stop the processing, so no job starts on a video that is about to go.
        report.stopped = machine.stop_processing(conn, patient.id, ERASED_REASON, now)
    _remove_objects(engine, storage, report)
    with engine.begin() as conn:
        _record(conn, report, actor, reason, now)
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
