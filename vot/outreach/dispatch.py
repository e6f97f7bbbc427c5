"""Sending the reminders that are due: one pass, run every minute by the sweeper and by
``vot reminders send``.

Each channel sends in a thread of its own, so a slow or dead SMS gateway never holds up Web
Push, and the sweeper runs the pass beside its other work. Every send has a short timeout.
After a failure that may pass (a gateway or push service down, overloaded or failing), the
pass leaves that gateway's or service's other reminders for a minute later instead of each
waiting out the timeout, and each failed reminder keeps its own back-off
(:func:`vot.outreach.reminders.finish`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from vot.config import Settings
from vot.db import utcnow
from vot.outreach import push, reminders, sms
from vot.outreach.reminders import Job

logger = logging.getLogger(__name__)

GATEWAY = "the SMS gateway"


@dataclass(frozen=True)
class Failure:
    error: str
    retry: bool
    where: str  # the SMS gateway or a push service's origin: what fails for every reminder


class Deferred(Exception):
    """Every way to send this reminder failed earlier in the pass; try it a minute later."""


@dataclass
class Counts:
    """What a pass did, by the status each reminder ended in."""

    sent: int = 0
    skipped: int = 0
    retrying: int = 0
    failed: int = 0

    def add(self, other: Counts) -> None:
        self.sent += other.sent
        self.skipped += other.skipped
        self.retrying += other.retrying
        self.failed += other.failed

    def as_json(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "skipped": self.skipped,
            "retrying": self.retrying,
            "failed": self.failed,
        }


Sender = Callable[[Engine, Settings, Job, set[str], datetime], "Failure | None"]


def _send_sms(
    engine: Engine, settings: Settings, job: Job, failing: set[str], now: datetime
) -> Failure | None:
    if GATEWAY in failing:
        raise Deferred(GATEWAY)
    if not job.phone:
        return Failure("no phone number", False, GATEWAY)
    # The body only: it says what to do, and names no illness on a shared phone's screen.
    text = reminders.message(job.language, job.round)["body"]
    try:
        sms.send(settings, job.phone, text)
    except sms.SendFailed as exc:
        return Failure(str(exc), exc.retry, GATEWAY)
    return None


def _send_push(
    engine: Engine, settings: Settings, job: Job, failing: set[str], now: datetime
) -> Failure | None:
    """To every live subscription of the patient: sent once a push service took it."""
    with engine.connect() as conn:
        subscriptions = push.live(conn, job.patient_id)
    if not subscriptions:
        return Failure("no push subscription", False, "push")
    ready = [sub for sub in subscriptions if push.origin_of(sub.endpoint) not in failing]
    if not ready:
        raise Deferred(", ".join(sorted({push.origin_of(s.endpoint) for s in subscriptions})))
    payload = {
        **reminders.message(job.language, job.round),
        "tag": f"vot-dose-{job.dose_date.isoformat()}",
        "day": job.dose_date.isoformat(),
    }
    ttl = int((job.closes - now).total_seconds())
    failures = []
    for sub in ready:
        try:
            push.send(settings, sub, payload, ttl)
        except push.SendFailed as exc:
            failures.append(Failure(str(exc), exc.retry, push.origin_of(sub.endpoint)))
            if exc.gone:
                with engine.begin() as conn:
                    push.revoke(conn, sub.id)
            continue
        return None
    return next((f for f in failures if f.retry), failures[0])


SENDERS: dict[str, Sender] = {reminders.SMS: _send_sms, reminders.PUSH: _send_push}


def _attempt(
    engine: Engine, settings: Settings, job: Job, failing: set[str], now: datetime
) -> Failure | None:
    try:
        return SENDERS[job.channel](engine, settings, job, failing, now)
    except Deferred:
        raise
    except Exception as exc:  # a bug or a broken key: recorded and logged; the others still go
        logger.exception("reminder %s could not be sent", job.id)
        return Failure(f"error: {type(exc).__name__}", True, job.channel)


def run_channel(engine: Engine, settings: Settings, jobs: list[Job], now: datetime) -> Counts:
    """Send one channel's reminders in turn (the pass's time is ``now``); what became of them."""
    counts = Counts()
    failing: set[str] = set()
    for job in jobs:
        try:
            failure = _attempt(engine, settings, job, failing, now)
        except Deferred as exc:
            with engine.begin() as conn:
                reminders.defer(conn, job, now, f"not tried: {exc} failed just before")
            counts.retrying += 1
            continue
        with engine.begin() as conn:
            if failure is None:
                status = reminders.finish(conn, job, now)
            else:
                status = reminders.finish(conn, job, now, failure.error, failure.retry)
        if status == reminders.SENT:
            counts.sent += 1
        elif status == reminders.RETRYING:
            counts.retrying += 1
        else:
            counts.failed += 1
        if failure is not None:
            logger.warning(
                "reminder %s (%s, round %s, patient %s) not sent: %s; %s",
                job.id,
                job.channel,
                job.round,
                job.patient_id,
                failure.error,
                status,
            )
            if failure.retry:
                failing.add(failure.where)
    return counts


def send_due(engine: Engine, settings: Settings, now: datetime | None = None) -> Counts:
    """Send every reminder due at ``now`` (default: this moment) and retry those whose time
    came; what happened to them."""
    now = now or utcnow()
    counts = Counts()
    with engine.begin() as conn:
        retries, skipped_again, counts.failed = reminders.claim_retries(conn, settings, now)
    with engine.begin() as conn:
        new, skipped = reminders.claim_new(conn, settings, now)
        reminders.prune(conn, now)
    counts.skipped = skipped + skipped_again
    by_channel: dict[str, list[Job]] = {}
    for job in retries + new:
        by_channel.setdefault(job.channel, []).append(job)
    if by_channel:
        with ThreadPoolExecutor(len(by_channel), thread_name_prefix="vot-remind") as pool:
            futures = [
                pool.submit(run_channel, engine, settings, jobs, now)
                for jobs in by_channel.values()
            ]
            for future in futures:
                counts.add(future.result())
    if counts.sent or counts.failed or counts.retrying:
        logger.info("reminders: %s", counts.as_json())
    return counts
