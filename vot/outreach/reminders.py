"""Dose reminders: when one is due, whether a dose is still missing, and who gets it.

Each patient with a reminder time (``patients.remind_at``, ``HH:MM`` in their time zone) and a
way to reach them (a Web Push subscription of their page, a phone number when an SMS gateway is
set) is reminded on days a dose is due and still missing: a dose day of their course whose
ledger character is still ``.`` (no video at all, not observed, not excused). A second round
follows ``settings.second_reminder_after_min`` minutes later when the dose is still missing.

Each round has a window: from its time until two hours later (:data:`LATE_LIMIT`), the next
round's time or the end of the patient's day, whichever comes first. A server that was down at
the reminder time sends it late within the window, never after it. One ``reminders`` row per
patient, day, round and channel records what happened (:data:`STATUSES`), so a reminder is sent
once even with several sweepers; a failed send is retried with back-off until its window closes.
:mod:`vot.outreach.dispatch` does the sending.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, exists, select
from sqlalchemy.exc import IntegrityError

from vot import schema
from vot.adherence.ledger import latest_course
from vot.config import Settings
from vot.db import as_utc
from vot.outreach import push
from vot.treatment import courses as course_store
from vot.treatment import days as ledger_days
from vot.treatment.course import Course, patient_today

LATE_LIMIT = timedelta(hours=2)
LEASE = timedelta(minutes=5)  # a claimed reminder whose sender died is taken up again after this
BACKOFF = (timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5), timedelta(minutes=10))
MAX_ATTEMPTS = 6
BATCH = 500  # new reminders per pass; more wait for the next pass a minute later
KEEP_SKIPPED_DAYS = 14  # skipped rows only stop a day being looked at twice; then they go
SENDING, SENT, RETRYING, FAILED, SKIPPED = "sending", "sent", "retrying", "failed", "skipped"
STATUSES = (SENDING, SENT, RETRYING, FAILED, SKIPPED)
PUSH, SMS = schema.REMINDER_CHANNELS
# The texts name no illness: a reminder shows on a lock screen that others may see.
TEXTS_FILE = Path(__file__).with_name("reminder_texts.json")

p, r, rem, ps = schema.patients, schema.regimens, schema.reminders, schema.push_subscriptions


@dataclass(frozen=True)
class Window:
    """When a round of a day's reminder may go out (UTC)."""

    round: int
    opens: datetime
    closes: datetime


@dataclass(frozen=True)
class Job:
    """A claimed reminder to send now."""

    id: int
    patient_id: int
    dose_date: date
    round: int
    channel: str
    attempts: int
    closes: datetime
    language: str
    phone: str | None


@cache
def texts() -> dict[str, dict[str, str]]:
    """The reminder texts by language (``vot/outreach/reminder_texts.json``)."""
    return json.loads(TEXTS_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def message(language: str | None, round_: int) -> dict[str, str]:
    """``title`` and ``body`` of a round's reminder in the patient's language (else English)."""
    words = texts().get(language or "en", texts()["en"])
    return {"title": words["title"], "body": words["first" if round_ == 1 else "second"]}


def windows(day: date, remind_at: str, timezone: str, second_after_min: int) -> list[Window]:
    """The rounds of ``day``'s reminder for a patient who set ``remind_at`` in ``timezone``."""
    zone = ZoneInfo(timezone)
    hours, minutes = (int(part) for part in remind_at.split(":"))
    first = datetime.combine(day, time(hours, minutes), zone)
    day_ends = datetime.combine(day + timedelta(days=1), time(0), zone)
    times = [first]
    if second_after_min:
        times.append(first + timedelta(minutes=second_after_min))
    found = []
    for index, opens in enumerate(times):
        following = times[index + 1] if index + 1 < len(times) else day_ends
        closes = min(opens + LATE_LIMIT, following, day_ends)
        if opens < closes:
            found.append(Window(index + 1, opens.astimezone(UTC), closes.astimezone(UTC)))
    return found


def open_window(
    now: datetime, remind_at: str, timezone: str, second_after_min: int
) -> tuple[date, Window] | None:
    """The patient's day and the round whose window holds ``now``, if any."""
    day = patient_today(timezone, now)
    for window in windows(day, remind_at, timezone, second_after_min):
        if window.opens <= now < window.closes:
            return day, window
    return None


def why_not(course: Course, days: str, outcome: str | None, day: date) -> str | None:
    """None when a dose is due on ``day`` and still missing; else why no reminder goes."""
    if outcome is not None or day > course.last:
        return "the course has ended"
    if day < course.start:
        return "the course has not started"
    if not course.scheduled(day):
        return "no dose is due that day"
    offset = (day - course.start).days
    held = days[offset] if offset < len(days) else ledger_days.NOTHING
    if held == ledger_days.EXCUSED:
        return "the day is excused"
    if held in ledger_days.TAKEN:
        return "the dose was taken"
    if held != ledger_days.NOTHING:
        return "a video arrived"
    return None


def _live_push() -> Any:
    return exists().where(ps.c.patient_id == p.c.id, ps.c.revoked_at.is_(None))


def _contacts(conn: Connection, settings: Settings) -> list[Any]:
    """Patients with a reminder time, a way to reach them, and a course without an outcome."""
    reachable = _live_push()
    if settings.sms_webhook_url:
        reachable = p.c.phone.is_not(None) | reachable
    query = (
        select(
            p.c.id,
            p.c.timezone,
            p.c.remind_at,
            p.c.phone,
            p.c.language,
            _live_push().label("push"),
        )
        .select_from(p.join(r, r.c.patient_id == p.c.id))
        .where(p.c.remind_at.is_not(None), reachable, latest_course(), r.c.outcome.is_(None))
    )
    return list(conn.execute(query))


def channels(settings: Settings, contact: Any) -> list[str]:
    """The channels a patient can be reached by now, from this machine.

    Push needs the VAPID key the browsers subscribed with. The web app makes it in its data
    folder; a sweeper on another machine (``vot worker``) without a copy leaves push reminders
    to the machine that has it, rather than sign with a key of its own that push services
    would refuse.
    """
    found = [PUSH] if contact.push and push.has_key(settings) else []
    if contact.phone and settings.sms_webhook_url:
        found.append(SMS)
    return found


def _existing(conn: Connection, days: set[date], ids: Sequence[int]) -> set[tuple[Any, ...]]:
    found: set[tuple[Any, ...]] = set()
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        query = select(rem.c.patient_id, rem.c.dose_date, rem.c.round, rem.c.channel).where(
            rem.c.dose_date.in_(sorted(days)), rem.c.patient_id.in_(chunk)
        )
        found.update(tuple(row) for row in conn.execute(query))
    return found


def courses_of(conn: Connection, ids: Iterable[int]) -> dict[int, tuple[Course, str, str | None]]:
    """Each patient's latest course, its day ledger and outcome."""
    wanted = sorted(set(ids))
    found: dict[int, tuple[Course, str, str | None]] = {}
    for start in range(0, len(wanted), 900):
        query = select(*course_store.COURSE_COLUMNS, r.c.days, r.c.outcome).where(
            latest_course(), r.c.patient_id.in_(wanted[start : start + 900])
        )
        rows = list(conn.execute(query))
        for row, course in zip(rows, course_store.courses(conn, rows), strict=True):
            found[row.patient_id] = (course, row.days or "", row.outcome)
    return found


def _insert(conn: Connection, values: dict[str, Any]) -> int | None:
    """Insert a reminder row unless another sweeper already did; its id."""
    try:
        with conn.begin_nested():
            key = conn.execute(rem.insert().values(**values)).inserted_primary_key
    except IntegrityError:
        return None
    return int(key[0]) if key else None


def _new_rounds(
    conn: Connection, settings: Settings, now: datetime
) -> list[tuple[Any, date, Window, list[str]]]:
    """(contact, day, window, channels without a row yet) of every patient whose round is due."""
    due = []
    for contact in _contacts(conn, settings):
        got = open_window(
            now, contact.remind_at, contact.timezone, settings.second_reminder_after_min
        )
        if got is not None:
            due.append((contact, *got))
    if not due:
        return []
    done = _existing(conn, {day for _, day, _ in due}, [c.id for c, _, _ in due])
    wanted = []
    for contact, day, window in due:
        missing = [
            ch
            for ch in channels(settings, contact)
            if (contact.id, day, window.round, ch) not in done
        ]
        if missing:
            wanted.append((contact, day, window, missing))
    return wanted[:BATCH]


def claim_new(conn: Connection, settings: Settings, now: datetime) -> tuple[list[Job], int]:
    """Rows for every round that came due: claimed to send, or skipped with the reason.

    Returns the jobs to send and how many were skipped.
    """
    wanted = _new_rounds(conn, settings, now)
    found = courses_of(conn, [contact.id for contact, _, _, _ in wanted])
    jobs, skipped = [], 0
    for contact, day, window, missing in wanted:
        course = found.get(contact.id)
        reason = why_not(*course, day) if course else "no course"
        for channel in missing:
            values = {
                "patient_id": contact.id,
                "dose_date": day,
                "round": window.round,
                "channel": channel,
                "created_at": now,
                "attempts": 0,
                "status": SKIPPED if reason else SENDING,
                "error": reason,
                "next_attempt_at": None if reason else now + LEASE,
            }
            row_id = _insert(conn, values)
            if row_id is None:
                continue
            if reason:
                skipped += 1
                continue
            jobs.append(
                Job(
                    row_id,
                    contact.id,
                    day,
                    window.round,
                    channel,
                    0,
                    window.closes,
                    contact.language or "en",
                    contact.phone,
                )
            )
    return jobs, skipped


def claim_retries(
    conn: Connection, settings: Settings, now: datetime
) -> tuple[list[Job], int, int]:
    """Reminders whose retry time has come (or whose sender died), claimed to send again.

    One whose dose arrived meanwhile, or whose patient can no longer be reached, is skipped;
    one whose window closed has failed. Returns the jobs, how many were skipped and failed.
    """
    query = (
        select(rem, p.c.timezone, p.c.remind_at, p.c.phone, p.c.language)
        .add_columns(_live_push().label("push"))
        .select_from(rem.join(p, p.c.id == rem.c.patient_id))
        .where(rem.c.status.in_((RETRYING, SENDING)), rem.c.next_attempt_at <= now)
        .order_by(rem.c.next_attempt_at)
        .limit(BATCH)
    )
    rows = list(conn.execute(query))
    found = courses_of(conn, [row.patient_id for row in rows])
    jobs, skipped, failed = [], 0, 0
    for row in rows:
        claimed = rem.update().where(
            rem.c.id == row.id,
            rem.c.status == row.status,
            rem.c.next_attempt_at == row.next_attempt_at,
        )
        course = found.get(row.patient_id)
        reason = why_not(*course, row.dose_date) if course else "no course"
        reason = reason or (None if row.channel in channels(settings, row) else "not reachable")
        window = _window_of(settings, row)
        changes: dict[str, Any]
        if reason:
            changes = {"status": SKIPPED, "error": reason, "next_attempt_at": None}
        elif window is None or now >= window.closes:
            changes = {"status": FAILED, "next_attempt_at": None, "error": _late(row.error)}
        else:
            changes = {"status": SENDING, "next_attempt_at": now + LEASE}
        if conn.execute(claimed.values(**changes)).rowcount != 1:
            continue  # another sweeper took it
        if changes["status"] == SKIPPED:
            skipped += 1
        elif changes["status"] == FAILED:
            failed += 1
        else:
            assert window is not None
            job = Job(
                row.id,
                row.patient_id,
                row.dose_date,
                row.round,
                row.channel,
                row.attempts,
                window.closes,
                row.language or "en",
                row.phone,
            )
            jobs.append(job)
    return jobs, skipped, failed


def _late(error: str | None) -> str:
    return "not sent before its time was over" + (f" (last error: {error})" if error else "")


def _window_of(settings: Settings, row: Any) -> Window | None:
    if row.remind_at is None:
        return None
    rounds = windows(row.dose_date, row.remind_at, row.timezone, settings.second_reminder_after_min)
    return next((w for w in rounds if w.round == row.round), None)


def finish(
    conn: Connection, job: Job, now: datetime, error: str | None = None, retry: bool = False
) -> str:
    """Record how a send went: sent (no error), retried later, or failed; the new status.

    A retry waits :data:`BACKOFF` (longer after each attempt); past :data:`MAX_ATTEMPTS`, or
    when the next try would fall after the round's window, the reminder has failed.
    """
    attempts = job.attempts + 1
    if error is None:
        changes: dict[str, Any] = {"status": SENT, "sent_at": now, "error": None}
        changes["next_attempt_at"] = None
    else:
        later = now + BACKOFF[min(attempts, len(BACKOFF)) - 1]
        if retry and attempts < MAX_ATTEMPTS and later < job.closes:
            changes = {"status": RETRYING, "next_attempt_at": later, "error": error}
        else:
            final = error if not retry else _late(error)
            changes = {"status": FAILED, "next_attempt_at": None, "error": final}
    conn.execute(
        rem.update()
        .where(rem.c.id == job.id, rem.c.status == SENDING)
        .values(attempts=attempts, **changes)
    )
    return str(changes["status"])


def defer(conn: Connection, job: Job, now: datetime, why: str) -> None:
    """Leave a claimed reminder untried for a minute (its channel is failing right now)."""
    conn.execute(
        rem.update()
        .where(rem.c.id == job.id, rem.c.status == SENDING)
        .values(status=RETRYING, next_attempt_at=now + BACKOFF[0], error=why)
    )


def erase(conn: Connection, patient_id: int) -> int:
    """Forget how to reach the patient (an erasure): the phone number and every push
    subscription are deleted, and reminders still to be sent are not. Returns how many
    subscriptions there were."""
    conn.execute(p.update().where(p.c.id == patient_id).values(phone=None))
    conn.execute(
        rem.update()
        .where(rem.c.patient_id == patient_id, rem.c.status.in_((SENDING, RETRYING)))
        .values(status=SKIPPED, error="the patient's contact was erased", next_attempt_at=None)
    )
    return int(conn.execute(ps.delete().where(ps.c.patient_id == patient_id)).rowcount)


def prune(conn: Connection, now: datetime) -> int:
    """Delete skipped rows older than :data:`KEEP_SKIPPED_DAYS`; how many."""
    before = now.date() - timedelta(days=KEEP_SKIPPED_DAYS)
    return int(
        conn.execute(rem.delete().where(rem.c.status == SKIPPED, rem.c.dose_date < before)).rowcount
    )


@dataclass(frozen=True)
class Sent:
    """A reminder as the supervisor's calendar shows it."""

    dose_date: date
    round: int
    channel: str
    status: str
    at: datetime | None
    error: str | None


def history(conn: Connection, patient_id: int, limit: int = 60) -> list[Sent]:
    """The patient's reminders sent, waiting or failed (not the skipped ones), newest first."""
    query = (
        select(rem.c.dose_date, rem.c.round, rem.c.channel, rem.c.status, rem.c.sent_at)
        .add_columns(rem.c.error)
        .where(rem.c.patient_id == patient_id, rem.c.status != SKIPPED)
        .order_by(rem.c.dose_date.desc(), rem.c.round.desc(), rem.c.channel)
        .limit(limit)
    )
    return [
        Sent(row.dose_date, row.round, row.channel, row.status, as_utc(row.sent_at), row.error)
        for row in conn.execute(query)
    ]
